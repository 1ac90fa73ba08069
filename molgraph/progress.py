"""The training progress bar: Lightning's, with the last epoch's training loss and the
monitored validation metric beside the step counter."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class MetricsProgressBar(TQDMProgressBar):
    """Shows ``loss`` (the last finished epoch's mean training loss) and the monitored
    metric (``val/rmse``, ``val/roc_auc``, ...) once they exist."""

    def __init__(self, monitor: str) -> None:
        super().__init__()
        self.monitor = monitor

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        shown = super().get_metrics(trainer, pl_module)
        logged = trainer.callback_metrics
        for name, key in (("loss", "train/loss"), (self.monitor, self.monitor)):
            if key in logged:
                shown[name] = f"{float(logged[key]):.4g}"
        return shown
