"""``data=structures``: a folder of PDB/mmCIF files and a labels CSV, trained in one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

from molgraph.cli.main import main

FILES = ["1A8O.pdb", "1LCD.pdb", "1dix.pdb", "3o5r.pdb", "1GBT.cif", "1aki.cif", "2XHE.pdb.gz",
         "5eil.pdb.gz", "3wip.pdb.gz", "4gxy.cif.gz"]  # fmt: skip


def test_folder_and_labels_in_one_line(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "structures"
    folder.mkdir()
    for name in FILES:
        shutil.copy(shared_data / "proteins" / "robustness" / name, folder / name)
    shutil.copy(Path(__file__).parent / "fixtures" / "structures" / "charmm_dimer.pdb", folder)
    names = [*FILES, "charmm_dimer.pdb"]
    labels = tmp_path / "labels.csv"
    # a label with known truth: the number of CA atoms would be a learnable target, but
    # here only the run's mechanics are checked: any finite value per file
    pd.DataFrame({"file": names, "stability": [float(i % 4) for i in range(len(names))]}).to_csv(
        labels, index=False
    )
    run_dir = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    code = main([
        "train", "data=structures", f"data.folder={folder}", f"data.labels={labels}",
        f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}", "num_workers=1",
        "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "batch_size=4",
        "split.sizes=[0.6,0.2,0.2]",  # 10 graphs: a validation part of 2 can be scored
        "encoder.hidden_dim=16", "encoder.num_layers=2", "model.head.hidden_dim=16",
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"val", "test"}
    recipe_data = (run_dir / "config.yaml").read_text()
    assert "StructureFolder.from_folder" in recipe_data and "stability" not in recipe_data
    split = json.loads((run_dir / "split.json").read_text())
    (failures,) = (tmp_path / "cache").glob("labels-*/failures.csv")
    failed = pd.read_csv(failures)
    assert len(failed) <= 1  # a file without amino acids, listed with its reason
    assert sum(len(v) for v in split.values() if isinstance(v, list)) == len(names) - len(failed)
