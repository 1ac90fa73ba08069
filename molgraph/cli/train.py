"""``molgraph train``: the Hydra application.

One run, or (``-m``) a sweep of runs. In a sweep, a run that raises is recorded as
failed (``failed.json`` in its directory) and the sweep goes on; a single run that raises
still exits non-zero. With ``replicates=k`` a run trains seeds ``seed … seed+k-1`` (one
sub-directory each) and returns their mean validation metric: the objective an Optuna
sweep optimises.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import __main__
from molgraph.builder import config_dir, train_from_config
from molgraph.errors import ConfigError, MolgraphError
from molgraph.models.tasks import Task
from molgraph.report import record_failure
from molgraph.resume import resume_checkpoint

log = logging.getLogger(__name__)

_DIRECTIONS = {"regression": "minimize", "classification": "maximize"}
#: Errors of the data or the config: one line without ``--debug``, not a traceback.
USER_ERRORS = (MolgraphError, OmegaConfBaseException, InstantiationException)
DEBUG = "MOLGRAPH_DEBUG"


_flags = {"debug": False}


def _debugging() -> bool:
    """``--debug`` was given, or ``MOLGRAPH_DEBUG`` is set (to anything but 0)."""
    return _flags["debug"] or os.environ.get(DEBUG, "") not in ("", "0")


class _Reported(SystemExit):
    """A single run's error, already printed as one line (Hydra passes SystemExit on)."""


def monitored_task(task: object) -> Task:
    """The task of ``data.task`` (one kind, a list per target or a mapping), for its
    monitored metric."""
    if isinstance(task, (DictConfig, ListConfig)):
        task = OmegaConf.to_container(task)
    try:
        if isinstance(task, dict):
            return Task(tuple(task.values()), tuple(task))
        if isinstance(task, (list, tuple)):
            return Task(tuple(task), tuple(str(i) for i in range(len(task))))
        if task not in _DIRECTIONS:
            raise ValueError(f"data.task must be one of {sorted(_DIRECTIONS)}, got {task!r}")
        return Task(task, ())  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def sweep_direction(task_kind: object) -> str:
    """Optuna's direction for a task's monitored metric (``${direction:${data.task}}``)."""
    return "maximize" if monitored_task(task_kind).mode == "max" else "minimize"


if not OmegaConf.has_resolver("direction"):
    OmegaConf.register_new_resolver("direction", sweep_direction)


def _check_launch(cfg: DictConfig, multirun: bool) -> None:
    """DDP's subprocess launcher re-runs this command once per extra GPU, which works for
    one training run only: children of a sweep would start sweeps of their own, and a
    second replicate would launch children again."""
    strategy = str(cfg.trainer.get("strategy", ""))
    launched_outside = any(k in os.environ for k in ("SLURM_NTASKS", "LOCAL_RANK"))
    several = multirun or int(cfg.get("replicates", 1)) > 1
    if several and strategy.startswith("ddp") and "spawn" not in strategy and not launched_outside:
        raise ConfigError(
            f"trainer.strategy={strategy} cannot run inside a local multirun or with "
            "replicates > 1: run each configuration and seed on its own, or sweep on a "
            "cluster (hydra/launcher=slurm)"
        )


def print_run(run_dir: Path, metrics: dict[str, dict[str, float]], note: str = "") -> None:
    """The run directory and its mean validation and test metrics, rounded."""
    print(f"\nrun directory: {run_dir}{note}")
    for part in ("val", "test"):
        means = {k: round(v, 4) for k, v in metrics[part].items() if "/" not in k}
        print(f"{part} metrics: " + json.dumps(means))


def fold_runs(cfg: DictConfig, run_dir: Path) -> list[tuple[DictConfig, Path]]:
    """With ``split.fold=all``, one config and sub-directory ``fold<i>/`` per fold of
    ``split.k``; else the run itself."""
    split = cfg.get("split") or {}
    if str(split.get("fold", "")) != "all":
        return [(cfg, run_dir)]
    k = int(split.get("k", 0))
    if k < 2:
        raise ConfigError(f"split.fold=all needs split.k >= 2, got {split.get('k')}")
    return [(OmegaConf.merge(cfg, {"split": {"fold": i}}), run_dir / f"fold{i}") for i in range(k)]


