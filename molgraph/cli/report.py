"""``molgraph report SWEEP_DIR``: one table (CSV, Markdown) and one plot for a sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from molgraph.errors import MolgraphError
from molgraph.report import write_report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="molgraph report",
        description="Aggregate the runs of a sweep (molgraph train -m ...): mean ± sd over "
        "seeds per configuration, sorted by the validation metric, failed runs listed.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep directory (hydra.sweep.dir)")
    parser.add_argument(
        "--out", type=Path, default=None, help="where report.{csv,md,png} go (default: SWEEP_DIR)"
    )
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.sweep_dir, args.out)
    except MolgraphError as exc:
        print(f"molgraph report: {exc}", file=sys.stderr)
        return 1
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
