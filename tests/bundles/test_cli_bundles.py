"""``molgraph export / predict / embed / info`` with bundles, on molecules and proteins:
exit codes, files, columns, every input row kept with its error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ESOL_TARGET

from molgraph import load_encoder
from molgraph.bundles import RECIPE
from molgraph.cli.main import main

DATASETS = Path(__file__).resolve().parents[2] / "molgraph" / "datasets"
GB1_PDB = DATASETS / "gb1_2qmt.pdb"
ROWS = [("m1", "CCO"), ("m2", "C1CC(("), ("m3", "c1ccccc1O"), ("m4", ""), ("m5", "[Na+].[Cl-]")]
BAD = [False, True, False, True, False]


def _read(path: Path) -> pd.DataFrame:
    """A written table; empty cells of text columns as "" (numbers stay NaN)."""
    table = pd.read_csv(path, dtype={"id": str, "error": str, "smiles": str})
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    table[text] = table[text].fillna("")
    return table


@pytest.fixture
def molecules_csv(tmp_path: Path) -> Path:
    path = tmp_path / "molecules.csv"
    pd.DataFrame(ROWS, columns=["id", "smiles"]).to_csv(path, index=False)
    return path


@pytest.fixture
def variants_csv(tmp_path: Path) -> Path:
    """Six GB1 variants in 2QMT numbering, one naming a residue the structure lacks."""
    demo = pd.read_csv(DATASETS / "gb1_demo.csv", dtype=str).iloc[:5]
    table = demo[["variant_id", "mutations_2qmt_numbering"]]
    bad = pd.DataFrame({"variant_id": ["BAD"], "mutations_2qmt_numbering": ["Q99Z"]})
    path = tmp_path / "variants.csv"
    pd.concat([table, bad]).to_csv(path, index=False)
    return path


@pytest.fixture
def structures(tmp_path: Path) -> Path:
    """A folder with 2QMT and a file that is not a structure."""
    folder = tmp_path / "structures"
    folder.mkdir()
    shutil.copy(GB1_PDB, folder / "gb1_2qmt.pdb")
    (folder / "broken.pdb").write_text("not a PDB file\n")
    (folder / "notes.txt").write_text("ignored: not a structure file\n")
    return folder


def test_export_and_info(molecule_run: Path, tmp_path: Path, capsys, registry: Path) -> None:
    bundle = tmp_path / "bundle"
    assert main(["export", str(molecule_run), "--output", str(bundle), "--register", "esol"]) == 0
    assert (bundle / RECIPE).is_file() and (registry / "esol" / RECIPE).is_file()
    capsys.readouterr()
    assert main(["info", "esol"]) == 0
    out = capsys.readouterr().out
    assert "sha256 verified" in out and "molgraph.nn.GINEncoder" in out
    assert f"target scaler '{ESOL_TARGET}'" in out
    recipe = json.loads(out[out.index("recipe:\n") + len("recipe:\n") :])
    assert recipe == json.loads((bundle / RECIPE).read_text())
    assert main(["info", str(tmp_path / "nothing")]) == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_predict_with_a_bundle_equals_the_run(
    molecule_run: Path, molecule_bundle: Path, molecules_csv: Path, tmp_path: Path
) -> None:
    outputs = {}
    for name, model in (("run", molecule_run), ("bundle", molecule_bundle)):
        outputs[name] = tmp_path / f"{name}.csv"
        arguments = ["--model", str(model), "--input", str(molecules_csv)]
        assert main(["predict", *arguments, "--output", str(outputs[name]), "--no-progress"]) == 0
    table = _read(outputs["bundle"])
    assert list(table.columns) == ["id", "smiles", ESOL_TARGET, "error"]
    assert table["id"].tolist() == [i for i, _ in ROWS]
    assert (table["error"] != "").tolist() == BAD
    assert pd.to_numeric(table[ESOL_TARGET]).isna().tolist() == BAD
    pd.testing.assert_frame_equal(table, _read(outputs["run"]))


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".csv"])
def test_embed_molecules(molecule_bundle: Path, molecules_csv: Path, tmp_path, suffix) -> None:
    output = tmp_path / f"embeddings{suffix}"
    arguments = ["--model", str(molecule_bundle), "--input", str(molecules_csv)]
    assert main(["embed", *arguments, "--output", str(output), "--no-progress"]) == 0
    columns = [f"emb_{i}" for i in range(32)]
    if suffix == ".npy":
        matrix = np.load(output)
        table = _read(tmp_path / "embeddings.rows.csv")
    else:
        table = pd.read_parquet(output) if suffix == ".parquet" else _read(output)
        matrix = table[columns].to_numpy(dtype=np.float32)
        table = table.drop(columns=columns)
    assert list(table.columns) == ["id", "smiles", "error"]
    assert table["id"].tolist() == [i for i, _ in ROWS]
    assert (table["error"] != "").tolist() == BAD
    assert matrix.shape == (len(ROWS), 32)
    assert np.isnan(matrix).all(1).tolist() == BAD
    good = [smiles for (_, smiles), bad in zip(ROWS, BAD, strict=True) if not bad]
    expected = load_encoder(molecule_bundle).embed(good).numpy()
    np.testing.assert_allclose(matrix[~np.array(BAD)], expected, rtol=0, atol=1e-6)


def test_embed_takes_a_run_too(molecule_run: Path, molecules_csv: Path, tmp_path) -> None:
    """Issue 16: ``embed --model RUN_DIR`` as ``predict`` (it refused runs before)."""
    arguments = ["--model", str(molecule_run), "--input", str(molecules_csv)]
    assert main(["embed", *arguments, "--output", str(tmp_path / "x.npy")]) == 0
    assert main(["embed", "--model", str(tmp_path / "nothing"), "--input",
                 str(molecules_csv), "--output", str(tmp_path / "y.npy")]) == 1  # fmt: skip


# --- proteins -------------------------------------------------------------------------


def test_predict_variants_with_a_bundle(
    protein_run: Path, protein_bundle: Path, variants_csv: Path, tmp_path: Path
) -> None:
    output = tmp_path / "variants_out.csv"
    arguments = ["--model", str(protein_bundle), "--input", str(variants_csv)]
    # the wild-type structure and the mutation column come from the training recipe
    assert main(["predict", *arguments, "--output", str(output), "--no-progress"]) == 0
    table = _read(output)
    assert list(table.columns) == ["variant_id", "mutations_2qmt_numbering", "fitness", "error"]
    assert table["variant_id"].tolist()[-1] == "BAD" and len(table) == 6
    assert (table["error"] != "").tolist() == [False] * 5 + [True]
    assert "no residue with residue number 99" in table["error"].iloc[-1]
    fitness = pd.to_numeric(table["fitness"])
    assert np.isfinite(fitness[:5]).all() and np.isnan(fitness.iloc[-1])

    # the wild type ("WT", row 0) predicts as the structure file itself
    single = tmp_path / "single.csv"
    arguments = ["--model", str(protein_run), "--input", str(GB1_PDB)]
    assert main(["predict", *arguments, "--output", str(single), "--no-progress"]) == 0
    assert _read(variants_csv)["mutations_2qmt_numbering"].iloc[0] == "WT"
    np.testing.assert_allclose(fitness.iloc[0], _read(single)["fitness"].iloc[0], atol=1e-6)

    # explicit options give the same
    explicit = tmp_path / "explicit.csv"
    options = ["--structure", str(GB1_PDB), "--mutations-column", "mutations_2qmt_numbering"]
    arguments = ["--model", str(protein_bundle), "--input", str(variants_csv), *options]
    assert main(["predict", *arguments, "--output", str(explicit), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(_read(explicit), table)


def test_predict_structures_keeps_every_file(
    protein_bundle: Path, structures: Path, tmp_path: Path
) -> None:
    output = tmp_path / "structures_out.csv"
    missing = tmp_path / "missing.pdb"
    inputs = [str(structures), str(missing)]
    arguments = ["--model", str(protein_bundle), "--input", *inputs]
    assert main(["predict", *arguments, "--output", str(output), "--no-progress"]) == 0
    table = _read(output)
    assert table["id"].tolist() == ["broken", "gb1_2qmt", "missing"]
    assert list(table.columns) == ["id", "file", "notes", "fitness", "error"]  # notes: issue 16
    assert (table["error"] != "").tolist() == [True, False, True]
    assert table["error"].iloc[2] == "no such file"


def test_predict_a_csv_of_structure_files(protein_bundle: Path, structures: Path, tmp_path) -> None:
    # the bundle knows a wild-type structure, but this CSV names files, not variants
    listing = structures / "listing.csv"
    files = ["gb1_2qmt.pdb", "broken.pdb", "", "gb1_2qmt.pdb"]
    pd.DataFrame({"name": ["a", "b", "c", "d"], "file": files}).to_csv(listing, index=False)
    output = tmp_path / "listing_out.csv"
    arguments = ["--model", str(protein_bundle), "--input", str(listing)]
    assert main(["predict", *arguments, "--output", str(output), "--no-progress"]) == 0
    table = _read(output)
    assert list(table.columns) == ["name", "file", "notes", "fitness", "error"]
    assert (table["error"] != "").tolist() == [True if f in ("broken.pdb", "") else False
                                               for f in files]  # fmt: skip
    assert table["fitness"].iloc[0] == table["fitness"].iloc[3]


def test_embed_structures_and_variants(
    protein_bundle: Path, structures: Path, variants_csv: Path, tmp_path: Path
) -> None:
    encoder = load_encoder(protein_bundle)
    output = tmp_path / "proteins.npy"
    arguments = ["--model", str(protein_bundle), "--input", str(structures)]
    assert main(["embed", *arguments, "--output", str(output), "--no-progress"]) == 0
    matrix, rows = np.load(output), _read(tmp_path / "proteins.rows.csv")
    assert rows["id"].tolist() == ["broken", "gb1_2qmt"]
    assert np.isnan(matrix[0]).all()
    np.testing.assert_allclose(matrix[1], encoder.embed([GB1_PDB])[0].numpy(), atol=1e-6)

    output = tmp_path / "variants.csv"
    arguments = ["--model", str(protein_bundle), "--input", str(variants_csv)]
    assert main(["embed", *arguments, "--output", str(output), "--no-progress"]) == 0
    table = _read(output)
    assert table["variant_id"].tolist()[-1] == "BAD" and table["error"].iloc[-1] != ""
    first = table[[f"emb_{i}" for i in range(encoder.out_dim)]].to_numpy(dtype=np.float32)[0]
    np.testing.assert_allclose(first, matrix[1], atol=1e-6)  # WT = the structure


def test_info_on_a_protein_bundle(protein_bundle: Path, capsys) -> None:
    assert main(["info", str(protein_bundle)]) == 0
    out = capsys.readouterr().out
    assert '"kind": "protein"' in out and "molgraph.nn.GVPEncoder" in out
    assert "molgraph.data.MutationalScan" in out
