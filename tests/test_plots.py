"""Figures: training curves from a sparse Lightning log, parity and ROC panels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from molgraph.plots import (
    masked_pair,
    plot_parity,
    plot_roc,
    plot_training_curves,
    read_epoch_metrics,
    regression_scores,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Shaped like CSVLogger output: step rows, train-epoch rows and validation rows each
# fill their own columns and leave the others empty.
METRICS_CSV = """epoch,step,train/loss_step,train/loss_epoch,val/loss,val/rmse
0,0,1.50,,,
0,1,1.30,,,
0,1,,,1.20,1.10
0,1,,1.40,,
1,2,1.00,,,
1,3,0.80,,,
1,3,,,0.90,0.95
1,3,,0.90,,
"""


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5_000


@pytest.fixture
def metrics_csv(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.csv"
    path.write_text(METRICS_CSV)
    return path


def test_epoch_metrics_collapse_sparse_rows(metrics_csv: Path) -> None:
    per_epoch = read_epoch_metrics(metrics_csv)
    assert list(per_epoch.index) == [0, 1]
    assert per_epoch["train/loss_epoch"].tolist() == [1.40, 0.90]
    assert per_epoch["val/rmse"].tolist() == [1.10, 0.95]
    assert per_epoch["train/loss_step"].tolist() == pytest.approx([1.40, 0.90])


def test_training_curves(metrics_csv: Path, tmp_path: Path) -> None:
    out = plot_training_curves(metrics_csv, tmp_path / "plots" / "curves.png", "val/rmse")
    assert out == tmp_path / "plots" / "curves.png"
    assert_png(out)


def test_training_curves_skip_absent_columns(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss\n0,0,1.0\n1,1,0.5\n")
    assert_png(plot_training_curves(path, tmp_path / "curves.png", "val/roc_auc"))


def test_training_curves_without_epochs_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss\n")
    with pytest.raises(ValueError, match=r"metrics\.csv"):
        plot_training_curves(path, tmp_path / "curves.png", "val/rmse")


def test_masked_scores_match_hand_values() -> None:
    y_true = np.array([1.0, np.nan, 3.0, 5.0])
    y_pred = np.array([2.0, 100.0, 3.0, 3.0])
    true, pred = masked_pair(y_true, y_pred)
    assert true.tolist() == [1.0, 3.0, 5.0]
    rmse, r2 = regression_scores(true, pred)
    assert rmse == pytest.approx(math.sqrt(5 / 3))  # residuals 1, 0, 2
    assert r2 == pytest.approx(1 - 5 / 8)  # total sum of squares 4 + 0 + 4


def test_r2_undefined_for_constant_labels() -> None:
    rmse, r2 = regression_scores(np.array([2.0, 2.0]), np.array([1.0, 3.0]))
    assert rmse == 1.0
    assert math.isnan(r2)


def test_parity_with_missing_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(30, 3))
    y_true[::4, 1] = np.nan
    y_true[:, 2] = np.nan  # a task without any label gets an empty panel
    y_pred = y_true + rng.normal(scale=0.1, size=(30, 3))
    assert_png(plot_parity(y_true, y_pred, ["a", "b", "c"], tmp_path / "parity.png"))


def test_parity_rejects_mismatched_task_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 task names"):
        plot_parity(np.zeros((3, 1)), np.zeros((3, 1)), ["a", "b"], tmp_path / "parity.png")


def test_roc_with_single_class_task(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y_true = np.column_stack([rng.integers(0, 2, 40), np.ones(40)]).astype(float)
    y_true[::5, 0] = np.nan
    y_prob = rng.uniform(size=(40, 2))
    assert_png(plot_roc(y_true, y_prob, ["mixed", "all active"], tmp_path / "roc.png"))
