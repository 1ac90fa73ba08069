"""``molgraph merge OUTPUT``: assemble a sharded screening run's output."""

from __future__ import annotations

import argparse
import sys

from molgraph.errors import MolgraphError
from molgraph.screening import merge


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="molgraph merge",
        description="Check that the shards of `molgraph predict --shard` cover every input "
        "row exactly once and write OUTPUT from their parts.",
    )
    parser.add_argument("output", help="the --output the shards were given")
    args = parser.parse_args(argv)
    try:
        rows = merge(args.output)
    except MolgraphError as exc:
        print(f"molgraph merge: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {rows} rows to {args.output}")
    return 0
