"""Calibration fitted on the validation set, stored as JSON beside the model.

Regression (:class:`RegressionCalibration`): the sd recalibrated per target, by z-scaling
(``scale·sd``, the factor that makes the validation z-scores' mean square 1) or affinely in
the variance (``scale·sqrt(sd² + offset)``, both fitted by the validation Gaussian NLL:
an uninformative sd then falls back towards a constant), and split-conformal intervals
``mean ± q·scale·sqrt(sd² + offset)`` (``q`` the conformal quantile of the validation
z-scores' magnitude, before scaling).
Classification (:class:`ClassificationCalibration`): isotonic or Platt recalibration of
the probabilities (or none) and split-conformal label sets (score ``1 - p(true class)``), written as
bounds: the set is ``{c : lower <= c <= upper}``, NaN bounds for the empty set.

``auto`` (the default of both) picks, per target for sds and for all targets together
for probabilities, the method whose 5-fold cross-validated NLL on the validation set is
lowest: isotonic recalibration overfits a few hundred molecules into near-0/1
probabilities, and an affine offset only pays where the raw sd carries no signal.

Arrays are ``[n, T]``; a ``mask`` marks labelled entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from molgraph.errors import ConfigError
from molgraph.uncertainty.metrics import bernoulli_nll, gaussian_nll

_EPS = 1e-12
CLASSIFICATION_METHODS = ("auto", "none", "platt", "isotonic")
REGRESSION_METHODS = ("auto", "zscale", "affine")
_FOLDS = 5
#: fewer labelled items than this: ``auto`` does not cross-validate (z-scaling; a target
#: left out of the choice of probability recalibration)
_MIN_TO_CHOOSE = 10


def _folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, held-out) index pairs of a seeded 5-fold split of ``n >= 5`` items."""
    order = np.random.default_rng(0).permutation(n)
    return [(np.setdiff1d(order, part), part) for part in np.array_split(order, _FOLDS)]


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The ``ceil((n+1)·coverage)``-th smallest score (inf when that exceeds ``n``): with
    exchangeable data a new score falls at or below it with probability >= ``coverage``."""
    if not 0 < coverage < 1:
        raise ConfigError(f"coverage must be in (0, 1), got {coverage}")
    scores = np.sort(np.asarray(scores, float))
    k = math.ceil((len(scores) + 1) * coverage)
    return math.inf if k > len(scores) else float(scores[k - 1])


def _columns(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape, bool) if mask is None else np.asarray(mask, bool)


@dataclass(frozen=True)
class RegressionCalibration:
    """Per target: the sd factor, the conformal quantile and (affine) the variance offset
    added to the raw sd² (empty: z-scaling, no offset)."""

    scale: tuple[float, ...]
    quantile: tuple[float, ...]
    coverage: float
    offset: tuple[float, ...] = ()

    @classmethod
    def fit(
        cls, y, mean, sd, mask=None, coverage: float = 0.9, method: str = "auto"
    ) -> RegressionCalibration:
        """Fit on validation targets, means and raw sds ``[n, T]``; ``method`` is
        ``zscale``, ``affine`` or ``auto`` (per target, the lower cross-validated NLL)."""
        if method not in REGRESSION_METHODS:
            raise ConfigError(f"sd calibration must be one of {REGRESSION_METHODS}, got {method!r}")
        mask = _columns(mask, np.shape(y))
        scale, quantile, offset = [], [], []
        for t in range(np.shape(y)[1]):
            m = mask[:, t]
            residual, raw = y[m, t] - mean[m, t], np.maximum(sd[m, t], _EPS)
            chosen = _choose_sd_method(residual, raw) if method == "auto" else method
            c = fit_variance_offset(residual, raw) if chosen == "affine" and m.any() else 0.0
            z = residual / np.sqrt(raw**2 + c)
            scale.append(float(np.sqrt(np.mean(z**2))) if m.any() else 1.0)
            quantile.append(conformal_quantile(np.abs(z), coverage) if m.any() else math.inf)
            offset.append(c)
        return cls(tuple(scale), tuple(quantile), float(coverage),
                   tuple(offset) if method != "zscale" and any(offset) else ())  # fmt: skip

    def apply(self, mean: np.ndarray, sd: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated ``sd`` and the interval bounds ``lower``, ``upper``."""
        base = np.sqrt(sd**2 + np.asarray(self.offset)) if self.offset else sd
        half = np.asarray(self.quantile) * base
        return {"sd": base * np.asarray(self.scale), "lower": mean - half, "upper": mean + half}

    def to_dict(self) -> dict[str, Any]:
        record = {"kind": "regression", "scale": list(self.scale),
                  "quantile": list(self.quantile), "coverage": self.coverage}  # fmt: skip
        return {**record, "offset": list(self.offset)} if self.offset else record


