"""``molgraph score-variants``: zero-shot scores of a mutational scan from an ESM checkpoint.

One score per variant and method (``masked_marginal``, ``wt_marginal``; see
:mod:`molgraph.esm.zero_shot`), written beside the input's columns; a variant that cannot
be scored (a nonsense mutation, a wild-type letter that differs from the sequence) keeps
an empty score and its reason in ``zero_shot_error``, and the run goes on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molgraph.data.mutations import parse_mutations
from molgraph.errors import FeaturizationError, MolgraphError
from molgraph.esm import load_esm
from molgraph.esm.zero_shot import METHODS, cached_log_probabilities, model_key, substitution_score
from molgraph.featurize.structure import read_structure


def score_table(
    variants: list[str], sequence: str, matrices: dict[str, np.ndarray], offset: int = 1
) -> pd.DataFrame:
    """Columns ``<method>`` (NaN where not scored) and ``zero_shot_error`` per variant."""
    scores = {m: np.full(len(variants), np.nan) for m in matrices}
    errors = [""] * len(variants)
    for row, text in enumerate(variants):
        try:
            subs = [(m.position - offset, m.wild_type, m.mutant) for m in parse_mutations(text)]
            for method, matrix in matrices.items():
                scores[method][row] = substitution_score(matrix, sequence, subs)
        except FeaturizationError as error:
            errors[row] = error.reason
        except ValueError as error:
            errors[row] = str(error)
    return pd.DataFrame({**scores, "zero_shot_error": errors})


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="molgraph score-variants", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--esm", required=True, type=Path, help="fair-esm checkpoint (ESM-2, ESM-1v)"
    )
    parser.add_argument(
        "--input", required=True, type=Path, help="variants CSV (ProteinGym: mutant)"
    )
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--mutations-column", default="mutant")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--sequence", help="the wild-type sequence")
    where.add_argument("--structure", type=Path, help="the wild-type structure (its sequence)")
    parser.add_argument("--chain", default=None, help="with --structure: the chain")
    parser.add_argument("--offset", type=int, default=1, help="1: 1-based positions (ProteinGym)")
    parser.add_argument("--method", choices=(*METHODS, "both"), default="both")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache-dir", default=None)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    try:
        sequence = args.sequence or read_structure(args.structure, args.chain).sequence
        table = pd.read_csv(args.input, dtype={args.mutations_column: str}, keep_default_na=False)
        if args.mutations_column not in table.columns:
            raise MolgraphError(
                f"{args.input}: no column {args.mutations_column!r} (has {list(table.columns)})"
            )
        model, alphabet = load_esm(path=args.esm, download=False)
        model = model.to(torch.device(args.device))
        methods = METHODS if args.method == "both" else (args.method,)
        key = model_key(args.esm)
        matrices = {
            m: cached_log_probabilities(model, alphabet, key, sequence, m, args.cache_dir)
            for m in methods
        }
    except MolgraphError as error:
        print(f"molgraph score-variants: {error}", file=sys.stderr)
        return 1
    scores = score_table(table[args.mutations_column].tolist(), sequence, matrices, args.offset)
    out = pd.concat([table, scores], axis=1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.output, index=False)
    failed = int((scores["zero_shot_error"] != "").sum())
    print(f"wrote {args.output}: {len(out)} variants, {failed} not scored (see zero_shot_error)")
    return 0
