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

from molgraph.types import TaskKind, compact_kinds, task_kinds

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


_MIN_VARIANCE = 1e-6


@dataclass(frozen=True)
class Task:
    """Regression (MSE on standardised targets) or binary classification (BCE), one or
    more targets; missing labels are masked out of loss and metrics.

    ``kind`` is one kind for every target, or a tuple of one kind per target (a mixed
    task trains regression and classification targets together). The monitored metric
    is RMSE (minimised) for regression, ROC-AUC (maximised) for classification, averaged
    over targets, and the validation loss (minimised) for a mixed task.

    With ``variance`` (regression only) the model is a mean-variance estimator: its
    outputs are ``T`` means then ``T`` raw variances (``softplus(raw) + 1e-6``, in
    standardised units), trained with the Gaussian negative log-likelihood.
    """

    kind: TaskKind | tuple[TaskKind, ...]
    names: tuple[str, ...]
    variance: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if isinstance(self.kind, str):
            task_kinds(self.kind, ())  # checks the kind
        else:
            object.__setattr__(self, "kind", compact_kinds(task_kinds(self.kind, self.names)))
        if self.variance and self.kind != "regression":
            raise ValueError(
                f"a variance head (uncertainty=mve) needs regression targets, not {self.kind!r}"
            )

    @property
    def num_outputs(self) -> int:
        """Model outputs per graph: a mean per target, and a variance per target too."""
        return len(self.names) * (2 if self.variance else 1)

    def split_outputs(self, output: Tensor) -> tuple[Tensor, Tensor | None]:
        """Raw outputs → means ``[G, T]`` and variances ``[G, T]`` (None without
        ``variance``), both in standardised units."""
        if not self.variance:
            return output, None
        mean, raw = output.chunk(2, dim=-1)
        return mean, F.softplus(raw) + _MIN_VARIANCE

    @property
    def kinds(self) -> tuple[TaskKind, ...]:
        """The kind of each target."""
        return task_kinds(self.kind, self.names)

    @property
    def monitor(self) -> str:
        return {"regression": "val/rmse", "classification": "val/roc_auc"}.get(
            self.kind, "val/loss"
        )

    @property
    def mode(self) -> Literal["min", "max"]:
        return "max" if self.kind == "classification" else "min"

    def _classified(self, output: Tensor) -> Tensor:
        """Bool ``[T]``: which targets are classification targets."""
        flags = [k == "classification" for k in self.kinds]
        return torch.tensor(flags, dtype=torch.bool, device=output.device)

    def loss(self, output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Mean loss over labelled entries; ``[G, T]`` each, mask bool."""
        if self.variance:
            mean, var = self.split_outputs(output)
            per_entry = 0.5 * (torch.log(var) + (target - mean) ** 2 / var)
        elif self.kind == "regression":
            per_entry = F.mse_loss(output, target, reduction="none")
        elif self.kind == "classification":
            per_entry = F.binary_cross_entropy_with_logits(output, target, reduction="none")
        else:
            per_entry = torch.where(
                self._classified(output),
                F.binary_cross_entropy_with_logits(output, target, reduction="none"),
                F.mse_loss(output, target, reduction="none"),
            )
        # where, not a product: an unlabelled entry (e.g. a padding graph) contributes
        # exactly zero even if its output is not finite
        total = torch.where(mask, per_entry, torch.zeros_like(per_entry)).sum()
        return total / mask.sum().clamp_min(1).to(per_entry.dtype)

    def activation(self, output: Tensor) -> Tensor:
        """Model output → prediction in target units (probabilities for classification)."""
        if self.kind == "regression":
            return output
        if self.kind == "classification":
            return torch.sigmoid(output)
        return torch.where(self._classified(output), torch.sigmoid(output), output)

    def metrics(self, pred: Tensor, target: Tensor, mask: Tensor) -> dict[str, float]:
        """Metrics per target (``name/target``) and averaged (``name``) over the targets of
        their kind where they are defined (e.g. ROC-AUC needs both classes)."""
        pred, target, mask = pred.detach().double().cpu(), target.double().cpu(), mask.cpu()
        out: dict[str, float] = {}
        kinds = self.kinds
        for kind, functions in (("regression", _REGRESSION), ("classification", _CLASSIFICATION)):
            targets = [(t, name) for t, name in enumerate(self.names) if kinds[t] == kind]
            if not targets:
                continue
            for metric, fn in functions.items():
                values = []
                for t, name in targets:
                    m = mask[:, t]
                    value = _defined(fn, pred[m, t], target[m, t], kind)
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
