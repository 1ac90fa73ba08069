"""Calibrators and metrics on synthetic data with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from molgraph.uncertainty import (
    ClassificationCalibration,
    RegressionCalibration,
    apply_calibration,
    calibrate_and_evaluate,
    conformal_quantile,
    spread,
)
from molgraph.uncertainty.calibration import calibration_from_dict
from molgraph.uncertainty.metrics import (
    bernoulli_nll,
    expected_calibration_error,
    miscalibration_area,
)


def _regression(n: int, seed: int, factor: float):
    """Targets with known per-item noise sd, and raw sds that are ``factor`` too small."""
    rng = np.random.default_rng(seed)
    sd = rng.uniform(0.2, 2.0, n)
    mean = rng.normal(size=n)
    y = mean + rng.normal(size=n) * sd
    return y[:, None], mean[:, None], (sd * factor)[:, None]


def test_identical_members_have_zero_spread():
    member = np.random.default_rng(0).normal(size=(7, 2))
    mean, sd = spread(np.stack([member, member, member]))
    np.testing.assert_allclose(mean, member, rtol=1e-15)
    assert np.abs(sd).max() < 1e-15


def test_z_scaling_recovers_the_known_noise():
    y, mean, raw = _regression(20_000, 0, factor=0.25)
    calibration = RegressionCalibration.fit(y, mean, raw)
    assert calibration.scale[0] == pytest.approx(4.0, rel=0.02)  # 1 / 0.25
    y2, mean2, raw2 = _regression(20_000, 1, factor=0.25)
    sd = calibration.apply(mean2, raw2)["sd"]
    np.testing.assert_allclose(sd / raw2, 4.0, rtol=0.02)
    assert miscalibration_area(y2[:, 0], mean2[:, 0], sd[:, 0]) < 0.01
    assert miscalibration_area(y2[:, 0], mean2[:, 0], raw2[:, 0]) > 0.3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conformal_intervals_cover_the_target_fraction(seed):
    y, mean, raw = _regression(6_000, seed, factor=0.5)
    cal, test = slice(0, 1000), slice(1000, None)
    calibration = RegressionCalibration.fit(y[cal], mean[cal], raw[cal], coverage=0.9)
    bounds = calibration.apply(mean[test], raw[test])
    covered = np.mean((y[test] >= bounds["lower"]) & (y[test] <= bounds["upper"]))
    # conditional on 1000 calibration points the coverage is Beta-distributed around 0.9
    # with sd ~ 0.0095; plus the test sampling error (~0.0042): 4 sd either side
    assert abs(covered - 0.9) < 4 * math.hypot(0.0095, 0.0042)


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 10.0)  # 9 scores
    assert conformal_quantile(scores, 0.8) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(scores, 0.95) == math.inf  # ceil(9.5) = 10 > 9


def _miscalibrated(n: int, seed: int):
    """Labels drawn from true probabilities; the model's are over-confident (logit x 3)."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(scale=1.5, size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    return y[:, None], (1 / (1 + np.exp(-3 * logit)))[:, None]


def test_platt_recovers_the_known_temperature():
    y, prob = _miscalibrated(40_000, 0)
    calibration = ClassificationCalibration.fit(y, prob, method="platt")
    assert calibration.params[0]["a"] == pytest.approx(1 / 3, rel=0.05)
    assert calibration.params[0]["b"] == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_recalibration_removes_the_calibration_error(method):
    y, prob = _miscalibrated(20_000, 1)
    calibration = ClassificationCalibration.fit(y, prob, method=method)
    y2, prob2 = _miscalibrated(20_000, 2)
    fixed = calibration.apply(prob2, np.zeros_like(prob2))["prob"]
    before = expected_calibration_error(y2[:, 0], prob2[:, 0])
    after = expected_calibration_error(y2[:, 0], fixed[:, 0])
    assert before > 0.08 and after < 0.02


def test_conformal_label_sets_cover_the_target_fraction():
    y, prob = _miscalibrated(11_000, 3)
    calibration = ClassificationCalibration.fit(y[:1000], prob[:1000], coverage=0.9)
    bounds = calibration.apply(prob[1000:], np.zeros_like(prob[1000:]))
    covered = np.mean((y[1000:] >= bounds["lower"]) & (y[1000:] <= bounds["upper"]))
    assert abs(covered - 0.9) < 4 * math.hypot(0.0095, 0.003)


def test_calibration_round_trips_through_json_records():
    y, mean, raw = _regression(500, 4, factor=1.0)
    for calibration in (
        RegressionCalibration.fit(y, mean, raw),
        ClassificationCalibration.fit(*_miscalibrated(500, 5), method="isotonic"),
    ):
        assert calibration_from_dict(calibration.to_dict()) == calibration


