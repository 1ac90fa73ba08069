"""An ensemble through the streaming screening path: every member scores each chunk's one
featurization, and the streamed output equals whole-file ensemble prediction."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph import predict as predict_module
from molgraph.predict import predict_file, predictor_scorer
from molgraph.screening import predict_library
from molgraph.uncertainty import load_ensemble

sys.path.insert(0, str(Path(__file__).parents[1] / "uncertainty"))
from test_ensemble import CALIBRATION, TARGET, _ensemble_dir

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def library(tmp_path_factory, shared_data: Path) -> Path:
    table = pd.read_csv(shared_data / "molecules" / "BBBP.csv").iloc[:30][["name", "smiles"]]
    table.loc[table.index[5], "smiles"] = "not_a_smiles"
    path = tmp_path_factory.mktemp("library") / "library.csv"
    table.to_csv(path, index=False)
    return path


def test_streamed_ensemble_equals_whole_file_prediction(library, tmp_path):
    run = _ensemble_dir(tmp_path / "run", [0.5, 1.0, 1.5], CALIBRATION)
    out = tmp_path / "out.csv"
    predict_library(run, str(library), out, chunk_rows=7, workers=1, progress=False,
                    members=True)  # fmt: skip
    whole = predict_file(run, library, tmp_path / "whole.csv", progress=False, members=True)
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got.columns) == list(whole.columns)
    for column in (TARGET, f"{TARGET}_sd", f"{TARGET}_lower", f"{TARGET}_member2"):
        np.testing.assert_allclose(pd.to_numeric(got[column]), whole[column], rtol=1e-5)
    assert got["error"].tolist() == whole["error"].tolist()


def test_members_share_one_featurization(tmp_path, monkeypatch, esol):
    ensemble = load_ensemble(_ensemble_dir(tmp_path / "run", [0.5, 1.0, 1.5], CALIBRATION))
    seen = []
    real = predict_module.predict_graphs

    def spy(model, graphs, *args, **kwargs):
        seen.append(id(graphs))
        return real(model, graphs, *args, **kwargs)

    monkeypatch.setattr(predict_module, "predict_graphs", spy)
    columns, score = predictor_scorer(ensemble, progress=False)
    graphs = ensemble.recipe.featurizer.packed(list(esol["smiles"].iloc[:9]))
    values = score(graphs)
    assert len(seen) == 3 and len(set(seen)) == 1  # three members, one graphs object
    assert values.shape == (9, len(columns)) and columns[:2] == [TARGET, f"{TARGET}_sd"]
