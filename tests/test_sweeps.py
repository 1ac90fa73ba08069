"""Sweeps end to end: a multirun with a failing configuration, its report, an Optuna search,
the SLURM launcher (offline), DDP on two CPU processes, and the optional TensorBoard logger."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers import TINY_TRAINING
from hydra import compose, initialize_config_dir

from molgraph.builder import config_dir
from molgraph.cli.main import main
from molgraph.errors import ConfigError
from molgraph.report import ReportError, collect_runs, summarize

# EGNN needs conformers, which the default featurizer does not make: both its runs fail.
SWEEP = ("encoder=gin,gcn,egnn", "seed=0,1")
NEEDS_COORDINATES = "needs 3D coordinates"


@pytest.fixture(scope="module", autouse=True)
def _shared_cache(tmp_path_factory: pytest.TempPathFactory):
    """One featurization cache for the module's runs (ESOL is featurized once)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOLGRAPH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _train(*arguments: str) -> int:
    environ = dict(os.environ)  # DDP's launcher sets LOCAL_RANK and others in the parent
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "argv", list(sys.argv))  # the train command replaces it
            return main(["train", *arguments])
    finally:
        os.environ.clear()
        os.environ.update(environ)


def _val_rmse(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["val"]["rmse"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 encoders x 2 seeds multirun on the embedded ESOL set (tiny runs)."""
    root = tmp_path_factory.mktemp("sweep")
    code = _train("-m", f"hydra.sweep.dir={root / 'sweep'}", *SWEEP, *TINY_TRAINING)
    assert code == 0
    return root / "sweep"


def _runs_by_override(sweep: Path) -> dict[tuple[str, str], Path]:
    runs = {}
    for overrides_file in sweep.glob("*/.hydra/overrides.yaml"):
        overrides = dict(o.split("=", 1) for o in yaml.safe_load(overrides_file.read_text()))
        runs[overrides["encoder"], overrides["seed"]] = overrides_file.parents[1]
    return runs


def test_failed_runs_are_recorded_and_the_sweep_goes_on(sweep: Path) -> None:
    runs = _runs_by_override(sweep)
    assert len(runs) == 6
    for (encoder, _), run_dir in runs.items():
        if encoder == "egnn":
            record = json.loads((run_dir / "failed.json").read_text())
            assert record["error"].startswith("ConfigError:")
            assert NEEDS_COORDINATES in record["error"]
            assert "Traceback" in record["traceback"]
            assert not (run_dir / "metrics.json").exists()
        else:
            assert (run_dir / "metrics.json").is_file()
            assert not (run_dir / "failed.json").exists()


def test_report_rows_means_and_failures(sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert main(["report", str(sweep), "--out", str(out)]) == 0
    assert "## Failed runs (2 of 6)" in capsys.readouterr().out
    table = pd.read_csv(out / "report.csv")
    means = table.set_index("configuration").val_mean
    # best validation RMSE first, the configuration that never ran last
    ranked = sorted(["encoder=gin", "encoder=gcn"], key=means.get)
    assert list(table["configuration"]) == [*ranked, "encoder=egnn"]
    runs = _runs_by_override(sweep)
    for encoder in ("gin", "gcn"):
        row = table.set_index("configuration").loc[f"encoder={encoder}"]
        values = [_val_rmse(runs[encoder, seed]) for seed in ("0", "1")]
        assert row.metric == "rmse"
        assert (row.n_runs, row.n_failed, row.seeds) == (2, 0, "0 1")
        assert row.val_mean == pytest.approx(sum(values) / 2)
        assert row.val_sd == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
        assert row.encoder == encoder
    egnn = table.set_index("configuration").loc["encoder=egnn"]
    assert (egnn.n_runs, egnn.n_failed) == (0, 2)
    assert math.isnan(egnn.val_mean)

    markdown = (out / "report.md").read_text()
    lines = markdown.splitlines()
    assert lines.index(next(x for x in lines if x.startswith("| 1 |"))) < lines.index(
        next(x for x in lines if "`encoder=egnn`" in x and x.startswith("| 3 |"))
    )
    failed = [x for x in lines if x.startswith("- ") and "`encoder=egnn`" in x]
    assert len(failed) == 2 and all(NEEDS_COORDINATES in x for x in failed)
    assert "trainer.max_epochs=2" in markdown  # the shared overrides, stated once
    assert (out / "report.png").stat().st_size > 0
    listing = pd.read_csv(out / "runs.csv")
    assert sorted(listing["status"]) == ["failed"] * 2 + ["finished"] * 4


def test_report_of_a_folder_without_runs_fails_clearly(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 1
    assert "no run directory" in capsys.readouterr().err
    with pytest.raises(ReportError, match="not a directory"):
        collect_runs(tmp_path / "missing")


def test_classification_rows_rank_highest_roc_auc_first(tmp_path: Path) -> None:
    for name, (val, seed) in {"a": (0.70, 0), "b": (0.90, 0), "c": (0.80, 0)}.items():
        run = tmp_path / name
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(f"- encoder={name}\n- seed={seed}\n")
        metrics = {"val": {"roc_auc": val}, "test": {"roc_auc": val - 0.1}}
        (run / "metrics.json").write_text(json.dumps(metrics))
    table = summarize(collect_runs(tmp_path))
    assert list(table["configuration"]) == ["encoder=b", "encoder=c", "encoder=a"]


def test_single_run_failure_exits_nonzero_and_is_recorded(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # a config error: one line and exit code 1 (issue 16), no traceback
    assert _train(f"hydra.run.dir={run_dir}", "encoder=egnn", *TINY_TRAINING) == 1
    assert NEEDS_COORDINATES in json.loads((run_dir / "failed.json").read_text())["error"]


def test_optuna_search_runs_three_trials_on_replicate_seeds(tmp_path: Path) -> None:
    sweep = tmp_path / "optuna"
    tiny = [o for o in TINY_TRAINING if not o.startswith("encoder.")]  # the search sets them
    arguments = ["search=optuna", "hydra.sweeper.n_trials=3", "replicates=2", *tiny]
    assert _train(f"hydra.sweep.dir={sweep}", *arguments) == 0
    trials = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(trials) == 3
    objectives = []
    sampled = set()
    for trial in trials:
        # each trial trains seeds 0 and 1; its objective is their mean validation RMSE
        objectives.append((_val_rmse(trial / "seed0") + _val_rmse(trial / "seed1")) / 2)
        overrides = yaml.safe_load((trial / ".hydra" / "overrides.yaml").read_text())
        sampled.add(tuple(o for o in overrides if o.startswith("encoder.")))
    assert len(sampled) == 3  # TPE proposed three different encoders
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(min(objectives))
    assert results["best_params"]["encoder.num_layers"] in range(2, 6)
    table = summarize(collect_runs(sweep))
    assert list(table["n_runs"]) == [2, 2, 2]
    assert table["val_mean"].iloc[0] == pytest.approx(min(objectives))


def test_failed_optuna_trials_score_worst_and_the_study_goes_on(tmp_path: Path) -> None:
    sweep = tmp_path / "optuna"
    arguments = ["search=optuna", "hydra.sweeper.n_trials=2", "encoder=egnn", *TINY_TRAINING]
    assert _train(f"hydra.sweep.dir={sweep}", *arguments) == 0
    assert len(list(sweep.glob("*/failed.json"))) == 2
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == math.inf  # RMSE: the worst there is


def test_optuna_direction_follows_the_task() -> None:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for data, direction in (("esol", "minimize"), ("bbbp", "maximize")):
            cfg = compose("train", [f"data={data}", "search=optuna"], return_hydra_config=True)
            assert str(cfg.hydra.sweeper.direction) == direction
            assert cfg.hydra.sweeper.sampler.seed == 0
            assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.TPESampler"


class _Done:
    def __init__(self, value) -> None:
        self.value = value

    def results(self) -> list:
        return [self.value]


def test_slurm_launcher_submits_valid_jobs_offline(tmp_path: Path, monkeypatch) -> None:
    """The sweep goes through the submitit plugin with the slurm config; submitit accepts
    every parameter and writes the sbatch script, and the jobs run here in-process."""
    import submitit

    scripts: list[str] = []

    def map_array(self, fn, *iterables):
        scripts.append(self._executor._make_submission_file_text("python -m job", "uid"))
        return [_Done(fn(*args)) for args in zip(*iterables, strict=True)]

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit looks for srun
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    monkeypatch.setenv("SUBMITIT_DEBUG_JOB_ID", "1")  # a job environment (submitit's debug one)
    sweep = tmp_path / "sweep"
    arguments = [f"hydra.sweep.dir={sweep}", "hydra/launcher=slurm", "hydra.launcher.partition=gpu"]
    assert _train("-m", *arguments, "seed=0,1", *TINY_TRAINING) == 0
    (script,) = scripts
    for line in ("--partition=gpu", "--gpus-per-node=1", "--ntasks-per-node=1"):
        assert f"#SBATCH {line}" in script
    assert "#SBATCH --cpus-per-task=8" in script and "#SBATCH --time=240" in script
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == ["0", "1"]


def test_ddp_on_two_cpu_processes(tmp_path: Path) -> None:
    """Two ranks (gloo): the validation metric logged during training, gathered from both
    ranks' uneven shards, equals rank zero's evaluation of the whole validation set, and
    rank zero alone wrote the run's files."""
    run_dir = tmp_path / "run"
    ddp = ["trainer=ddp", "trainer.accelerator=cpu"]
    assert _train(f"hydra.run.dir={run_dir}", *ddp, *TINY_TRAINING) == 0
    split = json.loads((run_dir / "split.json").read_text())
    assert len(split["val"]) % 2 == 1  # the two shards differ in length
    curves = pd.read_csv(run_dir / "metrics.csv")
    logged = curves["val/rmse"].dropna()
    assert len(logged) == 2  # one row per epoch, not one per rank
    assert _val_rmse(run_dir) == pytest.approx(logged.min(), rel=1e-5)
    assert (run_dir / "train_ddp_process_1.log").is_file()  # rank 1 ran as a process of its own
    assert not torch.distributed.is_initialized()  # later runs in this process are not sharded


def test_ddp_in_a_local_multirun_is_refused(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    arguments = [f"hydra.sweep.dir={sweep}", "trainer=ddp", "trainer.accelerator=cpu", "seed=0"]
    assert _train("-m", *arguments, *TINY_TRAINING) == 0
    (record,) = sweep.glob("*/failed.json")
    assert "cannot run inside a local multirun" in json.loads(record.read_text())["error"]


def test_tensorboard_logger(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    arguments = [f"hydra.run.dir={run_dir}", "logger=tensorboard", *TINY_TRAINING]
    if importlib.util.find_spec("tensorboard") is None:
        assert _train(*arguments) == 1  # a config error: one line, exit code 1
        error = json.loads((run_dir / "failed.json").read_text())["error"]
        assert error.startswith(ConfigError.__name__) and "tensorboard" in error
    else:
        assert _train(*arguments) == 0
        assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
        assert (run_dir / "metrics.csv").is_file()  # the CSV log is always written
