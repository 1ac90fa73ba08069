"""Sequence baselines of mutational scans: ridge regression on the one-hot sequence.

FLIP's and ProteinGym's "one-hot" baseline: one column per (position, residue type), the
ridge penalty chosen by Spearman on the validation variants. With ``extra`` columns (a
zero-shot score: ProteinGym's "augmented" model, Hsu et al. 2022) the extra columns are
standardised and appended, so the ridge weighs the zero-shot score against the one-hot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.stats import spearmanr

from molgraph.featurize.residues import ALPHABET, STOP_LETTER, UNKNOWN

#: Ridge penalties tried, the best by validation Spearman.
PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
_LETTERS = ALPHABET + STOP_LETTER


def one_hot(sequences: Sequence[str]) -> sparse.csr_matrix:
    """``[n, length * 22]`` sparse: one column per (position, residue type); unknown
    letters share the unknown type, ``*`` is the stop type. All sequences have one length."""
    lookup = np.full(256, UNKNOWN, dtype=np.int64)
    lookup[np.frombuffer(_LETTERS.encode(), dtype=np.uint8)] = np.arange(len(_LETTERS))
    lengths = {len(s) for s in sequences}
    if len(lengths) > 1:
        raise ValueError(f"one-hot needs sequences of one length, got lengths {sorted(lengths)}")
    codes = lookup[np.frombuffer("".join(sequences).upper().encode(), dtype=np.uint8)]
    codes = codes.reshape(len(sequences), -1)
    n, length = codes.shape
    columns = (np.arange(length) * len(_LETTERS) + codes).ravel()
    rows = np.repeat(np.arange(n), length)
    shape = (n, length * len(_LETTERS))
    return sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=shape)


def fit_ridge(
    x: sparse.spmatrix | np.ndarray, y: np.ndarray, penalty: float
) -> tuple[np.ndarray, float]:
    """Weights and intercept of ridge regression on centred columns (intercept not
    penalised); ``x`` may be sparse (it is never densified: the Gram matrix is)."""
    n = x.shape[0]
    x_mean = np.asarray(x.mean(0)).ravel()
    y_mean = float(y.mean())
    gram = np.asarray((x.T @ x).todense() if sparse.issparse(x) else x.T @ x)
    gram = gram - n * np.outer(x_mean, x_mean)
    rhs = np.asarray(x.T @ y).ravel() - n * x_mean * y_mean
    weights = np.linalg.solve(gram + penalty * np.eye(len(gram)), rhs)
    return weights, y_mean - float(x_mean @ weights)


def ridge_predict(
    sequences: Sequence[str],
    y: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    extra: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Predictions for ``test`` of the ridge fitted on ``train`` whose penalty gives the
    best Spearman on ``val`` (the largest penalty without val), and that penalty.

    One-hot columns constant over ``train`` are left out; ``extra`` ``[n, E]`` columns
    (zero-shot scores) are standardised on ``train`` and appended.
    """
    x = one_hot(sequences)
    varies = np.flatnonzero(np.asarray(x[train].max(0).todense()).ravel()
                            != np.asarray(x[train].min(0).todense()).ravel())  # fmt: skip
    x = x[:, varies]
    if extra is not None:
        extra = np.asarray(extra, float).reshape(x.shape[0], -1)
        mean, std = extra[train].mean(0), extra[train].std(0) + 1e-12
        x = sparse.hstack([x, sparse.csr_matrix((extra - mean) / std)]).tocsr()
    y = np.asarray(y, float)
    fits = {p: fit_ridge(x[train], y[train], p) for p in PENALTIES}

    def predict(part: np.ndarray, p: float) -> np.ndarray:
        w, b = fits[p]
        return np.asarray(x[part] @ w).ravel() + b

    def score(p: float) -> float:
        rho = spearmanr(predict(val, p), y[val]).statistic
        return -np.inf if np.isnan(rho) else rho

    best = max(PENALTIES, key=score) if len(val) > 1 else PENALTIES[-1]
    return predict(test, best), best