def fit_variance_offset(residual: np.ndarray, sd: np.ndarray) -> float:
    """The ``c >= 0`` of the variance model ``a·(sd² + c)`` that maximises the Gaussian
    likelihood of ``residual`` (``a`` at its optimum given ``c``: the mean of
    ``residual² / (sd² + c)``)."""
    r2, s2 = residual.astype(float) ** 2, sd.astype(float) ** 2

    def nll(log_c: float) -> float:
        v = s2 + np.exp(log_c)
        a = np.mean(r2 / v)
        return float(np.mean(np.log(a * v)))  # + 1, the z-scores' mean square, dropped

    scale = float(np.mean(s2)) + _EPS
    grid = np.log(scale) + np.linspace(-12, 6, 73)  # from a negligible offset to 400x
    best = grid[int(np.argmin([nll(g) for g in grid]))]
    result = optimize.minimize_scalar(nll, bounds=(best - 0.25, best + 0.25), method="bounded")
    c = float(np.exp(result.x))
    return 0.0 if nll(result.x) >= nll(np.log(scale) - 30) else c


def _held_out_gaussian_nll(method: str, residual: np.ndarray, sd: np.ndarray) -> float:
    """Summed NLL of each fold's residuals under the sd calibration fitted on the others."""
    total = 0.0
    for fit, held in _folds(len(residual)):
        c = fit_variance_offset(residual[fit], sd[fit]) if method == "affine" else 0.0
        a = np.mean(residual[fit] ** 2 / (sd[fit] ** 2 + c))
        total += len(held) * gaussian_nll(residual[held], 0.0, np.sqrt(a * (sd[held] ** 2 + c)))
    return total


def _choose_sd_method(residual: np.ndarray, sd: np.ndarray) -> str:
    """``zscale`` or ``affine``, whichever has the lower cross-validated NLL (zscale on ties
    and for fewer than ``_MIN_TO_CHOOSE`` items)."""
    if len(residual) < _MIN_TO_CHOOSE:
        return "zscale"
    affine, zscale = (_held_out_gaussian_nll(m, residual, sd) for m in ("affine", "zscale"))
    return "affine" if affine < zscale else "zscale"


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def fit_platt(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """``a, b`` of ``sigmoid(a·logit(p) + b)`` minimising the NLL of ``y``."""
    x = _logit(prob)

    def nll(ab: np.ndarray) -> float:
        s = ab[0] * x + ab[1]
        return float(np.mean(np.logaddexp(0, s) - y * s))

    a, b = optimize.minimize(nll, np.array([1.0, 0.0]), method="L-BFGS-B").x
    return {"a": float(a), "b": float(b)}


def fit_isotonic(y: np.ndarray, prob: np.ndarray) -> dict[str, list[float]]:
    """The isotonic (non-decreasing) fit of ``y`` on ``prob``, as knots to interpolate."""
    order = np.argsort(prob, kind="stable")
    fitted = optimize.isotonic_regression(y[order].astype(float)).x
    return {"x": prob[order].astype(float).tolist(), "y": fitted.astype(float).tolist()}


_PROBABILITY_FITS = {"platt": fit_platt, "isotonic": fit_isotonic}


def _held_out_bernoulli_nll(method: str, y: np.ndarray, prob: np.ndarray) -> float:
    """Summed NLL of each fold's labels under the recalibration fitted on the others."""
    fit_params = _PROBABILITY_FITS.get(method)
    total = 0.0
    for fit, held in _folds(len(y)):
        params = fit_params(y[fit], prob[fit]) if fit_params is not None else {}
        total += len(held) * bernoulli_nll(y[held], _recalibrate(method, params, prob[held]))
    return total


def _choose_probability_method(y: np.ndarray, prob: np.ndarray, mask: np.ndarray) -> str:
    """Of none, Platt and isotonic, the one whose cross-validated NLL summed over targets
    (those with ``_MIN_TO_CHOOSE`` labels or more) is lowest; the simpler on ties."""
    columns = [(y[mask[:, t], t], prob[mask[:, t], t]) for t in range(y.shape[1])]
    columns = [(yt, pt) for yt, pt in columns if len(yt) >= _MIN_TO_CHOOSE]
    scores = {method: sum(_held_out_bernoulli_nll(method, yt, pt) for yt, pt in columns)
              for method in ("none", "platt", "isotonic")}  # fmt: skip
    return min(scores, key=scores.__getitem__)


def _recalibrate(method: str, params: dict[str, Any], prob: np.ndarray) -> np.ndarray:
    if method == "platt":
        return 1 / (1 + np.exp(-(params["a"] * _logit(prob) + params["b"])))
    if method == "isotonic":
        return np.interp(prob, params["x"], params["y"])
    return prob


@dataclass(frozen=True)
class ClassificationCalibration:
    """A recalibration of probabilities and conformal thresholds, one per target."""

    method: str
    params: tuple[dict[str, Any], ...]
    threshold: tuple[float, ...]
    coverage: float

    @classmethod
    def fit(
        cls, y, prob, mask=None, coverage: float = 0.9, method: str = "auto"
    ) -> ClassificationCalibration:
        """Fit on validation labels and mean probabilities ``[n, T]``; ``auto`` stores the
        method it chose."""
        if method not in CLASSIFICATION_METHODS:
            raise ConfigError(
                f"calibration must be one of {CLASSIFICATION_METHODS}, got {method!r}"
            )
        mask = _columns(mask, np.shape(y))
        if method == "auto":
            method = _choose_probability_method(y, prob, mask)
        params, threshold = [], []
        for t in range(np.shape(y)[1]):
            yt, pt = y[mask[:, t], t], prob[mask[:, t], t]
            fit = _PROBABILITY_FITS.get(method)
            params.append(fit(yt, pt) if fit is not None and len(yt) else {})
            score = np.where(yt == 1, 1 - pt, pt)  # 1 - p(true class), on raw probabilities
            threshold.append(conformal_quantile(score, coverage) if len(yt) else math.inf)
        return cls(method, tuple(params), tuple(threshold), float(coverage))

    def apply(self, prob: np.ndarray, sd: np.ndarray) -> dict[str, np.ndarray]:
        """Recalibrated probabilities ``prob`` (the spread ``sd`` unchanged) and the
        conformal label sets as ``lower``/``upper`` bounds."""
        out = np.stack([_recalibrate(self.method, p, prob[:, t])
                        for t, p in enumerate(self.params)], axis=1)  # fmt: skip
        q = np.asarray(self.threshold)
        has1, has0 = prob >= 1 - q, prob <= q
        lower = np.where(has0, 0.0, np.where(has1, 1.0, np.nan))
        upper = np.where(has1, 1.0, np.where(has0, 0.0, np.nan))
        return {"prob": out, "sd": sd, "lower": lower, "upper": upper}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "classification", "method": self.method, "params": list(self.params),
                "threshold": list(self.threshold), "coverage": self.coverage}  # fmt: skip


