"""Featurization throughput against bare RDKit parsing, on the SMILES of one CSV.

Usage (from the repository root)::

    python experiments/benchmarks/featurize_throughput.py [PATH] [--limit N]

PATH defaults to ``../shared/data/molecules/HIV.csv.gz``; a relative PATH is taken from
the repository root. Each method is warmed up once on 100 SMILES, then timed once over
all of them with ``time.perf_counter``. The "x parse" column is the method's time over
bare ``Chem.MolFromSmiles`` time: what featurizing costs on top of reading a molecule.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from rdkit import Chem, rdBase

from molgraph.data import featurize_all
from molgraph.featurize import MoleculeFeaturizer

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PATH = "../shared/data/molecules/HIV.csv.gz"
WARM_UP = 100


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_all(smiles: Sequence[str]) -> int:
    """Bare RDKit parsing; returns how many parsed."""
    with rdBase.BlockLogs():
        return sum(Chem.MolFromSmiles(s) is not None for s in smiles)


def featurize(preset: str, workers: int) -> Callable[[Sequence[str]], int]:
    featurizer = MoleculeFeaturizer.preset(preset)

    def run(smiles: Sequence[str]) -> int:
        _, errors = featurize_all(featurizer, list(smiles), num_workers=workers, progress=False)
        return sum(e is None for e in errors)

    return run


def timed(fn: Callable[[Sequence[str]], int], smiles: Sequence[str]) -> tuple[float, int]:
    fn(smiles[:WARM_UP])
    start = time.perf_counter()
    ok = fn(smiles)
    return time.perf_counter() - start, ok


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", nargs="?", default=DEFAULT_PATH, help=f"CSV (default {DEFAULT_PATH})"
    )
    parser.add_argument("--limit", type=int, default=None, help="use the first N SMILES only")
    parser.add_argument("--smiles-column", default="smiles")
    args = parser.parse_args(argv)

    path = Path(args.path)
    if not path.is_absolute():
        path = (REPO / path).resolve()
    smiles = pd.read_csv(path)[args.smiles_column].fillna("").astype(str).tolist()
    if args.limit is not None:
        smiles = smiles[: args.limit]
    n_cores = cores()

    methods = [
        ("RDKit MolFromSmiles", parse_all),
        ("default preset, 1 process", featurize("default", 1)),
        (f"default preset, {n_cores} processes", featurize("default", n_cores)),
        ("canonical preset, 1 process", featurize("canonical", 1)),
    ]
    rows = []
    for name, fn in methods:
        seconds, ok = timed(fn, smiles)
        rows.append((name, seconds, ok))
    parse_seconds = rows[0][1]

    print(f"{path.name}: {len(smiles)} SMILES")
    print(f"machine: {platform.processor() or platform.machine()}, {n_cores} cores available")
    header = f"{'method':<30} {'seconds':>8} {'mol/s':>9} {'ok':>7} {'x parse':>8}"
    print(header)
    print("-" * len(header))
    for name, seconds, ok in rows:
        rate = len(smiles) / seconds
        print(f"{name:<30} {seconds:8.2f} {rate:9.0f} {ok:7d} {seconds / parse_seconds:8.2f}")


if __name__ == "__main__":
    main()
