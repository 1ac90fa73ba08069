"""Parser notes reach the user: a ``notes`` column in protein predict and embed outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from molgraph.cli.main import main

DIMER = Path(__file__).parents[1] / "fixtures" / "structures" / "charmm_dimer.pdb"
GB1 = Path(__file__).parents[2] / "molgraph" / "datasets" / "gb1_2qmt.pdb"


def test_notes_column_in_predict_and_embed(protein_run: Path, tmp_path: Path) -> None:
    inputs = ["--input", str(DIMER), str(GB1), str(tmp_path / "missing.pdb")]
    predicted = tmp_path / "pred.csv"
    main(["predict", "--model", str(protein_run), *inputs, "--output", str(predicted)])
    embedded = tmp_path / "emb.csv"
    main(["embed", "--model", str(protein_run), *inputs, "--output", str(embedded)])
    for path in (predicted, embedded):
        table = pd.read_csv(path, keep_default_na=False)
        notes = dict(zip(table["id"], table["notes"], strict=True))
        assert "segment PROA read as chain PROA" in notes["charmm_dimer"]
        assert "HSD->HIS" in notes["charmm_dimer"]
        assert "dropped waters" in notes["gb1_2qmt"]
