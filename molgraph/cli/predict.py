"""``molgraph predict --model RUN_OR_BUNDLE --input FILE... --output FILE``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from molgraph.errors import MolgraphError
from molgraph.predict import predict_file


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The input options shared by ``predict`` and ``embed``."""
    parser.add_argument(
        "--input",
        required=True,
        nargs="+",
        help="molecules: one .csv/.tsv, .smi or .sdf(.gz); proteins: PDB/mmCIF files, a "
        "folder of them, a CSV naming them (--file-column), or a variants CSV (--structure)",
    )
    parser.add_argument("--smiles-column", default=None, help="default: auto-detected")
    proteins = parser.add_argument_group("proteins")
    proteins.add_argument("--file-column", default="file", help="CSV column of structure files")
    proteins.add_argument("--chain-column", default=None, help="CSV column of chains to keep")
    proteins.add_argument(
        "--structure",
        default=None,
        help="wild-type structure of a variants CSV (default: the one the model was trained "
        "on, if it is on this machine)",
    )
    proteins.add_argument("--mutations-column", default=None, help="e.g. V39A:D40G per row")
    proteins.add_argument("--sequence-column", default=None, help="full variant sequences")
    proteins.add_argument("--numbering", choices=("residue", "index"), default=None)
    proteins.add_argument("--offset", type=int, default=None)
    proteins.add_argument("--chains", nargs="+", default=None, help="chains of --structure")
    proteins.add_argument(
        "--esm-path",
        default=None,
        help="ESM checkpoint for a model fused with ESM (default: found by the recipe's "
        "model name in torch hub's cache, else downloaded)",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--no-progress", action="store_true")


def input_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``predict_file`` / ``embed_file`` from parsed arguments."""
    variants = {
        "structure": args.structure,
        "mutations_column": args.mutations_column,
        "sequence_column": args.sequence_column,
        "numbering": args.numbering,
        "offset": args.offset,
        "chains": args.chains,
    }
    return {
        "smiles_column": args.smiles_column,
        "batch_size": args.batch_size,
        "device": args.device,
        "progress": not args.no_progress,
        "variants": variants,
        "file_column": args.file_column,
        "chain_column": args.chain_column,
        "esm_path": args.esm_path,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="molgraph predict", description=__doc__)
    parser.add_argument(
        "--model", required=True, help="run directory, model.pt, .ckpt, bundle or registered name"
    )
    add_input_arguments(parser)
    parser.add_argument("--output", required=True, help=".csv or .tsv")
    args = parser.parse_args(argv)
    try:
        out = predict_file(args.model, args.input, args.output, **input_options(args))
    except MolgraphError as exc:
        print(f"molgraph predict: {exc}", file=sys.stderr)
        return 1
    failed = int((out["error"] != "").sum())
    print(f"wrote {len(out)} rows to {args.output} ({failed} could not be predicted: see 'error')")
    return 0
