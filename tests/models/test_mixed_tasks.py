"""Per-target task kinds (regression and classification in one run), undefined metrics
as null with a reason, and plots of huge finite values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_TRAINING
from hydra import compose, initialize_config_dir

from molgraph.builder import config_dir, embedded_dataset, train_from_config
from molgraph.featurize import MoleculeFeaturizer
from molgraph.models import Task
from molgraph.models.recipe import Recipe
from molgraph.models.undefined import json_metrics, undefined_reasons
from molgraph.plots import plot_parity

MIXED = Task(("regression", "classification"), ("logS", "soluble"))


def test_a_mixed_task_keeps_its_kinds_and_pure_tasks_stay_one_kind() -> None:
    assert MIXED.kinds == ("regression", "classification")
    assert (MIXED.monitor, MIXED.mode) == ("val/loss", "min")
    assert Task(["regression", "regression"], ("a", "b")).kind == "regression"
    assert Task("classification", ("a",)).monitor == "val/roc_auc"


def test_mixed_loss_is_mse_and_bce_per_column() -> None:
    output = torch.tensor([[0.5, -1.0], [2.0, 3.0]])
    target = torch.tensor([[1.0, 0.0], [1.5, 1.0]])
    mask = torch.tensor([[True, True], [True, False]])
    mse = F.mse_loss(output[:, 0], target[:, 0], reduction="none")
    bce = F.binary_cross_entropy_with_logits(output[0, 1], target[0, 1])
    expected = (mse.sum() + bce) / 3
    assert MIXED.loss(output, target, mask).item() == pytest.approx(expected.item())
    activated = MIXED.activation(output)
    assert torch.equal(activated[:, 0], output[:, 0])
    assert torch.allclose(activated[:, 1], torch.sigmoid(output[:, 1]))


def test_mixed_metrics_score_each_target_by_its_kind() -> None:
    pred = torch.tensor([[1.0, 0.9], [2.0, 0.2], [3.5, 0.7], [4.0, 0.1]])
    target = torch.tensor([[1.0, 1.0], [2.0, 0.0], [3.0, 1.0], [4.0, 0.0]])
    metrics = MIXED.metrics(pred, target, torch.ones_like(target, dtype=torch.bool))
    assert metrics["rmse"] == pytest.approx(0.25)  # sqrt(0.25 / 4)
    assert metrics["roc_auc"] == pytest.approx(1.0)
    assert "roc_auc/logS" not in metrics and "rmse/soluble" not in metrics


def test_a_recipe_round_trips_a_mixed_task() -> None:
    recipe = Recipe.from_dict({"featurizer": MoleculeFeaturizer().to_dict(), "encoder": None,
                               "task": {"kind": list(MIXED.kind), "names": ["logS", "soluble"]}})  # fmt: skip
    assert recipe.task == MIXED
    again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert again.task == MIXED


def test_undefined_metrics_are_null_with_a_reason() -> None:
    task = Task("classification", ("active",))
    target = torch.tensor([[1.0], [1.0], [1.0]])
    mask = torch.ones_like(target, dtype=torch.bool)
    metrics = task.metrics(torch.tensor([[0.2], [0.9], [0.4]]), target, mask)
    assert math.isnan(metrics["roc_auc"])
    reasons = undefined_reasons(task, "val", metrics, target, mask)
    assert reasons["val/roc_auc/active"].startswith("every one of the 3 labels of 'active'")
    text = json.dumps(json_metrics({"val": metrics}, reasons), allow_nan=False)
    assert json.loads(text)["val"]["roc_auc"] is None
    assert "val/roc_auc" in json.loads(text)["undefined"]


def test_parity_plot_copes_with_huge_finite_values(tmp_path: Path) -> None:
    y = np.array([[1e308], [-1e308], [1.0]])
    pred = np.array([[0.5], [2.0], [1e308]])
    assert plot_parity(y, pred, ["huge"], tmp_path / "parity.png").stat().st_size > 0


def test_one_run_trains_regression_and_classification_targets(tmp_path: Path) -> None:
    esol = pd.read_csv(embedded_dataset("esol.csv")).head(160)
    logs = esol["measured log solubility in mols per litre"]
    table = pd.DataFrame(
        {"smiles": esol["smiles"], "logS": logs, "soluble": (logs > -3).astype(int)}
    )
    path = tmp_path / "mixed.csv"
    table.to_csv(path, index=False)
    overrides = [*TINY_TRAINING, f"cache_dir={tmp_path / 'cache'}", f"data.path={path}",
                 "data.target_columns=[logS,soluble]", "data.task=[regression,classification]",
                 "split=random"]  # fmt: skip
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    run = tmp_path / "run"
    metrics = train_from_config(cfg, run)
    for key in ("rmse/logS", "roc_auc/soluble", "loss"):
        assert math.isfinite(metrics["val"][key]), key
    assert (run / "parity.png").is_file() and (run / "roc.png").is_file()
    predictions = pd.read_csv(run / "predictions_test.csv")
    assert predictions["soluble_pred"].between(0, 1).all()
    assert not predictions["logS_pred"].between(0, 1).all()  # in log units, not a probability
