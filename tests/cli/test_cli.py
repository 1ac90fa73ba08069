"""The ``molgraph`` command: usage, ``train`` (Hydra) and ``predict``, called with arguments."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ESOL_TARGET, TINY_TRAINING

from molgraph.cli.main import main
from molgraph.io import read_molecules
from molgraph.predict import load_model, predict_items

# Six rows in a fixed order, two of them unusable: one unparseable, one empty.
ROWS = [
    ("m1", "CCO"),
    ("m2", "C1CC(("),
    ("m3", "c1ccccc1O"),
    ("m4", ""),
    ("m5", "[Na+].[Cl-]"),
    ("m6", "CC(=O)Nc1ccc(O)cc1"),
]
BAD = {"m2", "m4"}
QM9_MINI = "molecules3d/qm9_mini.sdf"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    """``molgraph train`` on the default config (embedded ESOL), tiny settings: exit code
    and run directory. Shared by the tests below, which all need a trained model."""
    root = tmp_path_factory.mktemp("train")
    run_dir = root / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOLGRAPH_CACHE", str(root / "cache"))
        patch.setenv("MOLGRAPH_OUTPUTS", str(root / "outputs"))
        patch.setattr(sys, "argv", list(sys.argv))  # the train command replaces it
        code = main(["train", f"hydra.run.dir={run_dir}", *TINY_TRAINING])
    return code, run_dir


@pytest.fixture
def rows_csv(tmp_path: Path) -> Path:
    path = tmp_path / "input.csv"
    pd.DataFrame(ROWS, columns=["id", "smiles"]).to_csv(path, index=False)
    return path


def _predict(model: Path, source: Path, output: Path) -> int:
    arguments = ["--model", str(model), "--input", str(source), "--output", str(output)]
    return main(["predict", *arguments, "--no-progress"])


def _read_output(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"id": str, "error": str})
    table["error"] = table["error"].fillna("")
    return table


def test_no_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: molgraph")
    assert "train" in out and "predict" in out


def test_help_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "usage: molgraph" in capsys.readouterr().out


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fly"]) == 2
    assert "usage: molgraph" in capsys.readouterr().out


def test_train_writes_the_run(trained: tuple[int, Path]) -> None:
    code, run_dir = trained
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test"]["rmse"])
    for name in ("model.pt", "split.json", "config.yaml", "checkpoints/best.ckpt"):
        assert (run_dir / name).is_file(), name


def test_train_keeps_the_cache_where_the_environment_says(trained: tuple[int, Path]) -> None:
    _, run_dir = trained
    assert list((run_dir.parent / "cache").glob("esol-*/graphs.bin"))
    assert not (run_dir.parent / "outputs").exists()  # hydra.run.dir was given


def test_predict_csv_keeps_every_row_in_order(
    trained: tuple[int, Path], rows_csv: Path, tmp_path: Path, capsys
) -> None:
    _, run_dir = trained
    output = tmp_path / "out.csv"
    assert _predict(run_dir, rows_csv, output) == 0
    assert "wrote 6 rows" in (out := capsys.readouterr().out)
    assert "4 predicted, 2 failed" in out

    table = _read_output(output)
    assert list(table.columns) == ["id", "smiles", ESOL_TARGET, "error"]
    assert table["id"].tolist() == [row_id for row_id, _ in ROWS]
    bad = table["id"].isin(BAD)
    assert (table.loc[bad, "error"] != "").all()
    assert (table.loc[~bad, "error"] == "").all()
    assert table.loc[bad, ESOL_TARGET].isna().all()
    assert np.isfinite(table.loc[~bad, ESOL_TARGET]).all()

    model, featurizer = load_model(run_dir)
    expected, errors = predict_items(
        model, featurizer, [smiles for _, smiles in ROWS], progress=False
    )
    np.testing.assert_allclose(table[ESOL_TARGET], expected[:, 0], rtol=0, atol=1e-6)
    assert [e != "" for e in errors] == bad.tolist()


def test_predict_smi_keeps_every_line(trained: tuple[int, Path], tmp_path: Path) -> None:
    _, run_dir = trained
    source = tmp_path / "input.smi"
    # "SMILES id" per line; the empty SMILES becomes a blank line, which is a row too.
    source.write_text(
        "".join(f"{smiles} {row_id}\n" if smiles else "\n" for row_id, smiles in ROWS)
    )
    output = tmp_path / "out.csv"
    assert _predict(run_dir, source, output) == 0
    table = _read_output(output)
    assert table["id"].fillna("").tolist() == [row_id if smiles else "" for row_id, smiles in ROWS]
    failed = [row_id in BAD for row_id, _ in ROWS]
    assert (table["error"] != "").tolist() == failed
    assert table[ESOL_TARGET].isna().tolist() == failed


def test_predict_sdf_keeps_every_record(
    trained: tuple[int, Path], shared_data: Path, tmp_path: Path
) -> None:
    _, run_dir = trained
    source = shared_data / QM9_MINI
    output = tmp_path / "out.csv"
    assert _predict(run_dir, source, output) == 0
    table = _read_output(output)
    records = read_molecules(source)
    assert len(table) == len(records) == 21
    assert table["id"].tolist() == records["id"].tolist()
    assert (table["error"] == "").all()
    assert np.isfinite(table[ESOL_TARGET]).all()


def test_predict_with_checkpoint_matches_run_directory(
    trained: tuple[int, Path], rows_csv: Path, tmp_path: Path
) -> None:
    _, run_dir = trained
    from_dir, from_ckpt = tmp_path / "dir.csv", tmp_path / "ckpt.csv"
    assert _predict(run_dir, rows_csv, from_dir) == 0
    assert _predict(run_dir / "checkpoints" / "best.ckpt", rows_csv, from_ckpt) == 0
    pd.testing.assert_frame_equal(_read_output(from_ckpt), _read_output(from_dir))


def test_predict_keeps_an_input_column_named_error(
    trained: tuple[int, Path], tmp_path: Path
) -> None:
    _, run_dir = trained
    source, output = tmp_path / "input.csv", tmp_path / "out.csv"
    notes = ["lab note 1", "lab note 2"]
    pd.DataFrame({"smiles": ["CCO", "C1CC(("], "error": notes}).to_csv(source, index=False)
    assert _predict(run_dir, source, output) == 0
    table = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert len(table) == 2
    assert any(table[column].tolist() == notes for column in table.columns), (
        "the input's own 'error' column was overwritten"
    )


def test_predict_with_missing_model_names_the_path(
    rows_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-run"
    output = tmp_path / "out.csv"
    assert _predict(missing, rows_csv, output) != 0
    assert str(missing) in capsys.readouterr().err
    assert not output.exists()


def test_embed_takes_a_run_directory(trained, rows_csv: Path, tmp_path: Path) -> None:
    """``molgraph embed --model RUN_DIR`` as ``predict`` takes it (issue 16)."""
    code, run_dir = trained
    assert code == 0
    out = tmp_path / "emb.csv"
    args = ["--model", str(run_dir), "--input", str(rows_csv), "--output", str(out)]
    assert main(["embed", *args, "--no-progress"]) == 0
    table = _read_output(out)
    assert list(table["id"]) == [r[0] for r in ROWS]
    embedded = table[[c for c in table if c.startswith("emb_")]]
    assert embedded.shape[1] == 32  # encoder.hidden_dim of the tiny run
    assert embedded[~table["id"].isin(BAD)].notna().all().all()
    assert embedded[table["id"].isin(BAD)].isna().all().all()