Calibration = RegressionCalibration | ClassificationCalibration


def calibration_from_dict(record: dict[str, Any]) -> Calibration:
    """The calibration a :meth:`to_dict` record describes."""
    try:
        if record["kind"] == "regression":
            return RegressionCalibration(tuple(record["scale"]), tuple(record["quantile"]),
                                         float(record["coverage"]), tuple(record.get("offset", ())))  # fmt: skip
        if record["kind"] == "classification":
            return ClassificationCalibration(record["method"], tuple(record["params"]),
                                             tuple(record["threshold"]), float(record["coverage"]))  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"calibration record lacks {exc}") from None
    raise ConfigError(f"calibration kind must be regression or classification: {record}")


def spread(
    samples: np.ndarray, variances: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd over the first axis of ``[M, n, T]`` samples. With the ``[M, n, T]``
    variances a mean-variance head predicts with them, the sd is that of the mixture: the
    mean variance plus the variance of the means. A single sample without variances (a
    single model, no estimator) gets sd 1, which the calibration scales to the validation
    RMSE."""
    samples = np.asarray(samples, np.float64)  # members are float32: exact sums here
    mean = samples.mean(axis=0)
    if variances is not None:
        return mean, np.sqrt(samples.var(axis=0) + np.asarray(variances, np.float64).mean(axis=0))
    if len(samples) == 1:
        return mean, np.ones_like(mean)
    return mean, samples.std(axis=0)


def apply_calibration(
    calibration: Calibration | None, samples: np.ndarray, variances: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Of ``[M, n, T]`` samples (and their predicted variances, see :func:`spread`):
    ``mean`` (recalibrated probabilities for classification), ``sd``, ``lower``,
    ``upper``, each ``[n, T]``."""
    mean, sd = spread(samples, variances)
    if calibration is None:  # raw mean and sd, no intervals
        nan = np.full_like(mean, np.nan)
        return {"mean": mean, "sd": sd, "lower": nan, "upper": nan}
    if isinstance(calibration, RegressionCalibration):
        return {"mean": mean, **calibration.apply(mean, sd)}
    out = calibration.apply(mean, sd)
    return {"mean": out.pop("prob"), **out}