def train_replicates(cfg: DictConfig, run_dir: Path) -> float | None:
    """Train ``cfg.replicates`` seeds from ``cfg.seed`` (for every fold with
    ``split.fold=all``); the mean validation metric (None on ranks other than zero)."""
    replicates = int(cfg.get("replicates", 1))
    if replicates < 1:
        raise ConfigError(f"replicates must be at least 1, got {replicates}")
    runs = []
    for fold_cfg, fold_dir in fold_runs(cfg, run_dir):
        if replicates == 1:
            runs.append((fold_cfg, fold_dir))
            continue
        for seed in range(cfg.seed, cfg.seed + replicates):
            runs.append((OmegaConf.merge(fold_cfg, {"seed": seed}), fold_dir / f"seed{seed}"))
    values = []
    for run_cfg, path in runs:
        try:
            metrics = train_from_config(run_cfg, path)
        finally:  # a DDP run's process group ends with it: the next run makes its own
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
        if not metrics:
            return None
        print_run(path, metrics)
        monitor = monitored_task(cfg.data.task).monitor.removeprefix("val/")
        values.append(metrics["val"][monitor])
    return sum(values) / len(values)


def _task(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        _check_launch(cfg, multirun)
        return train_replicates(cfg, run_dir)
    except Exception as error:
        record_failure(run_dir, error)
        if not multirun:
            if not _debugging() and isinstance(error, USER_ERRORS):
                print(f"molgraph train: {' '.join(str(error).split())}", file=sys.stderr)
                raise _Reported(1) from None
            raise
        log.exception("run %s failed (recorded in failed.json); the sweep goes on", run_dir)
        return _worst(cfg)


def _worst(cfg: DictConfig) -> float:
    """The objective of a failed run: the worst value, so an Optuna study goes on (its
    sweeper stops at a trial that raises or returns NaN) and steers away from it."""
    try:
        return math.inf if sweep_direction(cfg.data.task) == "minimize" else -math.inf
    except Exception:  # no usable data.task: nothing better to say
        return math.nan


#: Hydra plugins of the optional extras: (override prefix, plugin module, extra).
EXTRAS = (
    ("search=optuna", "hydra_plugins.hydra_optuna_sweeper", "search"),
    ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher=submitit", "hydra_plugins.hydra_submitit_launcher", "slurm"),
)


def missing_extra(argv: list[str]) -> str | None:
    """The error for an override whose plugin is not installed, naming the extra."""
    for prefix, module, extra in EXTRAS:
        if any(a.lstrip("+~").startswith(prefix) for a in argv):
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                return (f"molgraph train: {prefix.split('=')[0]}={prefix.split('=')[1]} needs "
                        f"the '{extra}' extra: pip install 'molgraph[{extra}]'")  # fmt: skip
    return None


def resume(run_dir: Path) -> int:
    """``molgraph train resume=RUN_DIR``: the run's own config.yaml, same split, from its
    last epoch (epoch count, early-stopping and best-checkpoint state carried on)."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        print(f"molgraph train: resume={run_dir}: no config.yaml there", file=sys.stderr)
        return 2
    try:
        resume_checkpoint(run_dir)
    except ConfigError as exc:
        print(f"molgraph train: {exc}", file=sys.stderr)
        return 2
    cfg = OmegaConf.load(config)
    assert isinstance(cfg, DictConfig)
    if int(cfg.get("replicates", 1)) != 1:
        print("molgraph train: resume: resume each seed<i>/ folder of a replicates run "
              "on its own", file=sys.stderr)  # fmt: skip
        return 2
    try:
        metrics = train_from_config(cfg, run_dir, resume=True)
    except ConfigError as exc:
        print(f"molgraph train: {exc}", file=sys.stderr)
        return 2
    if metrics:
        print_run(run_dir, metrics, " (resumed)")
    return 0


def main(argv: list[str]) -> int:
    _flags["debug"] = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # not a Hydra override
    if (error := missing_extra(argv)) is not None:
        print(error, file=sys.stderr)
        return 2
    if any(a.startswith("resume=") for a in argv):
        if len(argv) != 1:
            print("molgraph train: resume=RUN_DIR takes no other overrides (the run's own "
                  "config.yaml is used)", file=sys.stderr)  # fmt: skip
            return 2
        return resume(Path(argv[0].split("=", 1)[1]))
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")(_task)
    # DDP's launcher starts the other ranks as `python sys.argv[0] sys.argv[1:]`, or as
    # `python -m <module of __main__> sys.argv[1:]` after `python -m ...` (molgraph.cli.main,
    # pytest): make it this file, run with these arguments, either way
    saved = sys.argv, getattr(__main__, "__spec__", None)
    sys.argv, __main__.__spec__ = [__file__, *argv], None
    try:
        app()
    except _Reported:
        return 1
    finally:
        sys.argv, __main__.__spec__ = saved
    return 0


if __name__ == "__main__":  # how DDP's launcher re-runs `molgraph train` for ranks > 0
    sys.exit(main(sys.argv[1:]))
