"""Write GB1 (FLIP, Wu et al. 2016) and avGFP (Sarkisyan et al. 2016) as ProteinGym DMS CSVs.

ProteinGym's substitution files have ``mutant`` (1-based positions in the target
sequence, mutations joined by ``:``, e.g. ``A12G:V40L``), ``DMS_score`` and
``DMS_score_bin`` (1 = fit). ProteinGym sets each assay's binarisation cutoff by hand; here
it is the median DMS_score of the assay (stated in the output's README line)::

    python data_prep/proteingym_dms.py --data ../shared/data --dest experiments/proteingym/data

- GB1: ``mutations_2qmt_numbering`` of ``gb1_flip/labels.csv.gz`` (2QMT residue numbers
  are the 1-based positions of its 56 residues), score ``fitness``; the wild-type row
  keeps ``mutant`` empty.
- avGFP: ``avgfp.tsv.gz`` (0-based positions, ``,``-joined) shifted to 1-based positions
  of the 237-residue Rosetta model; score ``score`` (log10 brightness). Its 2,310
  nonsense variants (``K156*``) are kept: ``nonsense=stop`` reads them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

_MUTATION = re.compile(r"([A-Z])(\d+)([A-Z*])")


def shift_positions(variant: str, by: int) -> str:
    """``A108D,N144D`` → ``A109D:N145D`` (``by=1``)."""
    parts = [p for p in re.split(r"[,;:\s]+", str(variant).strip()) if p]
    out = []
    for part in parts:
        match = _MUTATION.fullmatch(part)
        if match is None:
            raise ValueError(f"{variant!r}: {part!r} is not a mutation like A108D")
        out.append(f"{match[1]}{int(match[2]) + by}{match[3]}")
    return ":".join(out)


def dms_table(mutant: pd.Series, score: pd.Series) -> pd.DataFrame:
    """The ProteinGym columns, ``DMS_score_bin`` = score at or above the median."""
    score = score.astype(float)
    cutoff = float(np.median(score))
    return pd.DataFrame(
        {"mutant": mutant, "DMS_score": score, "DMS_score_bin": (score >= cutoff).astype(int)}
    )


def gb1(data: Path) -> pd.DataFrame:
    table = pd.read_csv(data / "proteins/gb1_flip/labels.csv.gz")
    mutant = table["mutations_2qmt_numbering"].replace({"WT": ""}).str.replace(";", ":")
    return dms_table(mutant, table["fitness"])


def avgfp(data: Path) -> pd.DataFrame:
    table = pd.read_csv(data / "proteins/avgfp_sarkisyan/avgfp.tsv.gz", sep="\t")
    mutant = table["variant"].map(lambda v: shift_positions(v, 1))
    return dms_table(mutant, table["score"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--dest", type=Path, default=Path("experiments/proteingym/data"))
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    for name, build in (("gb1", gb1), ("avgfp", avgfp)):
        table = build(args.data)
        path = args.dest / f"{name}_dms.csv.gz"
        table.to_csv(path, index=False)
        cutoff = table.loc[table.DMS_score_bin == 1, "DMS_score"].min()
        print(f"{path}: {len(table)} variants, DMS_score_bin cutoff {cutoff:.4g} (median)")


if __name__ == "__main__":
    main()
