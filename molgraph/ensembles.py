"""Training runs that predict their own uncertainty (``molgraph train ensemble=5`` or
``uncertainty=dropout``).

An ensemble run trains members ``member0 … member{K-1}`` (seeds ``seed … seed+K-1``, the
same split; ``member0`` is exactly the single-model run of ``seed``) in sub-directories,
one after another or ``workers`` at a time in processes (one GPU each where there are
several). It then predicts the validation and test sets with every member (or with
``samples`` MC-dropout passes of one model), fits the calibration on validation, and
writes to the run directory ``ensemble.json``, ``metrics.json`` (task metrics of the
mean; on test also NLL, miscalibration area or ECE, ENCE, Spearman |error|~sd, conformal
coverage), ``predictions_val.csv``, ``predictions_test.csv`` (mean, sd, interval bounds,
one column per member) and ``calibration.png``, ``error_vs_uncertainty.png``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molgraph.data.dataset import GraphDataset
from molgraph.data.loader import GraphDataModule
from molgraph.data.splits import SplitIndices
from molgraph.errors import ConfigError
from molgraph.models.module import PropertyModel
from molgraph.train import Metrics, TrainingRun, load_dataset, train
from molgraph.uncertainty import Ensemble, calibrate_and_evaluate, load_ensemble
from molgraph.uncertainty.calibration import CLASSIFICATION_METHODS, REGRESSION_METHODS
from molgraph.uncertainty.ensemble import METHODS, Samples, write_record
from molgraph.uncertainty.plots import plot_calibration, plot_error_vs_uncertainty


@dataclass(frozen=True)
class UncertaintySettings:
    """How a run estimates and calibrates its uncertainty (config group ``uncertainty``).

    Parameters
    ----------
    method
        ``ensemble`` (``members`` models) or ``dropout`` (one model, ``samples``
        MC-dropout passes; the head needs ``dropout > 0``). Members with a mean-variance
        head (``variance=true``; ``uncertainty=mve``) add their predicted variances.
    members
        Ensemble size (``ensemble=K`` on the command line).
    samples
        MC-dropout passes per member.
    coverage
        Target coverage of the conformal intervals / label sets.
    calibration
        Recalibration of probabilities: ``isotonic``, ``platt``, ``none`` or ``auto`` (the
        one with the lowest cross-validated validation NLL).
    sd_calibration
        Recalibration of regression sds: ``zscale`` (one factor), ``affine`` (a factor
        and a variance offset, fitted by the validation NLL) or ``auto`` (per target, the
        one with the lower cross-validated validation NLL).
    workers
        Members trained at a time, each in its own process (one GPU each where several).
    """

    method: str = "ensemble"
    members: int = 5
    samples: int = 20
    coverage: float = 0.9
    calibration: str = "auto"
    sd_calibration: str = "auto"
    workers: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"uncertainty.method must be one of {METHODS}, got {self.method!r}")
        if self.calibration not in CLASSIFICATION_METHODS:
            raise ConfigError(f"uncertainty.calibration must be one of {CLASSIFICATION_METHODS}")
        if self.sd_calibration not in REGRESSION_METHODS:
            raise ConfigError(f"uncertainty.sd_calibration must be one of {REGRESSION_METHODS}")
        if self.members < 1 or self.samples < 1 or self.workers < 1:
            raise ConfigError("uncertainty: members, samples and workers must be at least 1")
        if not 0 < self.coverage < 1:
            raise ConfigError(f"uncertainty.coverage must be in (0, 1), got {self.coverage}")

    @property
    def n_models(self) -> int:
        return self.members if self.method == "ensemble" else 1


def _member(run: TrainingRun, index: int, run_dir: Path, gpus: int) -> Metrics:
    """Train member ``index`` (seed ``run.seed + index``) into ``run_dir/member<index>``."""
    member = dataclasses.replace(run, seed=run.seed + index)
    if gpus > 1 and run.trainer.get("accelerator", "auto") in ("auto", "gpu", "cuda"):
        member = dataclasses.replace(member, trainer={**run.trainer, "devices": [index % gpus]})
    return train(member, run_dir / f"member{index}")


def train_members(run: TrainingRun, run_dir: Path, settings: UncertaintySettings) -> None:
    """Train the members, ``settings.workers`` at a time."""
    n, gpus = settings.n_models, torch.cuda.device_count()
    if settings.workers == 1 or n == 1:
        for i in range(n):
            _member(run, i, run_dir, gpus)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(settings.workers, n), mp_context=context) as pool:
        for future in [pool.submit(_member, run, i, run_dir, gpus) for i in range(n)]:
            future.result()


def train_ensemble(run: TrainingRun, run_dir: str | Path, settings: UncertaintySettings) -> Metrics:
    """Train, calibrate on validation and evaluate on test (see the module docstring)."""
    run_dir = Path(run_dir)
    train_members(run, run_dir, settings)
    names = [f"member{i}" for i in range(settings.n_models)]
    write_record(run_dir, {"format": "molgraph-ensemble", "method": settings.method,
                           "samples": settings.samples, "calibration": None,
                           "members": [{"name": n} for n in names]})  # fmt: skip
    ensemble = load_ensemble(run_dir)
    dataset = load_dataset(run)
    split = SplitIndices.load(run_dir / "member0" / "split.json", dataset.row_ids)
    data = GraphDataModule(dataset, split, batch_size=run.batch_size, seed=run.seed)
    samples = {
        part: ensemble.sample(
            lambda m, p=part: m.predict_batches(data.eval_loader(p, False), variance=True).numpy()
        )
        for part in ("val", "test")
    }
    y = {part: dataset.y[getattr(split, part)].numpy() for part in ("val", "test")}
    task = ensemble.task
    (val, val_var), (test, test_var) = samples["val"], samples["test"]
    calibration, parts, uncertainty = calibrate_and_evaluate(
        task.kind, task.names, y["val"], val, y["test"], test, settings.coverage,
        settings.calibration, val_var, test_var, settings.sd_calibration,
    )  # fmt: skip
    ensemble.calibration = calibration
    write_record(run_dir, ensemble.record([{"name": n} for n in names]))
    metrics = {part: _task_metrics(ensemble.members[0], samples[part][0], y[part])
               for part in ("val", "test")}  # fmt: skip
    metrics["test"].update(uncertainty)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for part in ("val", "test"):
        _write_predictions(dataset, split, part, ensemble, samples[part], run_dir)
    plot_calibration(task.kind, task.names, y["test"], parts, run_dir / "calibration.png")
    plot_error_vs_uncertainty(task.names, y["test"], parts, run_dir / "error_vs_uncertainty.png")
    return metrics


def _task_metrics(model: PropertyModel, samples: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The task's metrics of the mean prediction (raw mean probabilities)."""
    mean, target = torch.from_numpy(samples.mean(axis=0)), torch.from_numpy(y)
    return model.task.metrics(mean, torch.nan_to_num(target), ~torch.isnan(target))


def _write_predictions(
    dataset: GraphDataset,
    split: SplitIndices,
    part: str,
    ensemble: Ensemble,
    samples: Samples,
    run_dir: Path,
) -> None:
    indices = getattr(split, part)
    table = pd.DataFrame({"row": dataset.row_ids[indices],
                          dataset.item_name: [dataset.items[i] for i in indices]})  # fmt: skip
    y = dataset.y[indices].numpy()
    for t, name in enumerate(dataset.target_names):
        table[name] = y[:, t]
    values = ensemble.summarize(samples, members=True)
    columns = [f"{c}_pred" if c in dataset.target_names else c for c in ensemble.columns(True)]
    table = pd.concat([table, pd.DataFrame(values, columns=columns)], axis=1)
    table.to_csv(run_dir / f"predictions_{part}.csv", index=False)