def test_evaluation_of_a_calibrated_ensemble():
    rng = np.random.default_rng(6)
    truth_sd = rng.uniform(0.3, 1.0, 4000)
    y = rng.normal(size=4000) * truth_sd
    samples = y[None, :] + rng.normal(size=(5, 4000)) * truth_sd  # spread tracks the noise
    val, test = slice(0, 2000), slice(2000, None)
    _, parts, metrics = calibrate_and_evaluate(
        "regression",
        ["a"],
        y[val, None],
        samples[:, val, None],
        y[test, None],
        samples[:, test, None],
    )
    assert metrics["spearman_error_sd"] > 0.2
    assert abs(metrics["coverage"] - 0.9) < 0.04
    np.testing.assert_allclose(parts["mean"][:, 0], samples[:, test].mean(0))
    assert apply_calibration(None, samples[:, test, None])["lower"].shape == (2000, 1)


def test_affine_sd_calibration_recovers_a_known_variance_offset():
    """True variance 4·raw² + 0.5: scale 2 and offset 0.125 (scale²·(raw² + offset))."""
    rng = np.random.default_rng(7)
    raw = rng.uniform(0.1, 1.5, 40_000)
    y = rng.normal(size=raw.size) * np.sqrt(4 * raw**2 + 0.5)
    mean = np.zeros_like(y)
    calibration = RegressionCalibration.fit(
        y[:, None], mean[:, None], raw[:, None], method="affine"
    )
    assert calibration.scale[0] == pytest.approx(2.0, rel=0.03)
    assert calibration.offset[0] == pytest.approx(0.125, rel=0.15)
    zscaled = RegressionCalibration.fit(y[:, None], mean[:, None], raw[:, None], method="zscale")
    assert zscaled.offset == ()
    sd = calibration.apply(mean[:, None], raw[:, None])["sd"][:, 0]
    np.testing.assert_allclose(sd, np.sqrt(4 * raw**2 + 0.5), rtol=0.05)
    assert calibration_from_dict(calibration.to_dict()) == calibration


def test_affine_sd_calibration_falls_back_to_a_constant_for_an_uninformative_sd():
    """Noise of sd 1 everywhere and a raw sd unrelated to it: the affine fit's held-out
    NLL beats z-scaling's, and it is z-scaling exactly where the raw sd is constant."""
    rng = np.random.default_rng(8)
    y, raw = rng.normal(size=(8000, 1)), rng.uniform(0.05, 2.0, (8000, 1))
    mean, fit, held = np.zeros_like(y), slice(0, 4000), slice(4000, None)

    def nll(calibration: RegressionCalibration) -> float:
        sd = calibration.apply(mean[held], raw[held])["sd"]
        return float(np.mean(np.log(sd) + 0.5 * (y[held] / sd) ** 2))

    affine = RegressionCalibration.fit(y[fit], mean[fit], raw[fit], method="affine")
    zscale = RegressionCalibration.fit(y[fit], mean[fit], raw[fit], method="zscale")
    assert nll(affine) < nll(zscale) - 0.05
    ones = np.ones_like(y[fit])
    constant = RegressionCalibration.fit(y[fit], mean[fit], ones, method="affine")
    plain = RegressionCalibration.fit(y[fit], mean[fit], ones)
    np.testing.assert_allclose(constant.apply(mean, np.ones_like(y))["sd"],
                               plain.apply(mean, np.ones_like(y))["sd"], rtol=1e-9)  # fmt: skip


def test_auto_recalibrates_overconfident_probabilities_but_not_calibrated_ones():
    """Overconfident (temperature 3) probabilities: auto picks a recalibration that lowers
    the held-out NLL. Calibrated probabilities of 200 molecules: never the isotonic fit,
    which would overfit them."""
    y, prob = _miscalibrated(4000, 9)
    auto = ClassificationCalibration.fit(y[:2000], prob[:2000])
    assert auto.method in ("platt", "isotonic")
    fixed = auto.apply(prob[2000:], np.zeros_like(prob[2000:]))["prob"]
    assert bernoulli_nll(y[2000:], fixed) < bernoulli_nll(y[2000:], prob[2000:]) - 0.05
    rng = np.random.default_rng(10)
    for _ in range(5):
        p = rng.uniform(0.02, 0.98, (200, 1))
        assert ClassificationCalibration.fit((rng.uniform(size=p.shape) < p) * 1.0, p).method in (
            "none",
            "platt",
        )


def test_auto_sd_calibration_chooses_per_target():
    """Target 0's raw sd tracks its noise (z-scaling, no offset); target 1's is unrelated to
    it (an affine offset): each target gets the method with the lower held-out NLL."""
    y0, mean0, raw0 = _regression(3000, 11, factor=0.5)
    rng = np.random.default_rng(12)
    y1, raw1 = rng.normal(size=(3000, 1)), rng.uniform(0.05, 2.0, (3000, 1))
    y, mean, raw = (
        np.hstack([y0, y1]),
        np.hstack([mean0, np.zeros_like(y1)]),
        np.hstack([raw0, raw1]),
    )
    auto = RegressionCalibration.fit(y, mean, raw)
    assert auto.offset[0] == 0.0 and auto.offset[1] > 0.1
    assert auto.scale[0] == pytest.approx(2.0, rel=0.05)
