"""ProteinGym-style table of a scan: GNN fold runs (if any) beside the one-hot ridge and
zero-shot scores, mean ± sd over folds per scheme.

    python experiments/proteingym/report.py --data gb1 --runs OUT   # runs of run_gnn.sh
    python experiments/proteingym/report.py --data avgfp            # baselines alone
    python experiments/proteingym/report.py --data gb1 --zero-shot esm1v=scores.csv

Writes ``<out>/<data>_folds.csv`` (one row per model and fold) and ``<data>_summary.md``.
GB1 has four mutated positions, so modulo and contiguous use k=4 (random k=5).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from molgraph.data import MutationalScan
from molgraph.dms import cross_validate_baselines, fold_table, markdown, summarise
from molgraph.featurize.protein import ProteinFeaturizer

DATA = os.environ.get("MOLGRAPH_DATA", "../shared/data")
HERE = Path(__file__).parent
STRUCTURES = {
    "gb1": f"{DATA}/proteins/gb1_flip/2qmt.pdb",
    "avgfp": f"{DATA}/proteins/avgfp_sarkisyan/avgfp_rosetta_model.pdb",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=STRUCTURES, required=True)
    parser.add_argument("--runs", type=Path, default=None, help="fold runs of run_gnn.sh")
    parser.add_argument("--zero-shot", action="append", default=[], help="NAME=scores.csv")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    scan = MutationalScan(str(HERE / "data" / f"{args.data}_dms.csv.gz"), STRUCTURES[args.data], ["DMS_score"],
                          chains=["A"], mutations_column="mutant", numbering="index", offset=1,
                          nonsense="stop", bin_column="DMS_score_bin")  # fmt: skip
    dataset = scan.load(ProteinFeaturizer(stop_residue=True), progress=False)
    zero_shot = {}
    for spec in args.zero_shot:
        name, path = spec.split("=", 1)
        scores = pd.read_csv(path, keep_default_na=False)
        column = "masked_marginal" if "masked_marginal" in scores else "wt_marginal"
        values = pd.to_numeric(scores[column], errors="coerce").to_numpy()
        zero_shot[name] = np.nan_to_num(values[dataset.row_ids], nan=np.nanmin(values))
    if args.runs is not None:
        table = fold_table(args.runs, dataset, "DMS_score_bin", zero_shot)
    else:
        parts = []
        for scheme in ("random", "modulo", "contiguous"):
            k = 4 if args.data == "gb1" and scheme != "random" else 5
            parts.append(
                cross_validate_baselines(
                    dataset, "mutant", "DMS_score_bin", (scheme,), k, 0, zero_shot
                )
            )
        table = pd.concat(parts, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / f"{args.data}_folds.csv", index=False)
    text = markdown(summarise(table))
    (args.out / f"{args.data}_summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
