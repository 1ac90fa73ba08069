"""A ProteinGym fold run writes the ranking metrics of its own test predictions into
``metrics.json`` beside the usual ones (null with a reason where one is undefined)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from helpers import TINY_TRAINING
from hydra import compose, initialize_config_dir

from molgraph.builder import config_dir, train_from_config
from molgraph.models.ranking import METRICS, ranking_metrics

GB1 = Path(__file__).parents[1] / "experiments" / "proteingym" / "data" / "gb1_dms.csv.gz"


def test_fold_run_scores_its_test_predictions(
    shared_data: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MOLGRAPH_DATA", str(shared_data))
    scan = tmp_path / "gb1_300.csv"
    pd.read_csv(GB1).head(300).to_csv(scan, index=False)
    overrides = [*TINY_TRAINING, "experiment=proteingym_gin", "data=gb1_dms", f"data.path={scan}",
                 "split.fold=0", "batch_size=32", f"cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    run = tmp_path / "run"
    train_from_config(cfg, run)
    written = json.loads((run / "metrics.json").read_text())
    predictions = pd.read_csv(run / "predictions_test.csv")
    labels = pd.read_csv(scan).set_index(pd.RangeIndex(300))
    binary = labels.loc[predictions["row"], "DMS_score_bin"].to_numpy() >= 0.5
    expected = ranking_metrics(predictions["DMS_score"], predictions["DMS_score_pred"], binary)
    for metric in METRICS:
        value = written["test"][metric]
        if math.isnan(expected[metric]):
            assert value is None and f"test/{metric}" in written["undefined"]
        else:
            assert np.isclose(value, expected[metric], rtol=1e-5), metric
