"""Everyday-use and interrupted-work behaviour (issue 16): stale staging folders, the
version switch, the dataset cache key and model seeds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from molgraph import __version__, paths
from molgraph.cli.main import main
from molgraph.data import MoleculeCSV
from molgraph.data.cache import write_atomically
from molgraph.esm.cache import EmbeddingCache
from molgraph.featurize import MoleculeFeaturizer


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_staging_folders_of_dead_or_old_writers_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / f".tmp-{_dead_pid()}-abc"
    alive = tmp_path / f".tmp-{os.getpid()}-def"
    old = tmp_path / ".tmp-xyz"  # written before owners were recorded
    for folder in (dead, alive, old):
        folder.mkdir()
    stamp = time.time() - paths.STALE_AFTER_S - 10
    os.utime(old, (stamp, stamp))
    write_atomically(tmp_path / "entry", lambda staging: (staging / "f").write_text("x"))
    assert (tmp_path / "entry" / "f").read_text() == "x"
    assert not dead.exists() and not old.exists()
    assert alive.exists()  # a live writer's folder stays


def test_stale_esm_staging_files_are_removed(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "esm2_t6_8M_UR50D-6", dtype=torch.float32)
    folder = cache.path("MKV").parent
    folder.mkdir(parents=True)
    stale = folder / f".tmp-{_dead_pid()}-q.tmp"
    stale.write_text("half")
    cache.put("MKV", torch.ones(3, 4))
    assert not stale.exists()
    assert torch.equal(cache.get("MKV"), torch.ones(3, 4))


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"molgraph {__version__}"


def test_model_seed_does_not_change_the_dataset_cache(tmp_path: Path) -> None:
    csv = tmp_path / "mols.csv"
    csv.write_text("smiles,y\nCCO,1.0\nc1ccccc1O,2.0\nCC(=O)O,3.0\n")
    source = MoleculeCSV(str(csv), target_columns=["y"])
    cache = tmp_path / "cache"
    for seed in (0, 1):  # conformer_seed follows ${seed} in the configs
        source.load(MoleculeFeaturizer.preset("default", conformer_seed=seed), cache, 1)
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1
    # with conformers the seed does change the graphs: a second folder
    for seed in (0, 1):
        featurizer = MoleculeFeaturizer.preset("default", conformer=True, conformer_seed=seed)
        source.load(featurizer, cache, 1)
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 3


def test_report_plot_leaves_the_callers_backend_alone(tmp_path: Path) -> None:
    import matplotlib
    import pandas as pd

    from molgraph.report import plot_summary

    table = pd.DataFrame({
        "configuration": ["encoder=gin", "encoder=gat"], "metric": ["rmse", "rmse"],
        "n_runs": [3, 3], "val_mean": [1.0, 1.2], "val_sd": [0.1, 0.05],
        "test_mean": [1.1, 1.3], "test_sd": [0.2, float("nan")],
    })  # fmt: skip
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        out = plot_summary(table, tmp_path / "report.png")
        assert matplotlib.get_backend() == "svg"
        assert out.read_bytes()[:4] == b"\x89PNG"
    finally:
        matplotlib.use(before)


def test_missing_extra_is_named(monkeypatch) -> None:
    import importlib.util

    from molgraph.cli import train as train_cli

    assert train_cli.missing_extra(["search=optuna"]) is None  # the test extra installs it
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name.startswith("hydra_plugins.") else real(name, *a),
    )  # fmt: skip
    assert "molgraph[search]" in train_cli.missing_extra(["data=bbbp", "search=optuna"])
    assert "molgraph[slurm]" in train_cli.missing_extra(["-m", "hydra/launcher=slurm"])
    assert main(["train", "search=optuna"]) == 2
    assert train_cli.missing_extra(["data=bbbp"]) is None


def test_pytest_is_not_a_runtime_dependency() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("pytest") for d in project["dependencies"])
    assert any(d.startswith("pytest") for d in project["optional-dependencies"]["test"])
    extras = project["optional-dependencies"]
    for extra in ("search", "slurm"):
        assert set(extras[extra]) <= set(extras["test"])


def test_progress_bar_shows_loss_and_monitored_metric() -> None:
    from types import SimpleNamespace

    from molgraph.progress import MetricsProgressBar

    bar = MetricsProgressBar("val/rmse")
    trainer = SimpleNamespace(
        callback_metrics={"train/loss": torch.tensor(0.51234), "val/rmse": torch.tensor(1.25)},
        progress_bar_metrics={}, loggers=[],
    )  # fmt: skip
    shown = bar.get_metrics(trainer, None)
    assert shown["loss"] == "0.5123" and shown["val/rmse"] == "1.25"
