"""ProteinGym's metrics of a fitness predictor: Spearman, NDCG, top-10% recall, AUC, MCC.

As ProteinGym computes them (Notin et al. 2023, its ``performance_DMS_benchmarks``):

- ``spearman``: Spearman's rank correlation of predictions and scores.
- ``ndcg``: normalised discounted cumulative gain of the top 10% of the predictions
  (``k = floor(0.1 n)``), gains = the scores min-max scaled to [0, 1].
- ``top10_recall``: of the variants scoring in the top 10% (at or above the 90th
  percentile), the fraction the model also ranks in its top 10%.
- ``auc``: ROC-AUC of the predictions against the binarised score.
- ``mcc``: Matthews correlation of the binarised score and the predictions binarised at
  their median (``pred > median``).

numpy and scipy only; NaN where a metric is undefined (fewer than two variants, one class).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata, spearmanr

METRICS = ("spearman", "ndcg", "top10_recall", "auc", "mcc")


def ndcg(score: np.ndarray, pred: np.ndarray, top: float = 0.1) -> float:
    """NDCG of the ``top`` fraction of ``pred``'s ranking, gains = min-max scaled scores."""
    score, pred = np.asarray(score, float), np.asarray(pred, float)
    k = int(np.floor(len(score) * top))
    span = score.max() - score.min() if len(score) else 0.0
    if k < 1 or span == 0:
        return math.nan
    gains = (score - score.min()) / span
    ranks = np.argsort(np.argsort(-pred, kind="stable"), kind="stable") + 1
    ideal = np.argsort(np.argsort(-gains, kind="stable"), kind="stable") + 1
    discount = 1.0 / np.log2(np.arange(2, len(score) + 2))
    dcg = np.sum(gains[ranks <= k] * discount[ranks[ranks <= k] - 1])
    idcg = np.sum(gains[ideal <= k] * discount[ideal[ideal <= k] - 1])
    return float(dcg / idcg) if idcg > 0 else math.nan


def top_recall(score: np.ndarray, pred: np.ndarray, top: float = 0.1) -> float:
    """Fraction of the variants at or above the score's ``1 - top`` quantile that are also
    at or above the prediction's."""
    score, pred = np.asarray(score, float), np.asarray(pred, float)
    if len(score) < 2:
        return math.nan
    best = score >= np.percentile(score, 100 * (1 - top))
    picked = pred >= np.percentile(pred, 100 * (1 - top))
    return float((best & picked).sum() / best.sum())


def roc_auc(binary: np.ndarray, pred: np.ndarray) -> float:
    """ROC-AUC (Mann-Whitney U with mid-ranks for ties)."""
    binary = np.asarray(binary).astype(bool)
    n_pos, n_neg = int(binary.sum()), int((~binary).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(np.asarray(pred, float))
    return float((ranks[binary].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mcc(binary: np.ndarray, pred: np.ndarray) -> float:
    """Matthews correlation of ``binary`` and ``pred > median(pred)``."""
    truth = np.asarray(binary).astype(bool)
    guess = np.asarray(pred, float) > np.median(pred)
    tp, tn = float((truth & guess).sum()), float((~truth & ~guess).sum())
    fp, fn = float((~truth & guess).sum()), float((truth & ~guess).sum())
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator > 0 else math.nan


def ranking_metrics(score: np.ndarray, pred: np.ndarray, binary: np.ndarray) -> dict[str, float]:
    """All of :data:`METRICS` for one set of variants (rows with a NaN score or prediction
    are left out). ``binary`` is the binarised score (ProteinGym's ``DMS_score_bin``)."""
    score, pred = np.asarray(score, float), np.asarray(pred, float)
    keep = np.isfinite(score) & np.isfinite(pred)
    score, pred, binary = score[keep], pred[keep], np.asarray(binary)[keep]
    if len(score) < 2:
        return dict.fromkeys(METRICS, math.nan)
    rho = spearmanr(pred, score).statistic
    return {
        "spearman": float(rho),
        "ndcg": ndcg(score, pred),
        "top10_recall": top_recall(score, pred),
        "auc": roc_auc(binary, pred),
        "mcc": mcc(binary, pred),
    }
