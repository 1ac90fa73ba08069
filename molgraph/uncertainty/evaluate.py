"""Fit the calibration on validation samples and score the test set: the one metrics
implementation shared by training runs and the benchmark (``experiments/uncertainty``).

Samples are predictions ``[M, n, T]`` (members or MC-dropout passes) in target units
(probabilities for classification), with the ``[M, n, T]`` variances of a mean-variance
head where it has one; ``y`` is ``[n, T]`` with NaN for missing labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from molgraph.types import TaskKind
from molgraph.uncertainty.calibration import (
    Calibration,
    ClassificationCalibration,
    RegressionCalibration,
    apply_calibration,
    spread,
)
from molgraph.uncertainty.metrics import classification_metrics, regression_metrics


def fit_calibration(
    kind: TaskKind, y: np.ndarray, samples: np.ndarray, coverage: float = 0.9,
    method: str = "auto", variances: np.ndarray | None = None, sd_method: str = "auto",
) -> Calibration:  # fmt: skip
    """The calibration of ``samples`` fitted on validation labels ``y``; ``method`` is the
    recalibration of probabilities (classification), ``sd_method`` that of the sd
    (regression: ``zscale``, ``affine`` or ``auto``)."""
    mean, sd = spread(samples, variances)
    mask = ~np.isnan(y)
    y = np.nan_to_num(y)
    if kind == "regression":
        return RegressionCalibration.fit(y, mean, sd, mask, coverage, sd_method)
    return ClassificationCalibration.fit(y, mean, mask, coverage, method)


def uncertainty_metrics(
    kind: TaskKind, names: Sequence[str], y: np.ndarray, parts: dict[str, np.ndarray]
) -> dict[str, float]:
    """Uncertainty metrics per target (``name/target``) and their mean over targets."""
    score = regression_metrics if kind == "regression" else classification_metrics
    per_target: dict[str, list[float]] = {}
    out: dict[str, float] = {}
    for t, name in enumerate(names):
        m = ~np.isnan(y[:, t])
        if m.sum() < 2:
            continue
        values = score(y[m, t], *(parts[k][m, t] for k in ("mean", "sd", "lower", "upper")))
        for key, value in values.items():
            out[f"{key}/{name}"] = value
            per_target.setdefault(key, []).append(value)
    for key, values in per_target.items():
        finite = [v for v in values if not math.isnan(v)]
        out[key] = float(np.mean(finite)) if finite else math.nan
    return out


def calibrate_and_evaluate(
    kind: TaskKind,
    names: Sequence[str],
    y_val: np.ndarray,
    samples_val: np.ndarray,
    y_test: np.ndarray,
    samples_test: np.ndarray,
    coverage: float = 0.9,
    method: str = "auto",
    variances_val: np.ndarray | None = None,
    variances_test: np.ndarray | None = None,
    sd_method: str = "auto",
) -> tuple[Calibration, dict[str, np.ndarray], dict[str, float]]:
    """Calibration fitted on validation, calibrated test outputs, and test metrics."""
    calibration = fit_calibration(kind, y_val, samples_val, coverage, method, variances_val,
                                  sd_method)  # fmt: skip
    parts = apply_calibration(calibration, samples_test, variances_test)
    return calibration, parts, uncertainty_metrics(kind, names, y_test, parts)
