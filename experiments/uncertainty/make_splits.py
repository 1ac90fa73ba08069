"""Write the shared split files of the uncertainty benchmark.

For each dataset and split seed: ``split.json`` (CSV row ids per part, read by molgraph's
``split=file``) and ``train.csv`` / ``val.csv`` / ``test.csv`` (``smiles,target`` with a
``row_id`` column, read by chemprop), all from the same molgraph scaffold split (balanced,
80/10/10) of the RDKit-valid rows.

    python experiments/uncertainty/make_splits.py [--out experiments/uncertainty/splits]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase

from molgraph.data.scaffolds import ScaffoldSplit

DATA = Path(os.environ.get("MOLGRAPH_DATA", "/work/shared/data")) / "molecules"
DATASETS = {  # name: (file, smiles column, target column, task)
    "esol": ("delaney-processed.csv", "smiles", "measured log solubility in mols per litre"),
    "lipophilicity": ("Lipophilicity.csv.gz", "smiles", "exp"),
    "bbbp": ("BBBP.csv", "smiles", "p_np"),
}
SEEDS = (0, 1, 2)


def valid_rows(smiles: list[str]) -> np.ndarray:
    """Row ids whose SMILES RDKit parses."""
    with rdBase.BlockLogs():
        return np.array([i for i, s in enumerate(smiles) if Chem.MolFromSmiles(s) is not None])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).parent / "splits"))
    out = Path(parser.parse_args().out)
    for name, (file, smiles_col, target_col) in DATASETS.items():
        table = pd.read_csv(DATA / file)
        smiles = table[smiles_col].astype(str).tolist()
        rows = valid_rows(smiles)
        items = [smiles[i] for i in rows]
        labels = table[target_col].to_numpy(float)[rows][:, None]
        for seed in SEEDS:
            split = ScaffoldSplit(sizes=(0.8, 0.1, 0.1), seed=seed)(items, labels, rows)
            folder = out / name / f"seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            split.save(folder / "split.json", rows)
            for part in ("train", "val", "test"):
                ids = rows[getattr(split, part)]
                frame = pd.DataFrame(
                    {"smiles": [smiles[i] for i in ids], "target": labels[getattr(split, part), 0]}
                )
                frame.insert(0, "row_id", ids)
                frame.to_csv(folder / f"{part}.csv", index=False)
            sizes = [len(getattr(split, p)) for p in ("train", "val", "test")]
            print(f"{name} seed{seed}: train/val/test = {sizes}")


if __name__ == "__main__":
    main()
