"""ProteinGym's ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from molgraph.models.ranking import mcc, ndcg, ranking_metrics, roc_auc, top_recall
from molgraph.models.ridge import one_hot, ridge_predict


def test_ndcg_by_hand() -> None:
    # 10 variants, k = floor(0.1 * 10) = 1: only the top prediction counts.
    score = np.arange(10.0)  # gains = score / 9
    pred = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 8.0])  # variant 8 (gain 8/9) ranked first
    assert ndcg(score, pred) == pytest.approx((8 / 9) / (9 / 9))
    # 20 variants, k = 2: ranks 1, 2 hold gains 1 and 0 -> (1/log2(2) + 0) / (1 + (18/19)/log2(3))
    score = np.arange(20.0)
    pred = score.copy()
    pred[[18, 0]] = pred[[0, 18]]  # swap the second best with the worst
    pred[0] = 100.0  # the worst now ranked second
    pred[19] = 200.0
    expected = 1.0 / (1.0 + (18 / 19) / math.log2(3))
    assert ndcg(score, pred) == pytest.approx(expected)


def test_top_recall_auc_mcc_by_hand() -> None:
    score = np.arange(10.0)  # top 10%: variant 9 (score >= 8.1)
    assert top_recall(score, score) == 1.0
    assert top_recall(score, -score) == 0.0
    binary = np.array([0, 0, 1, 1])
    pred = np.array([0.1, 0.4, 0.35, 0.8])
    # positive pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > both): 3 of 4
    assert roc_auc(binary, pred) == pytest.approx(0.75)
    # pred > median 0.375: [0, 1, 0, 1] -> tp 1, tn 1, fp 1, fn 1 -> 0
    assert mcc(binary, pred) == pytest.approx(0.0)
    assert mcc(binary, np.array([0, 0, 1, 1.0])) == pytest.approx(1.0)
    out = ranking_metrics(np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 4]), binary)
    assert out["spearman"] == pytest.approx(1.0) and out["auc"] == 1.0
    assert math.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_ridge_recovers_an_additive_landscape() -> None:
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACDE*"), 6)) for _ in range(400)]
    x = one_hot(sequences).toarray()
    assert x.shape == (400, 6 * 22) and (x.sum(1) == 6).all()
    y = x @ rng.normal(size=x.shape[1])
    pred, penalty = ridge_predict(
        sequences, y, np.arange(300), np.arange(300, 350), np.arange(350, 400)
    )
    assert np.corrcoef(pred, y[350:])[0, 1] > 0.99 and penalty <= 1.0
