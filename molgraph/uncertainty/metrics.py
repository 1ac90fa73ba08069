"""Uncertainty metrics of one target: arrays ``[n]``, NaN-free (mask missing labels first).

Regression: Gaussian NLL, miscalibration area, ENCE, Spearman between |error| and sd,
coverage and mean width of intervals. Classification: Bernoulli NLL, expected calibration
error (ECE), Brier score, coverage and mean size of conformal label sets.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

#: Expected proportions at which the regression calibration curve is read.
LEVELS = np.linspace(0.0, 1.0, 101)
_EPS = 1e-12


def gaussian_nll(y: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> float:
    """Mean negative log-likelihood of ``y`` under ``N(mean, sd²)`` (nats)."""
    var = np.maximum(np.asarray(sd, float) ** 2, _EPS)
    return float(np.mean(0.5 * np.log(2 * math.pi * var) + (y - mean) ** 2 / (2 * var)))


def calibration_curve(y: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Observed fraction of ``y`` inside the central Gaussian interval of each expected
    proportion in :data:`LEVELS` (``[101]``); the diagonal is perfect calibration."""
    z = np.abs(y - mean) / np.maximum(sd, _EPS)
    half_widths = stats.norm.ppf(0.5 + LEVELS / 2)  # inf at level 1
    return (z[None, :] <= half_widths[:, None]).mean(axis=1)


def miscalibration_area(y: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> float:
    """Area between the calibration curve and the diagonal (0 best, 0.5 worst)."""
    return float(np.trapezoid(np.abs(calibration_curve(y, mean, sd) - LEVELS), LEVELS))


def ence(y: np.ndarray, mean: np.ndarray, sd: np.ndarray, bins: int = 10) -> float:
    """Expected normalised calibration error: items sorted by ``sd`` into ``bins``
    equal-count bins; mean over bins of |RMV - RMSE| / RMV."""
    order = np.argsort(sd, kind="stable")
    values = []
    for part in np.array_split(order, min(bins, len(order))):
        rmv = math.sqrt(float(np.mean(sd[part] ** 2)))
        rmse = math.sqrt(float(np.mean((y[part] - mean[part]) ** 2)))
        values.append(abs(rmv - rmse) / max(rmv, _EPS))
    return float(np.mean(values))


def error_spearman(y: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> float:
    """Spearman correlation between |error| and ``sd`` (NaN where ``sd`` is constant)."""
    if np.ptp(sd) == 0:
        return math.nan
    return float(stats.spearmanr(np.abs(y - mean), sd).statistic)


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of ``y`` inside ``[lower, upper]``."""
    return float(np.mean((y >= lower) & (y <= upper)))


def bernoulli_nll(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean negative log-likelihood of binary labels ``y`` under probabilities ``prob``."""
    p = np.clip(prob, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """ECE of binary probabilities: equal-width bins, |accuracy - confidence| weighted by
    the bin's share of items (confidence and accuracy of the predicted class)."""
    confidence = np.maximum(prob, 1 - prob)
    correct = ((prob >= 0.5) == (y == 1)).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def regression_metrics(
    y: np.ndarray, mean: np.ndarray, sd: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> dict[str, float]:
    """Every regression uncertainty metric of one target."""
    return {
        "nll": gaussian_nll(y, mean, sd),
        "miscalibration_area": miscalibration_area(y, mean, sd),
        "ence": ence(y, mean, sd),
        "spearman_error_sd": error_spearman(y, mean, sd),
        "coverage": coverage(y, lower, upper),
        "interval_width": float(np.mean(upper - lower)),
    }


def classification_metrics(
    y: np.ndarray, prob: np.ndarray, sd: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> dict[str, float]:
    """Every classification uncertainty metric of one binary target; the conformal label
    set of an item is ``{c : lower <= c <= upper}`` (NaN bounds: the empty set)."""
    correct = np.abs(y - prob)
    return {
        "nll": bernoulli_nll(y, prob),
        "ece": expected_calibration_error(y, prob),
        "brier": float(np.mean((prob - y) ** 2)),
        "spearman_error_sd": error_spearman(correct, np.zeros_like(correct), sd),
        "coverage": coverage(y, lower, upper),
        "set_size": float(np.mean(np.nan_to_num(upper - lower + 1, nan=0.0))),
    }
