"""`molgraph train ensemble=2`: members share the split, member0 is the single-model run
byte for byte, and the run directory holds the calibrated ensemble and its metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from helpers import TINY_TRAINING
from hydra import compose, initialize_config_dir

from molgraph.builder import config_dir, train_from_config
from molgraph.report import collect_runs
from molgraph.uncertainty import load_ensemble


def _compose(cache: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[*TINY_TRAINING, f"cache_dir={cache}", *overrides])


def test_ensemble_run(tmp_path: Path) -> None:
    train_from_config(_compose(tmp_path / "cache"), tmp_path / "single")
    run = tmp_path / "ensemble"
    metrics = train_from_config(_compose(tmp_path / "cache", "ensemble=2"), run)
    single = tmp_path / "single"
    assert (run / "member0" / "metrics.json").read_bytes() == (single / "metrics.json").read_bytes()
    split = (run / "member0" / "split.json").read_text()
    assert (run / "member1" / "split.json").read_text() == split
    for name in ("ensemble.json", "calibration.png", "error_vs_uncertainty.png",
                 "predictions_val.csv", "predictions_test.csv"):  # fmt: skip
        assert (run / name).is_file(), name
    written = json.loads((run / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    assert 0 <= written["test"]["coverage"] <= 1 and "nll" in written["test"]
    ensemble = load_ensemble(run)
    assert len(ensemble.members) == 2 and ensemble.calibration is not None
    test = pd.read_csv(run / "predictions_test.csv")
    assert len(test) == len(json.loads(split)["test"])
    (reported,) = collect_runs(run)  # one run: its members are not runs of their own
    assert reported.path == run and reported.metrics is not None
