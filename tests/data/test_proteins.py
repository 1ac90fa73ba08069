"""Protein datasets: mutation strings, variant graphs, structure folders, table splits."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molgraph.data import (
    ColumnSplit,
    GraphDataset,
    MutationalScan,
    MutationCountSplit,
    StructureFolder,
    VariantGraphs,
    VariantReader,
    parse_mutations,
)
from molgraph.data.mutations import ALPHABET, Mutation
from molgraph.errors import ConfigError, FeaturizationError
from molgraph.featurize import RESIDUE_TYPES, ProteinFeaturizer
from molgraph.packed import PackedGraphs, Padding

# a small featurizer: the same code paths, fewer edges (fast on the shared CPU)
FEATURIZER = ProteinFeaturizer(k=8)
GB1_WT = "MQYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"


def _demo_file(name: str) -> str:
    return str(resources.files("molgraph.datasets") / name)


def _demo_scan(path: str | None = None) -> MutationalScan:
    return MutationalScan(
        path or _demo_file("gb1_demo.csv"),
        _demo_file("gb1_2qmt.pdb"),
        ["fitness"],
        chains=["A"],
        mutations_column="mutations_2qmt_numbering",
    )


@pytest.fixture(scope="module")
def demo() -> GraphDataset:
    return _demo_scan().load(FEATURIZER, progress=False)


# --- mutation strings ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["V39A:D40G", "V39A;D40G", "V39A,D40G", " V39A ; D40G ", "V39A D40G"]
)
def test_separators(text: str) -> None:
    assert parse_mutations(text) == (Mutation("V", 39, "A"), Mutation("D", 40, "G"))


@pytest.mark.parametrize("text", ["WT", "wt", "", "  "])
def test_wild_type_has_no_mutations(text: str) -> None:
    assert parse_mutations(text) == ()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("V39", "not a mutation like V39A"),
        ("39A", "not a mutation like V39A"),
        ("V39A;V39G", r"\[39\] mutated more than once"),
    ],
)
def test_malformed_mutations_raise(text: str, reason: str) -> None:
    with pytest.raises(FeaturizationError, match=reason) as info:
        parse_mutations(text)
    assert info.value.item == text


def test_alphabet_matches_the_featurizer() -> None:
    assert ALPHABET == RESIDUE_TYPES + "X"


def test_reader_residue_numbering_and_mismatch() -> None:
    reader = VariantReader("MVDG", [38, 39, 40, 41], [""] * 4)
    types, errors = reader.from_mutations(["V39A", "WT", "A39G", "V50A", "D40Z"])
    assert "".join(ALPHABET[t] for t in types[0]) == "MADG"
    assert "".join(ALPHABET[t] for t in types[1]) == "MVDG"
    assert set(errors) == {2, 3, 4}
    assert errors[2] == "A39G: the structure has V at residue number 39, not A"
    assert "no residue with residue number 50" in errors[3]
    assert "unknown residue type 'Z'" in errors[4]
    np.testing.assert_array_equal(types[2], reader.wild_type)  # refused rows: wild type


@pytest.mark.parametrize(("offset", "text"), [(0, "V1A"), (1, "V2A")])
def test_reader_index_numbering(offset: int, text: str) -> None:
    reader = VariantReader("MVDG", [38, 39, 40, 41], [""] * 4, "index", offset)
    types, errors = reader.from_mutations([text])
    assert not errors and "".join(ALPHABET[t] for t in types[0]) == "MADG"


def test_reader_insertion_codes_cannot_be_named() -> None:
    reader = VariantReader("MVDG", [38, 39, 39, 40], ["", "", "A", ""])
    _, errors = reader.from_mutations(["V39A", "D39A"])
    assert set(errors) == {1}  # 39 without a code is V; 39A is not a plain number


def test_reader_sequences() -> None:
    reader = VariantReader("MVDG", [1, 2, 3, 4], [""] * 4)
    types, errors = reader.from_sequences(["MADG", "MAD", "MAJG", "mvdx"])
    assert set(errors) == {1, 2}
    assert errors[1] == "sequence has 3 residues, the structure 4"
    assert "'J'" in errors[2]
    assert "".join(ALPHABET[t] for t in types[3]) == "MVDX"


# --- mutational scans ------------------------------------------------------------------


def test_demo_scan(demo: GraphDataset) -> None:
    table = pd.read_csv(_demo_file("gb1_demo.csv"))
    assert len(demo) == len(table) == 400 and demo.failures.empty
    assert list(demo.sequences) == table["sequence"].tolist()
    np.testing.assert_array_equal(demo.table["num_mutations"], table["hamming_distance"])
    np.testing.assert_allclose(demo.y[:, 0].numpy(), table["fitness"], rtol=1e-6)
    assert isinstance(demo.graphs, VariantGraphs)
    assert demo.graphs.residue_types.shape == (400, 56)  # one graph stored, not 400


def test_gb1_from_shared_data(shared_data: Path) -> None:
    folder = shared_data / "proteins" / "gb1_flip"
    scan = MutationalScan(
        str(folder / "labels.csv.gz"),
        str(folder / "2qmt.pdb"),
        ["fitness"],
        chains=["A"],
        mutations_column="mutations_2qmt_numbering",
    )
    dataset = scan.load(FEATURIZER, progress=False)
    table = pd.read_csv(folder / "labels.csv.gz")
    assert len(dataset) == 8733 and dataset.failures.empty
    assert dataset.sequences[0] == GB1_WT
    assert list(dataset.sequences) == table["sequence"].tolist()
    np.testing.assert_array_equal(dataset.table["num_mutations"], table["hamming_distance"])
    # the same variants given as full sequences
    by_sequence = MutationalScan(
        str(folder / "labels.csv.gz"), str(folder / "2qmt.pdb"), ["fitness"],
        chains=["A"], sequence_column="sequence",
    ).load(FEATURIZER, progress=False)  # fmt: skip
    assert torch.equal(by_sequence.graphs.residue_types, dataset.graphs.residue_types)


def test_bad_variants_are_listed_not_dropped(tmp_path: Path) -> None:
    table = pd.read_csv(_demo_file("gb1_demo.csv"), dtype={"fitness": str}).iloc[:6].copy()
    table.loc[1, "mutations_2qmt_numbering"] = "A39I"  # 2QMT has V at 39
    table.loc[2, "mutations_2qmt_numbering"] = "V39I;G99A"
    table.loc[3, "fitness"] = "high"
    table.to_csv(tmp_path / "variants.csv", index=False)
    dataset = _demo_scan(str(tmp_path / "variants.csv")).load(FEATURIZER, tmp_path / "cache")
    assert dataset.row_ids.tolist() == [0, 4, 5]
    reasons = dict(zip(dataset.failures["row"], dataset.failures["reason"], strict=True))
    assert reasons[1] == "A39I: the structure has V at residue number 39, not A"
    assert "G99A: no residue with residue number 99" in reasons[2]
    assert "not a number" in reasons[3]
    failures = next((tmp_path / "cache").glob("*/failures.csv"))
    assert pd.read_csv(failures)["row"].tolist() == [1, 2, 3]


def test_scan_needs_one_variant_column() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        MutationalScan("v.csv", "s.pdb", ["y"])


def test_cache_round_trip(tmp_path: Path, demo: GraphDataset) -> None:
    built = _demo_scan().load(FEATURIZER, tmp_path, progress=False)
    loaded = _demo_scan().load(FEATURIZER, tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 1
    for dataset in (built, loaded):
        assert torch.equal(dataset.graphs.residue_types, demo.graphs.residue_types)
        assert dataset.sequences == demo.sequences
        np.testing.assert_array_equal(dataset.row_ids, demo.row_ids)
        assert torch.equal(dataset.y, demo.y)
        pd.testing.assert_frame_equal(dataset.table, demo.table)
    one, two = built.batch(range(10)), loaded.batch(range(10))
    assert torch.equal(one.x, two.x) and torch.equal(one.node_vectors, two.node_vectors)


@pytest.mark.parametrize("padding", [None, Padding(graphs=8, node_multiple=64, edge_multiple=256)])
def test_variant_batch_equals_explicit_graphs(demo: GraphDataset, padding) -> None:
    indices = [0, 5, 17, 350, 399]
    residues = FEATURIZER.residues((_demo_file("gb1_2qmt.pdb"), ("A",)))
    explicit = PackedGraphs.concat(
        [
            PackedGraphs.from_arrays(FEATURIZER.encode_residues(residues, demo.sequences[i]))
            for i in indices
        ]
    )
    expected = explicit.batch(range(len(indices)), demo.y[indices], padding)
    got = demo.batch(indices, padding)
    for name in ("x", "src", "dst", "edge_attr", "batch", "pos", "node_vectors", "y", "y_mask",
                 "node_mask"):  # fmt: skip
        a, b = getattr(got, name), getattr(expected, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.equal(a, b), name
    assert got.num_graphs == expected.num_graphs


# --- structure folders -----------------------------------------------------------------


def test_structure_folder(shared_data: Path, tmp_path: Path) -> None:
    robustness = shared_data / "proteins" / "robustness"
    (tmp_path / "broken.pdb").write_text("this is not a structure\n")
    labels = pd.DataFrame(
        {
            "file": [
                str(robustness / "1A8O.pdb"),
                str(robustness / "1l2y.pdb.gz"),
                "broken.pdb",
                str(robustness / "4gxy.cif.gz"),  # RNA only: no residue graph
                "missing.pdb",
                str(robustness / "2XHE.pdb.gz"),
                str(robustness / "pdb1ubi_ca.pdb"),
            ],
            "chain": ["", "", "", "", "", "B", None],
            "stability": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    labels.to_csv(tmp_path / "labels.csv", index=False)
    source = StructureFolder(str(tmp_path / "labels.csv"), ["stability"], structures=str(tmp_path))
    cache = tmp_path / "cache"
    dataset = source.load(FEATURIZER, cache, num_workers=1, progress=False)
    assert dataset.row_ids.tolist() == [0, 1, 5, 6]
    assert dataset.y[:, 0].tolist() == [1.0, 2.0, 6.0, 7.0]
    assert dataset.failures["row"].tolist() == [2, 3, 4]
    assert dataset.failures["file"].tolist()[2] == "missing.pdb"
    assert "no such file" in dataset.failures["reason"].iloc[2]
    assert "no amino-acid residues" in dataset.failures["reason"].iloc[1]
    # node i is residue i of the kept sequence
    counts = dataset.graphs.node_counts.tolist()
    assert [len(s) for s in dataset.sequences] == counts
    one = FEATURIZER.residues((str(robustness / "2XHE.pdb.gz"), ("B",)))
    assert dataset.sequences[2] == one.sequence
    assert dataset.table["file"].tolist()[2].endswith("2XHE.pdb.gz")
    again = source.load(FEATURIZER, cache, num_workers=1, progress=False)
    assert again.sequences == dataset.sequences
    pd.testing.assert_frame_equal(again.failures, dataset.failures, check_dtype=False)
    assert len(list(cache.iterdir())) == 1


# --- table splits -------------------------------------------------------------------


def _items(dataset: GraphDataset):
    return dataset.items, dataset.y.numpy(), dataset.row_ids


def test_column_split_matches_flip(shared_data: Path) -> None:
    folder = shared_data / "proteins" / "gb1_flip"
    table = pd.read_csv(folder / "labels.csv.gz")
    items = table["sequence"].tolist()
    labels, row_ids = table[["fitness"]].to_numpy(), np.arange(len(table))
    split = ColumnSplit("split_three_vs_rest", "split_three_vs_rest_validation")(
        items, labels, row_ids, table=table
    )
    # FLIP's own split file: the 265-aa construct starts with the 56 GB1 residues
    flip = pd.read_csv(folder / "splits" / "three_vs_rest.csv.gz")
    part = {
        s[:56]: ("val" if v is True or str(v) == "True" else p)
        for s, p, v in zip(flip["sequence"], flip["set"], flip["validation"], strict=True)
    }
    for name in ("train", "val", "test"):
        assert {part[items[i]] for i in getattr(split, name)} == {name}
    assert (len(split.train), len(split.val), len(split.test)) == (2691, 299, 5743)


def test_column_split_errors(demo: GraphDataset) -> None:
    with pytest.raises(ConfigError, match="no column 'nope'"):
        ColumnSplit("nope")(*_items(demo), table=demo.table)
    with pytest.raises(ConfigError, match="no table"):
        ColumnSplit("split_three_vs_rest")(*_items(demo))
    with pytest.raises(ConfigError, match="name no part"):
        ColumnSplit("split_three_vs_rest", train_value="learn")(*_items(demo), table=demo.table)


def test_mutation_count_split(demo: GraphDataset) -> None:
    counts = demo.table["num_mutations"].to_numpy()
    splitter = MutationCountSplit(max_train_mutations=2, val_fraction=0.2, seed=3)
    split = splitter(*_items(demo), table=demo.table)
    assert (counts[split.train] <= 2).all() and (counts[split.val] <= 2).all()
    assert (counts[split.test] > 2).all()
    n_pool = int((counts <= 2).sum())
    assert len(split.val) == round(0.2 * n_pool) and len(split.train) + len(split.val) == n_pool
    again = splitter(*_items(demo), table=demo.table)
    np.testing.assert_array_equal(again.val, split.val)
    with pytest.raises(ConfigError, match="both parts"):
        MutationCountSplit(max_train_mutations=9)(*_items(demo), table=demo.table)
