"""Tasks: loss, metrics and the monitored key, set together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional import (
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    spearman_corrcoef,
)
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from molgraph.types import TaskKind

_REGRESSION = {
    "rmse": lambda p, t: mean_squared_error(p, t, squared=False),
    "mae": mean_absolute_error,
    "r2": r2_score,
    "spearman": spearman_corrcoef,
}
_CLASSIFICATION = {
    "roc_auc": lambda p, t: binary_auroc(p, t.long()),
    "pr_auc": lambda p, t: binary_average_precision(p, t.long()),
}


@dataclass(frozen=True)
class Task:
    """Regression (MSE on standardised targets) or binary classification (BCE), one or
    more targets; missing labels are masked out of loss and metrics.

    The monitored metric is RMSE (minimised) for regression and ROC-AUC (maximised) for
    classification, averaged over targets.
    """

    kind: TaskKind
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if self.kind not in ("regression", "classification"):
            raise ValueError(f"task kind must be regression or classification, got {self.kind!r}")

    @property
    def monitor(self) -> str:
        return "val/rmse" if self.kind == "regression" else "val/roc_auc"

    @property
    def mode(self) -> Literal["min", "max"]:
        return "min" if self.kind == "regression" else "max"

    def loss(self, output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Mean loss over labelled entries; ``[G, T]`` each, mask bool."""
        if self.kind == "regression":
            per_entry = F.mse_loss(output, target, reduction="none")
        else:
            per_entry = F.binary_cross_entropy_with_logits(output, target, reduction="none")
        # where, not a product: an unlabelled entry (e.g. a padding graph) contributes
        # exactly zero even if its output is not finite
        total = torch.where(mask, per_entry, torch.zeros_like(per_entry)).sum()
        return total / mask.sum().clamp_min(1).to(per_entry.dtype)

    def activation(self, output: Tensor) -> Tensor:
        """Model output → prediction in target units (probabilities for classification)."""
        return torch.sigmoid(output) if self.kind == "classification" else output

    def metrics(self, pred: Tensor, target: Tensor, mask: Tensor) -> dict[str, float]:
        """Metrics per target (``name/target``) and averaged (``name``) over targets where
        they are defined (e.g. ROC-AUC needs both classes)."""
        functions = _REGRESSION if self.kind == "regression" else _CLASSIFICATION
        pred, target, mask = pred.detach().double().cpu(), target.double().cpu(), mask.cpu()
        out: dict[str, float] = {}
        for metric, fn in functions.items():
            values = []
            for t, name in enumerate(self.names):
                m = mask[:, t]
                value = _defined(fn, pred[m, t], target[m, t], self.kind)
                out[f"{metric}/{name}"] = value
                values.append(value)
            out[metric] = (
                float(np.nanmean(values)) if not np.all(np.isnan(values)) else float("nan")
            )
        return out


def _defined(fn, pred: Tensor, target: Tensor, kind: TaskKind) -> float:
    if len(target) < 2 or (kind == "classification" and len(torch.unique(target)) < 2):
        return float("nan")
    return float(fn(pred, target))
