"""Molecule CSV datasets: failures listed, cache hits and misses, label checks, workers."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import molgraph.data.featurization as featurization_module
from molgraph.data import GraphDataset
from molgraph.data.featurization import featurize_all
from molgraph.data.molecules import MoleculeCSV, load_molecule_csv
from molgraph.errors import MolgraphError
from molgraph.featurize import MoleculeFeaturizer
from molgraph.packed import PackedGraphs

# 0-based data rows of BBBP.csv that RDKit refuses (nitrogens with valence 4, no charge)
BBBP_FAILED_ROWS = [59, 61, 391, 614, 642, 645, 646, 647, 648, 649, 685]
PACKED_TENSORS = ("x", "src", "dst", "edge_attr", "node_counts", "edge_counts")


def load(
    source: MoleculeCSV, featurizer: MoleculeFeaturizer | None = None, **kwargs
) -> GraphDataset:
    options = {"num_workers": 1, "progress": False, **kwargs}
    return load_molecule_csv(source, featurizer or MoleculeFeaturizer(), **options)


def assert_same_packed(a: PackedGraphs, b: PackedGraphs) -> None:
    for name in PACKED_TENSORS:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0, msg=name)


def write_csv(path: Path, text: str) -> MoleculeCSV:
    path.write_text(text)
    return MoleculeCSV(str(path), ["a"])


# BBBP: real failures and the cache ---------------------------------------------------------


@pytest.fixture(scope="module")
def bbbp_csv(shared_data: Path) -> Path:
    return shared_data / "molecules" / "BBBP.csv"


def test_bbbp_failures_and_cache(bbbp_csv: Path, tmp_path: Path, monkeypatch) -> None:
    source = MoleculeCSV(str(bbbp_csv), ["p_np"], task="classification")
    first = load(source, cache_dir=tmp_path)
    table = pd.read_csv(bbbp_csv)
    assert len(table) == 2050

    assert len(first) == 2039
    assert first.y.shape == (2039, 1) and first.y.dtype == torch.float32
    assert sorted(set(first.y.view(-1).tolist())) == [0.0, 1.0]
    assert first.target_names == ("p_np",) and first.task == "classification"
    # row numbers, SMILES and reasons of the 11 failures
    assert first.failures["row"].tolist() == BBBP_FAILED_ROWS
    assert first.failures["smiles"].tolist() == table["smiles"].iloc[BBBP_FAILED_ROWS].tolist()
    assert all(
        reason.startswith("RDKit rejected the molecule: Explicit valence for atom")
        for reason in first.failures["reason"]
    )
    # every other row kept, in file order, with its own SMILES and label
    assert first.row_ids.tolist() == sorted(set(range(2050)) - set(BBBP_FAILED_ROWS))
    assert first.row_ids[58:62].tolist() == [58, 60, 62, 63]
    assert list(first.smiles) == table["smiles"].iloc[first.row_ids].tolist()
    np.testing.assert_array_equal(
        first.y.view(-1).numpy(), table["p_np"].iloc[first.row_ids].to_numpy(dtype=np.float32)
    )

    # the cache folder and its failures.csv
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("BBBP-") and len(folder.name) == len("BBBP-") + 20
    assert sorted(p.name for p in folder.iterdir()) == [
        "failures.csv",
        "graphs.bin",
        "smiles.json",
    ]
    listed = pd.read_csv(folder / "failures.csv")
    assert list(listed.columns) == ["row", "smiles", "reason"]
    assert len(listed) == 11 and listed["row"].tolist() == BBBP_FAILED_ROWS

    # second call: a cache hit, nothing featurized
    def refuse(*args, **kwargs):
        raise AssertionError("featurize_all called although the cache should be hit")

    monkeypatch.setattr(featurization_module, "featurize_all", refuse)
    second = load(source, cache_dir=tmp_path)
    assert_same_packed(second.graphs, first.graphs)
    torch.testing.assert_close(second.y, first.y, rtol=0, atol=0)
    np.testing.assert_array_equal(second.row_ids, first.row_ids)
    assert second.smiles == first.smiles
    pd.testing.assert_frame_equal(second.failures, first.failures)
    assert (second.target_names, second.task) == (first.target_names, first.task)
    batch_a, batch_b = first.batch([0, 5, 7]), second.batch([0, 5, 7])
    torch.testing.assert_close(batch_a.x, batch_b.x, rtol=0, atol=0)
    torch.testing.assert_close(batch_a.y, batch_b.y, rtol=0, atol=0)

    # a different featurizer setting misses the cache and builds a new folder
    with pytest.raises(AssertionError, match="featurize_all called"):
        load(source, MoleculeFeaturizer(largest_fragment=True), cache_dir=tmp_path)
    monkeypatch.undo()
    third = load(source, MoleculeFeaturizer(largest_fragment=True), cache_dir=tmp_path)
    folders = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert len(folders) == 2 and folder.name in folders
    # row 0 is "[Cl].CC(C)NCC(O)COc1cccc2ccccc12": the chlorine fragment is dropped
    assert third.graphs.node_counts[0].item() == first.graphs.node_counts[0].item() - 1 == 19
    assert len(third) == 2039
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())  # no staging left


def test_no_cache_dir_writes_nothing(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "t.csv", "smiles,a\nCCO,1\nC1CC((,2\n")
    dataset = load(source)
    assert len(dataset) == 1
    assert dataset.failures.to_dict("list") == {
        "row": [1],
        "smiles": ["C1CC(("],
        "reason": ["RDKit could not parse the SMILES"],
    }
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


# HIV: a blank line after every row ------------------------------------------------------


def test_hiv_blank_lines_lose_no_row(shared_data: Path, tmp_path: Path) -> None:
    with gzip.open(shared_data / "molecules" / "HIV.csv.gz", "rb") as f:
        lines = f.read().split(b"\n")[:200]
    # the quirk: CRLF then an extra LF, so every other line is empty
    assert lines[0] == b"smiles,activity,HIV_active\r" and lines[1] == b""
    assert all(line == b"" for line in lines[1::2])
    path = tmp_path / "hiv_head.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")

    table = pd.read_csv(path)
    assert len(table) == 99  # header + 99 rows, blank lines skipped
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert sum(1 for r in rows if r) == 100 and sum(1 for r in rows if not r) == 100

    dataset = load(MoleculeCSV(str(path), ["HIV_active"], task="classification"))
    assert len(dataset) + len(dataset.failures) == len(table)
    kept_and_failed = sorted([*dataset.row_ids.tolist(), *dataset.failures["row"].tolist()])
    assert kept_and_failed == list(range(99))
    assert list(dataset.smiles) == table["smiles"].iloc[dataset.row_ids].tolist()
    np.testing.assert_array_equal(
        dataset.y.view(-1).numpy(),
        table["HIV_active"].iloc[dataset.row_ids].to_numpy(dtype=np.float32),
    )


# labels ----------------------------------------------------------------------------------


def test_empty_target_cell_is_nan(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("smiles,a,b\nCCO,1.5,\nCC,,2\nC,3,-4\n")
    dataset = load(MoleculeCSV(str(path), ["a", "b"]))
    nan = float("nan")
    expected = torch.tensor([[1.5, nan], [nan, 2.0], [3.0, -4.0]])
    torch.testing.assert_close(dataset.y, expected, equal_nan=True)
    assert dataset.failures.empty
    batch = dataset.batch([0, 1, 2])
    assert batch.y_mask.tolist() == [[True, False], [False, True], [True, True]]
    assert batch.y.tolist() == [[1.5, 0.0], [0.0, 2.0], [3.0, -4.0]]


def test_non_numeric_target_refused_naming_column(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "t.csv", "smiles,a\nCCO,1.5\nCC,abc\nC,2\n")
    dataset = load(source)
    assert dataset.row_ids.tolist() == [0, 2]
    assert dataset.y.view(-1).tolist() == [1.5, 2.0]
    assert dataset.failures["row"].tolist() == [1]
    assert dataset.failures["reason"].tolist() == ["target 'a' is not a number: 'abc'"]


def test_classification_label_two_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("smiles,label\nCCO,1\nCC,2\nC,0\nCCC,\n")
    dataset = load(MoleculeCSV(str(path), ["label"], task="classification"))
    assert dataset.row_ids.tolist() == [0, 2, 3]
    torch.testing.assert_close(
        dataset.y.view(-1), torch.tensor([1.0, 0.0, float("nan")]), equal_nan=True
    )
    assert dataset.failures["row"].tolist() == [1]
    assert dataset.failures["reason"].tolist() == ["target 'label' is not a 0/1 label: 2.0"]


def test_empty_smiles_cell_listed(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "t.csv", "smiles,a\nCCO,1\n,2\nC,3\n")
    dataset = load(source)
    assert dataset.row_ids.tolist() == [0, 2]
    assert dataset.failures.to_dict("list") == {
        "row": [1],
        "smiles": [""],
        "reason": ["empty SMILES"],
    }


def test_missing_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("smiles,a\nCCO,1\n")
    with pytest.raises(MolgraphError, match=r"missing column\(s\) \['b'\]"):
        load(MoleculeCSV(str(path), ["a", "b"]))
    with pytest.raises(MolgraphError, match=r"missing column\(s\) \['SMILES'\]"):
        load(MoleculeCSV(str(path), ["a"], smiles_column="SMILES"))


def test_missing_file_and_all_rows_failing(tmp_path: Path) -> None:
    with pytest.raises(MolgraphError, match="no such file"):
        load(MoleculeCSV(str(tmp_path / "absent.csv"), ["a"]))
    source = write_csv(tmp_path / "bad.csv", "smiles,a\nC1CC((,1\nxyz,2\n")
    with pytest.raises(MolgraphError, match=r"no row could be featurized \(2 failed\)"):
        load(source)


# workers -----------------------------------------------------------------------------------


def test_parallel_featurization_equals_serial(esol: pd.DataFrame) -> None:
    smiles = esol["smiles"].iloc[:300].tolist()
    smiles[100] = "C1CC(("  # failures keep their place across chunk boundaries
    smiles[255] = ""
    featurizer = MoleculeFeaturizer()
    serial, serial_errors = featurize_all(featurizer, smiles, num_workers=1, progress=False)
    parallel, parallel_errors = featurize_all(
        featurizer, smiles, num_workers=2, chunk_size=64, progress=False
    )
    assert len(serial) == len(parallel) == 298
    assert_same_packed(parallel, serial)
    assert [i for i, e in enumerate(parallel_errors) if e is not None] == [100, 255]
    assert [(e.item, e.reason) for e in parallel_errors if e is not None] == [
        (e.item, e.reason) for e in serial_errors if e is not None
    ]
    assert (
        serial.node_counts.tolist()
        == featurizer.packed([s for s in smiles if s not in ("C1CC((", "")]).node_counts.tolist()
    )
