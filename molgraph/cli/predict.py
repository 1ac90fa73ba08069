"""``molgraph predict --model RUN_OR_BUNDLE --input FILE... --output FILE``.

Molecule libraries stream (:mod:`molgraph.screening`): read in chunks, featurized in
worker processes, resumable, shardable; protein inputs are read whole."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from molgraph.errors import MolgraphError
from molgraph.featurize import MoleculeFeaturizer
from molgraph.predict import load_predictor, predict_file
from molgraph.screening import Shard, predict_library
from molgraph.screening.parts import OutputTarget


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
    library = parser.add_argument_group("molecule libraries (streamed)")
    library.add_argument("--chunk-rows", type=int, default=10_000, help="rows per chunk")
    library.add_argument(
        "--workers", type=int, default=None, help="featurization processes (default: every core)"
    )
    library.add_argument(
        "--shard",
        default=None,
        help="i/n: score chunks k with k %% n == i (the last shard to finish assembles the "
        "output; `molgraph merge OUTPUT` otherwise); auto: a SLURM array task or torchrun rank",
    )
    library.add_argument(
        "--restart", action="store_true", help="discard the parts of an interrupted run"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")


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
    parser.add_argument("--output", required=True, help=".csv, .tsv, .parquet or - (stdout)")
    parser.add_argument(
        "--members", action="store_true", help="an ensemble: also one column per member"
    )
    args = parser.parse_args(argv)
    try:
        print(_predict(args), file=sys.stderr if args.output == "-" else sys.stdout)
    except MolgraphError as exc:
        if args.debug:
            raise
        print(f"molgraph predict: {exc}", file=sys.stderr)
        return 1
    return 0


def _predict(args: argparse.Namespace) -> str:
    """Run the prediction; its summary line."""
    OutputTarget.of(args.output)
    model = load_predictor(args.model)
    assert model.recipe is not None
    if isinstance(model.recipe.featurizer, MoleculeFeaturizer):
        if len(args.input) != 1:
            raise MolgraphError(f"molecules are read from one file, got {len(args.input)}")
        summary = predict_library(
            model, args.input[0], args.output, batch_size=args.batch_size,
            device=Shard.device(args.device),
            smiles_column=args.smiles_column, chunk_rows=args.chunk_rows, workers=args.workers,
            shard=Shard.parse(args.shard), restart=args.restart, progress=not args.no_progress,
            members=args.members,
        )  # fmt: skip
        return summary.line()
    out = predict_file(args.model, args.input, args.output, members=args.members,
                       **input_options(args))  # fmt: skip
    failed = int((out["error"] != "").sum())
    return f"wrote {len(out)} rows to {args.output} ({failed} could not be predicted: see 'error')"
