"""``molgraph embed --model BUNDLE --input FILE... --output FILE.(npy|parquet|csv)``."""

from __future__ import annotations

import argparse
import sys

from molgraph.cli.predict import add_input_arguments, input_options
from molgraph.errors import MolgraphError
from molgraph.pretrained import ROWS_SUFFIX, embed_file


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="molgraph embed", description=__doc__)
    parser.add_argument("--model", required=True, help="bundle directory or registered name")
    add_input_arguments(parser)
    parser.add_argument(
        "--output",
        required=True,
        help=f".npy (ids in <name>{ROWS_SUFFIX} beside it), .parquet, .csv or .tsv",
    )
    args = parser.parse_args(argv)
    try:
        table = embed_file(args.model, args.input, args.output, **input_options(args))
    except MolgraphError as exc:
        print(f"molgraph embed: {exc}", file=sys.stderr)
        return 1
    failed = int((table.iloc[:, -1] != "").sum())
    print(f"wrote {len(table)} rows to {args.output} ({failed} could not be embedded: see 'error')")
    return 0
