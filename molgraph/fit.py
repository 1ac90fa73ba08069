"""Fitting a model and writing a run's artefacts (metrics, predictions, plots)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from molgraph.data.dataset import GraphDataset
from molgraph.data.loader import GraphDataModule
from molgraph.models.checkpoint import MODEL_FILE, save_checkpoint
from molgraph.models.module import PropertyModel
from molgraph.models.tasks import Task
from molgraph.models.undefined import json_metrics, undefined_reasons
from molgraph.plots import plot_parity, plot_roc, plot_training_curves

log = logging.getLogger(__name__)

#: Extra test metrics of a run: (test indices, predictions ``[n, T]``) -> {name: value}.
TestScorer = Callable[[np.ndarray, np.ndarray], dict[str, float]]


class EpochTimer(L.Callback):
    """Logs ``train/epoch_time``: seconds from the start of each training epoch to its end
    (validation included), the GPU synchronised at both ends so queued work counts."""

    def _now(self, pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = self._now(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        elapsed = self._now(pl_module) - self.start  # under DDP: the slowest rank's
        pl_module.log("train/epoch_time", elapsed, on_epoch=True, sync_dist=True, reduce_fx="max")


def fit_and_report(
    model: PropertyModel,
    datamodule: GraphDataModule,
    trainer: L.Trainer,
    run_dir: Path,
    checkpoint: Path | None = None,
    extra_test_metrics: TestScorer | None = None,
) -> dict[str, dict[str, float]]:
    """Train, restore the best checkpoint, and write the run's artefacts to ``run_dir``:
    ``model.pt``, ``metrics.json`` (val and test, per task; an undefined metric is
    ``null`` with its reason under ``undefined``), ``predictions_test.csv``,
    ``training_curves.png`` and ``parity.png`` and/or ``roc.png``. ``checkpoint``: resume
    from it (a killed run's ``last.ckpt``)."""
    trainer.fit(model, datamodule, ckpt_path=checkpoint)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        checkpoint = torch.load(best, map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["state_dict"])
        log.info("restored best checkpoint %s", best)
    if not trainer.is_global_zero:
        return {}
    model.to(trainer.strategy.root_device)  # Lightning hands the model back on the CPU after fit
    save_checkpoint(model, run_dir / MODEL_FILE)
    dataset, split, task = datamodule.dataset, datamodule.split, model.task
    metrics: dict[str, dict[str, float]] = {}
    reasons: dict[str, str] = {}
    for part in ("val", "test"):
        indices = getattr(split, part)
        pred = model.predict_batches(datamodule.eval_loader(part, distributed=False))
        y = dataset.y[indices].cpu()
        metrics[part] = task.metrics(pred, torch.nan_to_num(y), ~torch.isnan(y))
        reasons.update(undefined_reasons(task, part, metrics[part], y, ~torch.isnan(y)))
        if part == "test":
            _write_predictions(dataset, indices, pred, run_dir / "predictions_test.csv")
            _plot(task, y.numpy(), pred.numpy(), run_dir)
            if extra_test_metrics is not None:
                extra = extra_test_metrics(np.asarray(indices), pred.numpy())
                metrics[part].update(extra)
                reasons.update({f"test/{k}": f"{k} is undefined on this test part (fewer "
                                "than 2 scored items, or constant scores or predictions)"
                                for k, v in extra.items() if math.isnan(v)})  # fmt: skip
    monitored = task.monitor.removeprefix("val/")
    best_score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    if monitored not in metrics["val"] and best_score is not None:  # a mixed task's val loss
        metrics["val"][monitored] = float(best_score)
    (run_dir / "metrics.json").write_text(json.dumps(json_metrics(metrics, reasons), indent=2))
    curves = run_dir / "metrics.csv"
    if curves.is_file():
        plot_training_curves(curves, run_dir / "training_curves.png", task.monitor)
    return metrics


def _write_predictions(
    dataset: GraphDataset, indices: np.ndarray, pred: torch.Tensor, path: Path
) -> None:
    items = dataset.items
    table = pd.DataFrame(
        {"row": dataset.row_ids[indices], dataset.item_name: [items[i] for i in indices]}
    )
    y = dataset.y[indices].cpu().numpy()
    for t, name in enumerate(dataset.target_names):
        table[name] = y[:, t]
        table[f"{name}_pred"] = pred[:, t].numpy()
    table.to_csv(path, index=False)


def _plot(task: Task, y: np.ndarray, pred: np.ndarray, run_dir: Path) -> None:
    """``parity.png`` of the regression targets, ``roc.png`` of the classification ones."""
    for kind, plot, name in (("regression", plot_parity, "parity.png"),
                             ("classification", plot_roc, "roc.png")):  # fmt: skip
        columns = [t for t, k in enumerate(task.kinds) if k == kind]
        if columns:
            plot(y[:, columns], pred[:, columns], [task.names[t] for t in columns], run_dir / name)
