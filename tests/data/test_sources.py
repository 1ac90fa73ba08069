"""What every data source shares: the DataSource protocol, GraphDataset, row
featurization and the content-keyed cache."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molgraph.data import (
    DataSource,
    GraphDataset,
    MoleculeCSV,
    MutationalScan,
    StructureFolder,
    featurize_rows,
)
from molgraph.data.cache import (
    CacheLayout,
    FeaturizedRows,
    cache_folder,
    load_or_build,
    write_atomically,
)
from molgraph.errors import ConfigError
from molgraph.featurize import MoleculeFeaturizer, ProteinFeaturizer


def _demo_file(name: str) -> str:
    return str(resources.files("molgraph.datasets") / name)


SOURCES = [
    MoleculeCSV(_demo_file("esol.csv"), ["measured log solubility in mols per litre"]),
    StructureFolder("labels.csv", ["y"]),
    MutationalScan(_demo_file("gb1_demo.csv"), _demo_file("gb1_2qmt.pdb"), ["fitness"],
                   chains=["A"], mutations_column="mutations_2qmt_numbering"),
]  # fmt: skip


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: type(s).__name__)
def test_sources_are_data_sources(source) -> None:
    assert isinstance(source, DataSource)
    assert isinstance(source.target_columns, tuple)
    wrong = ProteinFeaturizer() if isinstance(source, MoleculeCSV) else MoleculeFeaturizer()
    with pytest.raises(ConfigError, match="it needs a"):
        source.check_featurizer(wrong)
    with pytest.raises(ConfigError, match="it needs a"):
        source.load(wrong)


def _rows(n: int = 3) -> FeaturizedRows:
    graphs = MoleculeFeaturizer().packed(["CCO", "C", "c1ccccc1"][:n])
    return FeaturizedRows(
        graphs=graphs,
        y=torch.arange(n, dtype=torch.float32)[:, None],
        row_ids=np.arange(n, dtype=np.int64) * 2,
        failures=pd.DataFrame({"row": [1], "smiles": ["C1CC(("], "reason": ["bad"]}),
        items=("CCO", "C", "c1ccccc1")[:n],
    )


def test_graph_dataset_items_and_names() -> None:
    source = SOURCES[0]
    rows = _rows()
    dataset = GraphDataset.from_rows(rows, source, "smiles", rows.items or ())
    assert len(dataset) == 3 and dataset.smiles == dataset.items == rows.items
    assert dataset.target_names == tuple(source.target_columns)
    assert dataset.batch([0, 2]).num_graphs == 2
    assert not hasattr(dataset, "sequences")  # what embed-esm checks for
    protein = GraphDataset.from_rows(rows, source, "sequence", ("A", "G", "W"))
    assert protein.sequences == ("A", "G", "W") and not hasattr(protein, "smiles")


def test_featurize_rows_merges_refused_rows() -> None:
    items = ["CCO", "C1CC((", "C", "CC"]
    graphs, kept, failed = featurize_rows(
        MoleculeFeaturizer(), items, {3: "label missing"}, num_workers=1, progress=False
    )
    assert kept.tolist() == [0, 2] and kept.dtype == np.int64
    assert failed == {3: "label missing", 1: "RDKit could not parse the SMILES"}
    assert graphs is not None and len(graphs) == 2
    none, kept, failed = featurize_rows(
        MoleculeFeaturizer(), ["C1CC(("], {}, num_workers=1, progress=False
    )
    assert none is None and kept.tolist() == [] and set(failed) == {0}


def test_cache_key_follows_content_and_settings(tmp_path: Path) -> None:
    data = tmp_path / "a.csv"
    data.write_text("x\n1\n")
    first = cache_folder(tmp_path / "cache", "a", [data], {"k": 1}, version=1)
    assert first is not None and first.name.startswith("a-") and len(first.name) == 22
    assert cache_folder(None, "a", [data], {"k": 1}, version=1) is None
    assert cache_folder(tmp_path / "cache", "a", [data], {"k": 1}, version=1) == first
    assert cache_folder(tmp_path / "cache", "a", [data], {"k": 2}, version=1) != first
    assert cache_folder(tmp_path / "cache", "a", [data], {"k": 1}, version=2) != first
    assert cache_folder(tmp_path / "cache", "a", [data], {"k": 1}, 1, hash_names=False) != first
    data.write_text("x\n2\n")
    assert cache_folder(tmp_path / "cache", "a", [data], {"k": 1}, version=1) != first


def test_write_atomically_keeps_the_first_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "one"
    write_atomically(folder, lambda staging: (staging / "f").write_text("first"))
    write_atomically(folder, lambda staging: (staging / "f").write_text("second"))
    assert (folder / "f").read_text() == "first"
    assert [p.name for p in folder.parent.iterdir()] == ["one"]  # no staging left


def test_load_or_build_logs_and_round_trips(tmp_path: Path, caplog) -> None:
    layout = CacheLayout(item_column="smiles", items_file="items.json")
    folder = tmp_path / "t-key"
    calls = []

    def build() -> FeaturizedRows:
        calls.append(1)
        return _rows()

    with caplog.at_level(logging.INFO, logger="molgraph"):
        built = load_or_build("t.csv", folder, build, layout)
        loaded = load_or_build("t.csv", folder, build, layout)
        load_or_build("t.csv", None, build, layout)
    assert len(calls) == 2
    assert caplog.messages == [
        f"t.csv: 4 rows → 3 graphs, 1 rows failed (listed in {folder / 'failures.csv'})",
        f"t.csv: loaded 3 graphs from cache {folder} (1 failed rows, listed in failures.csv there)",
        "t.csv: 4 rows → 3 graphs, 1 rows failed (see dataset.failures)",
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["failures.csv", "graphs.bin", "items.json"]
    assert loaded.items == built.items
    assert torch.equal(loaded.y, built.y) and torch.equal(loaded.graphs.x, built.graphs.x)
    np.testing.assert_array_equal(loaded.row_ids, built.row_ids)
    pd.testing.assert_frame_equal(loaded.failures, built.failures)
