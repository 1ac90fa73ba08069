"""Splits on real data: BBBP (classification, 11 unparseable rows dropped) and ESOL."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, rdBase

from molgraph.data.scaffolds import ScaffoldSplit, scaffold_of
from molgraph.data.splits import (
    IndexFileSplit,
    KFoldSplit,
    RandomSplit,
    SplitIndices,
    StratifiedSplit,
    part_sizes,
)
from molgraph.errors import ConfigError, FeaturizationError

DATA = "/work/shared/data/molecules"


@dataclass(frozen=True)
class Items:
    smiles: list[str]
    labels: np.ndarray  # [n_items, 1], float
    row_ids: np.ndarray  # [n_items], CSV row numbers

    @property
    def args(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        return self.smiles, self.labels, self.row_ids


@pytest.fixture(scope="module")
def bbbp() -> Items:
    frame = pd.read_csv(f"{DATA}/BBBP.csv")
    with rdBase.BlockLogs():
        keep = np.array([Chem.MolFromSmiles(s) is not None for s in frame["smiles"]])
    frame = frame[keep]
    return Items(
        list(frame["smiles"]),
        frame[["p_np"]].to_numpy(dtype=float),
        frame.index.to_numpy(dtype=np.int64),  # gaps where the 11 failed rows were
    )


@pytest.fixture(scope="module")
def esol() -> Items:
    frame = pd.read_csv(f"{DATA}/delaney-processed.csv")
    return Items(
        list(frame["smiles"]),
        frame[["measured log solubility in mols per litre"]].to_numpy(dtype=float),
        np.arange(len(frame), dtype=np.int64),
    )


@pytest.fixture(scope="module")
def scaffold_splits(bbbp: Items) -> dict[tuple[bool, int], SplitIndices]:
    return {
        (balanced, seed): ScaffoldSplit(balanced=balanced, seed=seed)(*bbbp.args)
        for balanced in (True, False)
        for seed in (0, 1)
    }


def assert_partition(split: SplitIndices, n_items: int) -> None:
    parts = [split.train, split.val, split.test]
    for part in parts:
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)  # sorted, no repeats
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n_items))


def counts(split: SplitIndices) -> tuple[int, int, int]:
    return len(split.train), len(split.val), len(split.test)


def test_datasets_as_expected(bbbp: Items, esol: Items) -> None:
    assert len(bbbp.smiles) == 2039
    assert bbbp.row_ids[58:62].tolist() == [58, 60, 62, 63]
    assert len(esol.smiles) == 1128


def test_part_sizes_rounding() -> None:
    assert part_sizes((0.8, 0.1, 0.1), 2039) == (1631, 204, 204)
    assert part_sizes((0.8, 0.1, 0.1), 1128) == (902, 113, 113)
    assert part_sizes((0.5, 0.5, 0.0), 3) == (2, 1, 0)  # val capped at what train leaves


@pytest.mark.parametrize(
    ("dataset", "splitter", "expected"),
    [
        ("bbbp", RandomSplit(), (1631, 204, 204)),
        ("esol", RandomSplit(), (902, 113, 113)),
        ("esol", RandomSplit((0.7, 0.2, 0.1), seed=3), (790, 226, 112)),
        ("bbbp", StratifiedSplit(), (1631, 204, 204)),
        ("esol", StratifiedSplit((0.6, 0.2, 0.2)), (677, 226, 225)),
        ("bbbp", KFoldSplit(), (1427, 204, 408)),
        ("bbbp", KFoldSplit(fold=4), (1428, 204, 407)),
        ("esol", KFoldSplit(k=10, fold=9, val_fraction=0.2), (790, 226, 112)),
    ],
)
def test_exact_partition(dataset: str, splitter, expected, request) -> None:
    items: Items = request.getfixturevalue(dataset)
    split = splitter(*items.args)
    assert_partition(split, len(items.smiles))
    assert counts(split) == expected


def test_scaffold_of() -> None:
    assert scaffold_of("CCc1ccccc1") == "c1ccccc1"
    assert scaffold_of("CCO") == ""
    assert scaffold_of("C[C@H](N)c1ccccc1") == "c1ccccc1"
    assert scaffold_of("C[C@H]1CCCN1", include_chirality=True) == "C1CCNC1"
    with pytest.raises(FeaturizationError, match="could not parse"):
        scaffold_of("C1CC")


@pytest.mark.parametrize("balanced", [True, False])
def test_scaffold_split_keeps_scaffolds_apart(
    bbbp: Items, scaffold_splits: dict[tuple[bool, int], SplitIndices], balanced: bool
) -> None:
    n_train, n_val, _ = part_sizes((0.8, 0.1, 0.1), 2039)
    scaffolds = np.array([scaffold_of(s) for s in bbbp.smiles])
    for seed in (0, 1):
        split = scaffold_splits[balanced, seed]
        assert_partition(split, 2039)
        assert len(split.train) <= n_train and len(split.val) <= n_val
        assert len(split.train) >= n_train - 50  # the greedy fill stays close
        sets = [set(scaffolds[part]) for part in (split.train, split.val, split.test)]
        assert not sets[0] & sets[1] and not sets[0] & sets[2] and not sets[1] & sets[2]


def test_scaffold_split_seed(scaffold_splits: dict[tuple[bool, int], SplitIndices]) -> None:
    balanced_0, balanced_1 = scaffold_splits[True, 0], scaffold_splits[True, 1]
    assert not np.array_equal(balanced_0.test, balanced_1.test)
    unbalanced_0, unbalanced_1 = scaffold_splits[False, 0], scaffold_splits[False, 1]
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(unbalanced_0, name), getattr(unbalanced_1, name))


def test_scaffold_split_rejects_unparseable(esol: Items) -> None:
    smiles = [*esol.smiles[:4], "C1CC"]
    with pytest.raises(FeaturizationError, match="C1CC"):
        ScaffoldSplit()(smiles, esol.labels[:5], esol.row_ids[:5])


def test_random_split_seed(esol: Items) -> None:
    first, again = RandomSplit(seed=7)(*esol.args), RandomSplit(seed=7)(*esol.args)
    other = RandomSplit(seed=8)(*esol.args)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.test, other.test)


@pytest.mark.parametrize("seed", [0, 1])
def test_stratified_keeps_class_fraction(bbbp: Items, seed: int) -> None:
    labels = bbbp.labels[:, 0]
    whole = labels.mean()
    assert whole == pytest.approx(0.7651, abs=1e-4)
    split = StratifiedSplit(seed=seed)(*bbbp.args)
    for part in (split.train, split.val, split.test):
        assert abs(labels[part].mean() - whole) < 0.02


def test_stratified_missing_labels_form_a_stratum(bbbp: Items) -> None:
    labels = bbbp.labels.copy()
    labels[::10, 0] = np.nan  # 204 missing
    split = StratifiedSplit()(bbbp.smiles, labels, bbbp.row_ids)
    assert_partition(split, 2039)
    for part in (split.train, split.val, split.test):
        assert abs(np.isnan(labels[part, 0]).mean() - 204 / 2039) < 0.02


def test_kfold_test_folds_cover_everything(esol: Items) -> None:
    splits = [KFoldSplit(k=5, fold=f, seed=2)(*esol.args) for f in range(5)]
    for split in splits:
        assert_partition(split, 1128)
    tests = np.concatenate([s.test for s in splits])
    assert np.array_equal(np.sort(tests), np.arange(1128))  # disjoint and covering
    assert [len(s.test) for s in splits] == [226, 226, 226, 225, 225]


@pytest.mark.parametrize(
    "splitter",
    [RandomSplit(seed=4), ScaffoldSplit((0.7, 0.15, 0.15), seed=4), KFoldSplit(fold=2)],
)
def test_save_load_round_trip(tmp_path, esol: Items, splitter) -> None:
    row_ids = 1000 + 3 * esol.row_ids  # gaps and an offset, unlike positions
    split = splitter(esol.smiles, esol.labels, row_ids)
    assert_partition(split, 1128)
    path = tmp_path / "split.json"
    split.save(path, row_ids)
    stored = json.loads(path.read_text())
    assert stored["test"] == row_ids[split.test].tolist()
    loaded = IndexFileSplit(str(path))(esol.smiles, esol.labels, row_ids)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(loaded, name), getattr(split, name))


def test_round_trip_on_dropped_rows(tmp_path, bbbp: Items) -> None:
    split = RandomSplit()(*bbbp.args)
    path = tmp_path / "split.json"
    split.save(path, bbbp.row_ids)
    stored = {r for part in json.loads(path.read_text()).values() for r in part}
    assert len(stored) == 2039 and not {59, 61, 391, 685} & stored  # dropped rows absent
    loaded = SplitIndices.load(path, bbbp.row_ids)
    assert np.array_equal(loaded.val, split.val)


def test_unknown_row_id_raises(tmp_path, esol: Items) -> None:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": [0, 1], "val": [5000], "test": [2, 9999]}))
    with pytest.raises(ConfigError, match=r"\[5000, 9999\]") as error:
        IndexFileSplit(str(path))(*esol.args)
    assert str(path) in str(error.value)


def test_skip_missing_leaves_out_and_names_unknown_rows(tmp_path, esol: Items, caplog) -> None:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": [0, 1], "val": [5000, 3], "test": [2, 9999]}))
    split = IndexFileSplit(str(path), skip_missing=True)(*esol.args)
    assert split.train.tolist() == [0, 1] and split.val.tolist() == [3]
    assert split.test.tolist() == [2]
    assert "2 row id(s)" in caplog.text and "[5000, 9999]" in caplog.text


@pytest.mark.parametrize(
    "sizes", [(0.8, 0.1), (0.8, 0.2, 0.1), (1.1, -0.1, 0.0), (0.8, float("nan"), 0.2)]
)
@pytest.mark.parametrize("splitter", [RandomSplit, ScaffoldSplit, StratifiedSplit])
def test_bad_sizes_raise(splitter, sizes) -> None:
    with pytest.raises(ConfigError, match="sizes"):
        splitter(sizes=sizes)


@pytest.mark.parametrize(
    "kwargs", [{"k": 1}, {"k": 5, "fold": 5}, {"fold": -1}, {"val_fraction": 1.0}]
)
def test_bad_kfold_raises(kwargs) -> None:
    with pytest.raises(ConfigError):
        KFoldSplit(**kwargs)


def test_bad_task_raises(esol: Items) -> None:
    with pytest.raises(ConfigError, match="task 1"):
        StratifiedSplit(task=1)(*esol.args)
