"""Mean-variance estimation: the Gaussian NLL of a variance head, the mixture sd of an
ensemble of such heads, and `molgraph train uncertainty=mve` end to end (run directory,
predictions with sd, bundle round trip)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_TRAINING
from hydra import compose, initialize_config_dir

from molgraph.builder import config_dir, train_from_config
from molgraph.models.tasks import Task
from molgraph.predict import predict_file
from molgraph.uncertainty import export_ensemble, load_ensemble, spread

TARGET = "measured log solubility in mols per litre"


def test_variance_loss_is_the_gaussian_nll_of_labelled_entries():
    task = Task("regression", ("a", "b"), variance=True)
    assert task.num_outputs == 4
    gen = torch.Generator().manual_seed(0)
    output, target = torch.randn(6, 4, generator=gen), torch.randn(6, 2, generator=gen)
    mask = torch.ones(6, 2, dtype=torch.bool)
    mask[2, 1] = False
    target[2, 1] = float("nan")  # a missing label contributes nothing, not NaN
    var = F.softplus(output[:, 2:]) + 1e-6
    expected = F.gaussian_nll_loss(output[:, :2], target, var, reduction="none", eps=1e-12)
    assert torch.isclose(task.loss(output, target, mask), expected[mask].mean(), atol=1e-6)


def test_a_variance_head_needs_regression_targets():
    with pytest.raises(ValueError, match="regression"):
        Task("classification", ("p",), variance=True)


def test_the_variance_head_recovers_known_noise():
    """Two groups with noise sd 0.3 and 1.5: a mean and a raw variance per group, fitted
    with the task's loss, recover each group's mean and noise variance."""
    gen = torch.Generator().manual_seed(0)
    group = torch.arange(4000) % 2
    truth_mean, truth_sd = torch.tensor([1.0, -2.0]), torch.tensor([0.3, 1.5])
    y = (truth_mean[group] + truth_sd[group] * torch.randn(4000, generator=gen))[:, None]
    params = torch.zeros(2, 2, requires_grad=True)  # per group: mean, raw variance
    task, mask = Task("regression", ("y",), variance=True), torch.ones(4000, 1, dtype=torch.bool)
    optimizer = torch.optim.Adam([params], lr=0.05)
    for _ in range(800):
        optimizer.zero_grad()
        task.loss(params[group], y, mask).backward()
        optimizer.step()
    mean, var = task.split_outputs(params.detach())
    sample_sd = torch.stack([y[group == g, 0].std() for g in (0, 1)])
    torch.testing.assert_close(mean[:, 0], truth_mean, atol=0.06, rtol=0)
    torch.testing.assert_close(var[:, 0].sqrt(), sample_sd, rtol=0.01, atol=0)


def test_spread_of_mean_variance_members_is_the_mixture_sd():
    rng = np.random.default_rng(0)
    means, variances = rng.normal(size=(5, 30, 2)), rng.uniform(0.1, 2.0, size=(5, 30, 2))
    mean, sd = spread(means, variances)
    np.testing.assert_allclose(mean, means.mean(0))
    np.testing.assert_allclose(sd**2, variances.mean(0) + means.var(0))
    _, single = spread(means[:1], variances[:1])  # one model: its own predicted sd
    np.testing.assert_allclose(single, np.sqrt(variances[0]))


@pytest.fixture(scope="module")
def mve_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mve")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY_TRAINING, f"cache_dir={root / 'cache'}",
                                          "uncertainty=mve", "ensemble=2"])  # fmt: skip
    train_from_config(cfg, root / "run")
    return root / "run"


def test_mve_ensemble_run_predicts_a_calibrated_heteroscedastic_sd(mve_run: Path):
    ensemble = load_ensemble(mve_run)
    assert all(m.task.variance for m in ensemble.members)
    metrics = json.loads((mve_run / "metrics.json").read_text())["test"]
    assert {"rmse", "nll", "miscalibration_area", "coverage"} <= set(metrics)
    test = pd.read_csv(mve_run / "predictions_test.csv")
    sd = test[f"{TARGET}_sd"]
    assert (sd > 0).all() and sd.nunique() > len(sd) // 2  # one sd per molecule
    members = test[[f"{TARGET}_member0", f"{TARGET}_member1"]].to_numpy()
    np.testing.assert_allclose(test[f"{TARGET}_pred"], members.mean(1), rtol=1e-5, atol=1e-5)
    # the sd is the calibrated mixture sd of the members' means and predicted variances
    variances = test[[f"{TARGET}_member0_var", f"{TARGET}_member1_var"]].to_numpy()
    mixture = np.sqrt(members.var(1) + variances.mean(1))
    np.testing.assert_allclose(sd, ensemble.calibration.scale[0] * mixture, rtol=1e-4)
    assert (variances > 0).all()


def test_mve_bundle_reproduces_the_run(mve_run: Path, tmp_path: Path, esol: pd.DataFrame):
    molecules = tmp_path / "molecules.csv"
    esol[["smiles"]].iloc[:15].to_csv(molecules, index=False)
    expected = predict_file(mve_run, molecules, tmp_path / "run.csv", progress=False)
    bundle = export_ensemble(mve_run, tmp_path / "bundle")
    got = predict_file(bundle, molecules, tmp_path / "bundle.csv", progress=False)
    for suffix in ("", "_sd", "_lower", "_upper"):
        np.testing.assert_allclose(got[f"{TARGET}{suffix}"], expected[f"{TARGET}{suffix}"],
                                   rtol=0, atol=1e-6)  # fmt: skip
    assert (expected[f"{TARGET}_upper"] > expected[f"{TARGET}_lower"]).all()
