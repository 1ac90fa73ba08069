"""``molgraph predict --model RUN_DIR_OR_CHECKPOINT --input FILE --output FILE``."""

from __future__ import annotations

import argparse
import sys

from molgraph.errors import MolgraphError
from molgraph.predict import predict_file


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="molgraph predict", description=__doc__)
    parser.add_argument("--model", required=True, help="run directory, model.pt or .ckpt")
    parser.add_argument("--input", required=True, help=".csv/.tsv, .smi or .sdf(.gz)")
    parser.add_argument("--output", required=True, help=".csv or .tsv")
    parser.add_argument("--smiles-column", default=None, help="default: auto-detected")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = predict_file(
            args.model,
            args.input,
            args.output,
            smiles_column=args.smiles_column,
            batch_size=args.batch_size,
            device=args.device,
            progress=not args.no_progress,
        )
    except MolgraphError as exc:
        print(f"molgraph predict: {exc}", file=sys.stderr)
        return 1
    failed = int((out["error"] != "").sum())
    print(f"wrote {len(out)} rows to {args.output} ({failed} could not be predicted: see 'error')")
    return 0
