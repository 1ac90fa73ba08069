"""Ensembles on disk: run directory → predictions with mean, sd and intervals; the
exported bundle reproduces them in a fresh process; identical members give zero spread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molgraph.errors import CheckpointError
from molgraph.models.checkpoint import load_checkpoint, save_checkpoint
from molgraph.predict import predict_file
from molgraph.uncertainty import export_ensemble, load_ensemble
from molgraph.uncertainty.ensemble import dropout_active, write_record

MODEL = Path(__file__).parents[1] / "fixtures" / "format_v1" / "molecule_run"
TARGET = "measured log solubility in mols per litre"
pytestmark = pytest.mark.usefixtures("one_thread")


def _ensemble_dir(root: Path, scales: list[float], calibration: dict | None) -> Path:
    """Members: the fixture model with its head's last layer scaled by each factor."""
    for i, scale in enumerate(scales):
        model = load_checkpoint(MODEL)
        with torch.no_grad():
            last = [p for n, p in model.named_parameters() if n.startswith("head.")][-2]
            last.mul_(scale)
        (root / f"member{i}").mkdir(parents=True)
        save_checkpoint(model, root / f"member{i}" / "model.pt")
    members = [{"name": f"member{i}"} for i in range(len(scales))]
    write_record(root, {"format": "molgraph-ensemble", "method": "ensemble", "samples": 1,
                        "members": members, "calibration": calibration})  # fmt: skip
    return root


CALIBRATION = {"kind": "regression", "scale": [1.5], "quantile": [1.7], "coverage": 0.9}


@pytest.fixture(scope="module")
def molecules(tmp_path_factory, esol: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("in") / "molecules.csv"
    table = esol[["smiles"]].iloc[:20].copy()
    table.loc[3, "smiles"] = "not_a_smiles"
    table.to_csv(path, index=False)
    return path


def test_identical_members_predict_zero_spread(tmp_path, molecules):
    run = _ensemble_dir(tmp_path / "run", [1.0, 1.0, 1.0], CALIBRATION)
    out = predict_file(run, molecules, tmp_path / "out.csv", progress=False, members=True)
    single = predict_file(MODEL, molecules, tmp_path / "single.csv", progress=False)
    ok = out["error"] == ""
    np.testing.assert_allclose(out.loc[ok, TARGET], single.loc[ok, TARGET], rtol=1e-6)
    assert (out.loc[ok, f"{TARGET}_sd"] == 0).all()
    assert (out.loc[ok, f"{TARGET}_lower"] == out.loc[ok, TARGET]).all()
    assert out.loc[~ok, TARGET].isna().all() and out.loc[3, "error"]


def test_run_predictions_mean_sd_and_interval(tmp_path, molecules):
    run = _ensemble_dir(tmp_path / "run", [0.5, 1.0, 1.5], CALIBRATION)
    out = predict_file(run, molecules, tmp_path / "out.csv", progress=False, members=True)
    members = out[[f"{TARGET}_member{i}" for i in range(3)]].to_numpy()
    ok = out["error"] == ""
    np.testing.assert_allclose(out.loc[ok, TARGET], members[ok].mean(1), rtol=1e-5)
    np.testing.assert_allclose(out.loc[ok, f"{TARGET}_sd"], 1.5 * members[ok].std(1), rtol=1e-4)
    half = out[f"{TARGET}_upper"] - out[TARGET]
    np.testing.assert_allclose(half[ok], 1.7 * members[ok].std(1), rtol=1e-4)
    without = predict_file(run, molecules, tmp_path / "plain.csv", progress=False)
    assert f"{TARGET}_member0" not in without


def test_bundle_round_trip_in_a_fresh_process(tmp_path, molecules):
    run = _ensemble_dir(tmp_path / "run", [0.5, 1.0, 1.5], CALIBRATION)
    expected = predict_file(run, molecules, tmp_path / "run.csv", progress=False)
    bundle = export_ensemble(run, tmp_path / "bundle")
    assert not list(bundle.rglob("*.pt"))  # safetensors and JSON only
    record = json.loads((bundle / "ensemble.json").read_text())
    assert all(len(m["sha256"]) == 64 for m in record["members"])
    code = (
        "import sys; from molgraph.predict import predict_file; "
        "predict_file(sys.argv[1], sys.argv[2], sys.argv[3], progress=False)"
    )
    out_csv = tmp_path / "bundle.csv"
    subprocess.run([sys.executable, "-c", code, str(bundle), str(molecules), str(out_csv)],
                   check=True)  # fmt: skip
    got = pd.read_csv(out_csv, keep_default_na=False)
    for suffix in ("", "_sd", "_lower", "_upper"):
        column = f"{TARGET}{suffix}"
        a = pd.to_numeric(got[column]).to_numpy()
        np.testing.assert_allclose(a, expected[column].to_numpy(), rtol=0, atol=1e-6)


def test_a_tampered_member_is_refused(tmp_path):
    bundle = export_ensemble(_ensemble_dir(tmp_path / "run", [1.0, 2.0], CALIBRATION),
                             tmp_path / "bundle")  # fmt: skip
    weights = bundle / "member1" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(CheckpointError, match="sha256"):
        load_ensemble(bundle)


def test_member_names_cannot_leave_the_folder(tmp_path):
    run = _ensemble_dir(tmp_path / "run", [1.0], None)
    record = json.loads((run / "ensemble.json").read_text())
    record["members"] = [{"name": "../elsewhere"}]
    (run / "ensemble.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="plain folder name"):
        load_ensemble(run)


def test_mc_dropout_needs_dropout_layers():
    model = load_checkpoint(MODEL)  # head dropout 0
    with pytest.raises(CheckpointError, match="dropout"):
        with dropout_active(model):
            pass


def test_mc_dropout_samples_differ_and_leave_the_model_deterministic(esol):
    from molgraph.predict import predict_graphs
    from molgraph.uncertainty import Ensemble

    model = load_checkpoint(MODEL)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert layers, "the fixture head has dropout layers (p=0)"
    for layer in layers:
        layer.p = 0.5
    graphs = model.recipe.featurizer.packed(list(esol["smiles"].iloc[:12]))
    ensemble = Ensemble([model], method="dropout", samples=4)
    samples, variances = ensemble.sample(
        lambda m: predict_graphs(m, graphs, progress=False, variance=True)
    )
    assert samples.shape == (4, 12, 1) and samples.std(axis=0).min() > 0
    assert variances is None  # no mean-variance head
    once = predict_graphs(model, graphs, progress=False)
    np.testing.assert_array_equal(once, predict_graphs(model, graphs, progress=False))
