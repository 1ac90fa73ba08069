"""Screening-scale prediction: streamed chunks equal whole-file prediction, killed runs
resume to the same bytes, shards merge to the single run, bad inputs give one line."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph.cli.main import main
from molgraph.errors import InputError
from molgraph.predict import predict_file
from molgraph.screening import Shard, merge, predict_library

MODEL = Path(__file__).parents[1] / "fixtures" / "format_v1" / "molecule_run"
TARGET = "measured log solubility in mols per litre"
BAD = {6: "not_a_smiles", 7: "", 13: "C1CC", 14: "c1cc"}  # both sides of chunk edges (7)


@pytest.fixture(scope="module")
def library(tmp_path_factory, shared_data: Path) -> Path:
    """60 BBBP molecules with invalid SMILES at rows 6, 7, 13 and 14."""
    table = pd.read_csv(shared_data / "molecules" / "BBBP.csv").iloc[:60][["name", "smiles"]]
    for row, smiles in BAD.items():
        table.loc[table.index[row], "smiles"] = smiles
    path = tmp_path_factory.mktemp("library") / "library.csv"
    table.to_csv(path, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


@pytest.mark.parametrize(("chunk_rows", "workers"), [(7, 1), (7, 2), (500, 2)])
def test_streamed_rows_equal_whole_file_prediction(library, tmp_path, chunk_rows, workers):
    out = tmp_path / "out.csv"
    summary = predict_library(MODEL, str(library), out, chunk_rows=chunk_rows,
                              workers=workers, progress=False)  # fmt: skip
    whole = predict_file(MODEL, library, tmp_path / "whole.csv", progress=False)
    got = _read(out)
    assert list(got.columns) == list(whole.columns)
    assert got["name"].tolist() == whole["name"].tolist()  # every row once, in order
    assert got["error"].tolist() == whole["error"].tolist()
    assert set(BAD) <= {i for i, e in enumerate(got["error"]) if e}
    np.testing.assert_allclose(pd.to_numeric(got[TARGET]), whole[TARGET], rtol=1e-5)
    assert (summary.rows, summary.failed) == (60, sum(e != "" for e in got["error"]))
    assert not list(tmp_path.glob(".*parts"))  # the parts are gone once merged


def test_killed_runs_resume_to_the_same_bytes(shared_data: Path, tmp_path: Path) -> None:
    """SIGKILL at random moments (reading, featurizing, predicting, writing, merging),
    rerun until done: the output equals an uninterrupted run's byte for byte, and no file
    stands at the output name before the run completes."""
    table = pd.read_csv(shared_data / "molecules" / "BBBP.csv")[["name", "smiles"]]
    library = tmp_path / "library.csv"
    table.iloc[:1200].to_csv(library, index=False)
    args = ["--model", str(MODEL), "--input", str(library), "--chunk-rows", "50",
            "--workers", "2", "--no-progress"]  # fmt: skip
    assert main(["predict", *args, "--output", str(tmp_path / "reference.csv")]) == 0
    out = tmp_path / "out.csv"
    command = [sys.executable, "-m", "molgraph.cli.main", "predict", *args, "--output", str(out)]
    reference = (tmp_path / "reference.csv").read_bytes()
    rng, kills, env = random.Random(0), 0, {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(12):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        try:
            assert process.wait(timeout=rng.uniform(1.5, 6.0)) == 0
            break  # finished before its kill
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the workers too
            process.wait()
            kills += 1
        # killed: either no output yet, or (killed after the final rename) the whole one
        assert not out.exists() or out.read_bytes() == reference
    else:
        assert subprocess.run(command, env=env, capture_output=True).returncode == 0
    assert kills >= 1, "no run was interrupted: the test proved nothing"
    assert out.read_bytes() == reference


def test_shards_merge_to_the_single_run(library, tmp_path: Path) -> None:
    single = tmp_path / "single.csv"
    predict_library(MODEL, str(library), single, chunk_rows=7, workers=1, progress=False)
    out = tmp_path / "sharded.csv"
    for index in (2, 0):  # shard 1 of 3 has not run yet
        predict_library(MODEL, str(library), out, chunk_rows=7, workers=1, progress=False,
                        shard=Shard(index, 3))  # fmt: skip
    assert not out.exists()
    with pytest.raises(InputError, match=r"chunk 1 \(rows 7-13\) is missing"):
        merge(out)
    predict_library(MODEL, str(library), out, chunk_rows=7, workers=1, progress=False,
                    shard=Shard(1, 3))  # fmt: skip
    assert out.read_bytes() == single.read_bytes()  # the last shard merged


def test_shard_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    assert Shard.parse("auto") == Shard(3, 8)
    assert Shard.parse("1/4").owns(5) and not Shard.parse("1/4").owns(4)
    with pytest.raises(InputError, match="shard 4 of 4"):
        Shard.parse("4/4")


def test_parts_of_another_run_need_restart(library, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    predict_library(MODEL, str(library), out, chunk_rows=7, workers=1, progress=False,
                    shard=Shard(0, 2))  # fmt: skip
    with pytest.raises(InputError, match="--restart"):
        predict_library(MODEL, str(library), out, chunk_rows=9, workers=1, progress=False)
    predict_library(MODEL, str(library), out, chunk_rows=9, workers=1, progress=False,
                    restart=True)  # fmt: skip
    assert len(_read(out)) == 60


def test_parquet_and_stdout(library, tmp_path: Path, capsys) -> None:
    predict_library(MODEL, str(library), tmp_path / "out.parquet", chunk_rows=7, workers=1,
                    progress=False)  # fmt: skip
    csv = tmp_path / "out.csv"
    predict_library(MODEL, str(library), csv, chunk_rows=7, workers=1, progress=False)
    parquet = pd.read_parquet(tmp_path / "out.parquet")
    assert parquet["name"].tolist() == _read(csv)["name"].tolist()
    capsys.readouterr()
    assert main(["predict", "--model", str(MODEL), "--input", str(library), "--output", "-",
                 "--chunk-rows", "7", "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr()
    assert printed.out == csv.read_text()
    assert "60 rows" in printed.err


def _one_line_error(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(["predict", "--model", str(MODEL), "--no-progress", *argv]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_inputs_give_one_line_before_any_work(library, tmp_path: Path, capsys) -> None:
    out = ["--output", str(tmp_path / "out.csv")]
    missing = tmp_path / "missing.csv"
    assert "no such file" in _one_line_error(capsys, "--input", str(missing), *out)
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in _one_line_error(capsys, "--input", str(tmp_path / "empty.csv"), *out)
    (tmp_path / "latin1.csv").write_bytes("smiles,name\nCCO,café\n".encode("latin-1"))
    assert "UTF-8" in _one_line_error(capsys, "--input", str(tmp_path / "latin1.csv"), *out)
    err = _one_line_error(capsys, "--input", str(library), "--smiles-column", "smi", *out)
    assert "'smi'" in err
    err = _one_line_error(capsys, "--input", str(library), "--output", str(tmp_path / "o.xlsx"))
    assert "unknown output suffix" in err
    assert not list(tmp_path.glob("*out*")) and not list(tmp_path.glob(".*parts"))
