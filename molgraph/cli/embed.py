"""``molgraph embed --model BUNDLE --input FILE... --output FILE.(npy|parquet|csv)``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from molgraph.cli.predict import add_input_arguments, input_options
from molgraph.errors import MolgraphError
from molgraph.featurize import MoleculeFeaturizer
from molgraph.pretrained import ROWS_SUFFIX, embed_file, embed_library, load_encoder
from molgraph.screening import OUTPUT_FORMATS, Shard


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="molgraph embed", description=__doc__)
    parser.add_argument(
        "--model",
        required=True,
        help="bundle directory or registered name, or a run directory, model.pt or .ckpt",
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--output",
        required=True,
        help=f".npy (ids in <name>{ROWS_SUFFIX} beside it), .parquet, .csv, .tsv or - (stdout)",
    )
    args = parser.parse_args(argv)
    try:
        print(_embed(args), file=sys.stderr if args.output == "-" else sys.stdout)
    except MolgraphError as exc:
        if args.debug:
            raise
        print(f"molgraph embed: {exc}", file=sys.stderr)
        return 1
    return 0


def _embed(args: argparse.Namespace) -> str:
    """Molecule libraries stream into .csv/.tsv/.parquet/stdout; the rest is read whole."""
    streamed = args.output == "-" or Path(args.output).suffix.lower() in OUTPUT_FORMATS
    if streamed and len(args.input) == 1:
        encoder = load_encoder(args.model, Shard.device(args.device), args.esm_path)
        if isinstance(encoder.featurizer, MoleculeFeaturizer):
            summary = embed_library(
                encoder, args.input[0], args.output, batch_size=args.batch_size,
                smiles_column=args.smiles_column, chunk_rows=args.chunk_rows,
                workers=args.workers, shard=Shard.parse(args.shard), restart=args.restart,
                progress=not args.no_progress,
            )  # fmt: skip
            return summary.line("embedded")
    table = embed_file(args.model, args.input, args.output, **input_options(args))
    failed = int((table.iloc[:, -1] != "").sum())
    return f"wrote {len(table)} rows to {args.output} ({failed} could not be embedded: see 'error')"
