"""Interrupted training runs: the marker of an unfinished run, the checkpoint a run
resumes from, and the random state that makes a resumed run equal an uninterrupted one.

A run writes :data:`RUNNING` into its directory when it starts and removes it when it
has written its metrics; a run directory that still holds it was killed (or is still
training). Every epoch the run's last state goes to :data:`LAST_CHECKPOINT` (weights,
optimizer, epoch, early-stopping and best-checkpoint state, and the torch random state),
from which ``molgraph train resume=RUN_DIR`` goes on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from molgraph.errors import ConfigError

#: The marker of a run that has not finished.
RUNNING = "RUNNING"
#: The state a killed run resumes from, relative to the run directory.
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def mark_running(run_dir: Path) -> None:
    """Write the unfinished-run marker (removed by :func:`mark_finished`)."""
    (Path(run_dir) / RUNNING).write_text(
        f"started {time.strftime('%Y-%m-%d %H:%M:%S')} by pid {os.getpid()}; this file is "
        "removed when the run finishes. If no run is training here, it was killed: "
        f"`molgraph train resume={run_dir}` goes on from its last epoch.\n"
    )


def mark_finished(run_dir: Path) -> None:
    (Path(run_dir) / RUNNING).unlink(missing_ok=True)


def unfinished(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a run that did not finish (killed, or still training)."""
    return (Path(run_dir) / RUNNING).is_file()


def resume_checkpoint(run_dir: Path) -> Path:
    """The last-epoch checkpoint of ``run_dir``.

    Raises
    ------
    ConfigError
        No such checkpoint (the run was killed before its first epoch ended).
    """
    path = Path(run_dir) / LAST_CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"resume={run_dir}: no {LAST_CHECKPOINT} there (the run ended "
                          "before its first epoch, or is not a training run): train it anew")  # fmt: skip
    return path


class RandomState(L.Callback):
    """Saves torch's random state (dropout masks) in each checkpoint and restores it on
    resume, so epoch k of a resumed run draws what it would have drawn uninterrupted."""

    def state_dict(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])


class LoaderEpoch(L.Callback):
    """Sets the training loader's epoch counter (its shuffle order is drawn from ``seed +
    epoch``) to the trainer's epoch, so a resumed run goes on with the order of its next
    epoch; in a run that is not resumed the two already agree."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = trainer.train_dataloader
        if hasattr(loader, "epoch"):
            loader.epoch = trainer.current_epoch
