"""A killed training run (SIGKILL, mid-training) resumed with ``molgraph train
resume=RUN_DIR`` ends with the metrics of the same run left alone; the killed run's
directory says it did not finish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from molgraph.cli.main import main
from molgraph.resume import LAST_CHECKPOINT, RUNNING

ROOT = Path(__file__).parents[1]


def _overrides(tmp_path: Path, run_dir: Path) -> list[str]:
    esol = pd.read_csv(ROOT / "molgraph" / "datasets" / "esol.csv").head(120)
    csv = tmp_path / "esol120.csv"
    if not csv.is_file():
        esol.to_csv(csv, index=False)
    return [
        f"hydra.run.dir={run_dir}", f"data.path={csv}", f"cache_dir={tmp_path / 'cache'}",
        "encoder.hidden_dim=16", "encoder.num_layers=2", "encoder.dropout=0.2",  # dropout: RNG
        "model.head.hidden_dim=16", "batch_size=16", "split=random", "num_workers=1",
        "trainer.max_epochs=12", "patience=4",
    ]  # fmt: skip


def test_killed_run_resumes_to_the_uninterrupted_metrics(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()  # the killed child and the runs here: one thread each,
    torch.set_num_threads(1)  # or float sums add up in different orders
    try:
        _kill_and_resume(tmp_path, monkeypatch)
    finally:
        torch.set_num_threads(threads)


def _kill_and_resume(tmp_path: Path, monkeypatch) -> None:
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "molgraph.cli.main", "train", *_overrides(tmp_path, killed)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (killed / LAST_CHECKPOINT).is_file():  # the first epoch has ended
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert (killed / RUNNING).is_file()  # killed mid-run: the marker says so
    assert not (killed / "metrics.json").exists()

    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the train command replaces it
    assert main(["train", f"resume={killed}"]) == 0
    assert not (killed / RUNNING).exists()
    whole = tmp_path / "whole"
    assert main(["train", *_overrides(tmp_path, whole)]) == 0
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed == json.loads((whole / "metrics.json").read_text())


def test_resume_needs_a_last_checkpoint(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    assert main(["train", f"resume={tmp_path}"]) == 2
    assert main(["train", f"resume={tmp_path}", "seed=1"]) == 2
    assert main(["train", f"resume={tmp_path / 'nothing'}"]) == 2
    assert "no config.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("killed", [True, False])
def test_unfinished_marker(tmp_path: Path, killed: bool) -> None:
    from molgraph.resume import mark_finished, mark_running, unfinished

    mark_running(tmp_path)
    if not killed:
        mark_finished(tmp_path)
    assert unfinished(tmp_path) == killed


def test_report_lists_an_unfinished_run_and_predict_warns(tmp_path: Path) -> None:
    from molgraph.predict import load_model
    from molgraph.report import collect_runs
    from molgraph.resume import mark_running

    killed = tmp_path / "0"
    killed.mkdir()
    mark_running(killed)
    runs = collect_runs(tmp_path)
    assert [r.path for r in runs] == [killed]
    assert "did not finish" in runs[0].error
    with pytest.warns(UserWarning, match="did not finish"), pytest.raises(Exception):  # noqa: B017
        load_model(killed)  # no model.pt either: the warning comes first
