"""Bad training data: unreadable tables, non-finite and text targets, targets that
contradict their task kind, duplicate molecules, validation parts too small to score."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molgraph.data import (
    IndexFileSplit,
    KFoldSplit,
    MoleculeCSV,
    RandomSplit,
    ScaffoldSplit,
    SplitIndices,
    StratifiedSplit,
)
from molgraph.data.duplicates import identity_keys, keep_together, report_duplicates
from molgraph.data.split_checks import split_dataset
from molgraph.errors import ConfigError, InputError
from molgraph.featurize import MoleculeFeaturizer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "bad_data"


@pytest.fixture(scope="module")
def featurizer() -> MoleculeFeaturizer:
    return MoleculeFeaturizer.preset("default")


def _load(path: Path, featurizer, target: str = "logS", task="regression"):
    source = MoleculeCSV(str(path), target_columns=[target], task=task)
    return source.load(featurizer, cache_dir=None, num_workers=1, progress=False)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.csv", "is empty"),
        ("header_only.csv", r"has a header \(smiles, logS\) but no rows"),
        ("latin1.csv", "is not UTF-8 text .*iconv -f latin1"),
    ],
)
def test_unreadable_tables_are_typed_errors(featurizer, name: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as raised:
        _load(FIXTURES / name, featurizer)
    assert str(raised.value).startswith(str(FIXTURES / name))
    assert "\n" not in str(raised.value)


def test_a_tab_separated_file_named_csv_is_read_as_one(featurizer) -> None:
    dataset = _load(FIXTURES / "tab_separated.csv", featurizer)
    assert dataset.smiles == ("CCO", "CCN", "CCC")
    assert dataset.y[:, 0].tolist() == pytest.approx([0.5, 0.7, -1.2])


def test_non_finite_targets_are_refused_per_row(featurizer) -> None:
    dataset = _load(FIXTURES / "infinite.csv", featurizer)
    assert dataset.smiles == ("CCO", "CO")
    assert np.isfinite(dataset.y.numpy()).all()
    failures = dataset.failures.set_index("row")["reason"]
    assert sorted(failures.index) == [1, 2, 3]
    for row, value in ((1, "inf"), (2, "-inf"), (3, "1e+308")):
        assert "'logS' is not finite in float32" in failures[row]
        assert value in failures[row]


def test_a_text_target_column_is_named(featurizer) -> None:
    with pytest.raises(ConfigError, match=r"target column 'activity' holds text.*'active'"):
        _load(FIXTURES / "text_target.csv", featurizer, target="activity")


def _table(tmp_path: Path, values, name: str = "y") -> Path:
    smiles = ["C" * (i + 1) for i in range(len(values))]
    path = tmp_path / "table.csv"
    pd.DataFrame({"smiles": smiles, name: values}).to_csv(path, index=False)
    return path


def test_classification_on_a_continuous_column_is_refused(featurizer, tmp_path) -> None:
    path = _table(tmp_path, np.linspace(-3.0, 2.0, 12))
    with pytest.raises(ConfigError, match=r"'y' is set to classification.*looks continuous"):
        _load(path, featurizer, target="y", task="classification")


def test_classification_on_classes_1_and_2_asks_for_0_1(featurizer, tmp_path) -> None:
    path = _table(tmp_path, [1, 2, 2, 1, 2, 1])
    with pytest.raises(ConfigError, match=r"values are \[1.0, 2.0\]: recode them as 0/1"):
        _load(path, featurizer, target="y", task="classification")


def test_a_few_stray_labels_are_refused_row_by_row(featurizer, tmp_path) -> None:
    path = _table(tmp_path, [0, 1, 1, 0, 1, 0, 2])
    dataset = _load(path, featurizer, target="y", task="classification")
    assert len(dataset) == 6
    assert dataset.failures["reason"].tolist() == ["target 'y' is not a 0/1 label: 2.0"]


def test_regression_on_a_0_1_column_hints_at_classification(featurizer, tmp_path, caplog) -> None:
    path = _table(tmp_path, [0, 1, 1, 0, 1, 0])
    with caplog.at_level(logging.WARNING, logger="molgraph.data.tables"):
        _load(path, featurizer, target="y")
    assert "'y' holds only 0 and 1 but is set to regression" in caplog.text


def test_task_kinds_per_target_from_a_list_or_a_mapping() -> None:
    columns = ["logS", "active"]
    listed = MoleculeCSV("x.csv", columns, task=["regression", "classification"])
    mapped = MoleculeCSV("x.csv", columns, task={"active": "classification", "logS": "regression"})
    assert listed.task == mapped.task == ("regression", "classification")
    assert MoleculeCSV("x.csv", columns, task=["regression", "regression"]).task == "regression"
    with pytest.raises(ConfigError, match=r"task maps \['logP'\] but the targets are"):
        MoleculeCSV("x.csv", ["logS"], task={"logP": "regression"})
    with pytest.raises(ConfigError, match="lists 1 kinds for 2 targets"):
        MoleculeCSV("x.csv", columns, task=["regression"])
    with pytest.raises(ConfigError, match="got 'ranking'"):
        MoleculeCSV("x.csv", columns, task=["regression", "ranking"])


def test_mixed_kinds_check_each_column_by_its_kind(featurizer, tmp_path) -> None:
    path = tmp_path / "mixed.csv"
    pd.DataFrame(
        {
            "smiles": ["CCO", "CCN", "CCC", "CO"],
            "logS": [0.1, -2.0, 3.5, 1.0],
            "active": [0, 1, 1, 0],
        }
    ).to_csv(path, index=False)
    source = MoleculeCSV(str(path), ["logS", "active"], task=["regression", "classification"])
    dataset = source.load(featurizer, cache_dir=None, num_workers=1, progress=False)
    assert len(dataset) == 4
    flipped = MoleculeCSV(str(path), ["logS", "active"], task=["classification", "regression"])
    with pytest.raises(ConfigError, match="'logS' is set to classification"):
        flipped.load(featurizer, cache_dir=None, num_workers=1, progress=False)


# ---- duplicates -------------------------------------------------------------------------

BASES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "OC(=O)c1ccccc1", "CC1CCCCC1O",
         "CC(C)CO", "c1ccncc1", "ClCCl", "CC#N", "OCC(O)CO", "CC(C)Cc1ccccc1"]  # fmt: skip


def _spellings(smiles: str, n: int, seed: int) -> list[str]:
    """``n`` different SMILES of one molecule (RDKit's random atom orders)."""
    mol = Chem.MolFromSmiles(smiles)
    spellings = {Chem.MolToSmiles(mol), *Chem.MolToRandomSmilesVect(mol, 50, randomSeed=seed)}
    assert len(spellings) >= n, smiles
    return sorted(spellings)[:n]


@pytest.fixture(scope="module")
def duplicated(featurizer, tmp_path_factory):
    """40 rows: 12 molecules, most written two to four ways; the first with conflicting
    targets."""
    rng = np.random.default_rng(0)
    rows = []
    for i, smiles in enumerate(BASES):
        for j, spelling in enumerate(_spellings(smiles, 1 + i % 4, i)):
            value = float(i) + (0.5 * j if i == 1 else 0.0)  # molecule 1: conflicting targets
            rows.append((spelling, value, int(rng.integers(0, 2))))
    path = tmp_path_factory.mktemp("dup") / "duplicated.csv"
    pd.DataFrame(rows, columns=["smiles", "y", "label"]).to_csv(path, index=False)
    source = MoleculeCSV(str(path), ["y"])
    return source.load(featurizer, cache_dir=None, num_workers=1, progress=False)


def test_identity_is_the_canonical_smiles() -> None:
    groups = identity_keys(
        ["OCC", "CCO", "C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "C1CC(("], "smiles"
    )
    assert groups.tolist() == [0, 0, 1, 2, 3]
    assert identity_keys(["MKV", "MKV", "MKA"], "sequence").tolist() == [0, 0, 1]


def test_duplicates_are_counted_with_their_conflicts(duplicated, caplog) -> None:
    groups = identity_keys(duplicated.items, "smiles")
    with caplog.at_level(logging.WARNING, logger="molgraph.data.duplicates"):
        counts = report_duplicates(groups, duplicated.y.numpy(), duplicated.items,
                                   duplicated.row_ids)  # fmt: skip
    n_repeated = sum(1 for i in range(len(BASES)) if i % 4)
    n_rows = sum(1 + i % 4 for i in range(len(BASES)) if i % 4)
    assert counts == (n_repeated, n_rows, 1)
    assert f"{n_repeated} item(s) occur more than once ({n_rows} rows" in caplog.text
    assert "1 with conflicting targets, e.g. row 1 " in caplog.text


def _one_part_per_molecule(split: SplitIndices, groups: np.ndarray) -> bool:
    part = np.empty(len(groups), dtype=int)
    for p, name in enumerate(("train", "val", "test")):
        part[getattr(split, name)] = p
    return all(len(set(part[groups == g])) == 1 for g in np.unique(groups))


@pytest.mark.parametrize(
    "splitter",
    [
        RandomSplit(sizes=(0.5, 0.25, 0.25), seed=1),
        StratifiedSplit(sizes=(0.5, 0.25, 0.25), seed=2),
        KFoldSplit(k=4, fold=1, seed=3, val_fraction=0.25),
        ScaffoldSplit(sizes=(0.5, 0.25, 0.25), seed=4),
        "split_file",
    ],
    ids=["random", "stratified", "kfold", "scaffold", "index_file"],
)
def test_every_splitter_keeps_identical_molecules_together(duplicated, splitter, tmp_path):
    groups = identity_keys(duplicated.items, "smiles")
    if splitter == "split_file":  # a file that puts the two spellings of phenol apart
        path = tmp_path / "split.json"
        train = np.r_[0, 2:20]
        SplitIndices(train, np.r_[1, 20:24], np.arange(24, 30)).save(path, duplicated.row_ids)
        splitter = IndexFileSplit(str(path))
    y = duplicated.y.numpy()
    split = split_dataset(splitter, duplicated)
    assert _one_part_per_molecule(split, groups)
    assert sum(len(getattr(split, p)) for p in ("train", "val", "test")) == len(duplicated)
    plain = splitter(duplicated.items, y, duplicated.row_ids)
    if not isinstance(splitter, ScaffoldSplit):  # scaffold sets hold identical molecules
        assert not _one_part_per_molecule(plain, groups), "the fixture should straddle parts"


def test_keep_together_moves_a_group_to_the_part_of_its_first_item() -> None:
    groups = np.array([0, 0, 0, 1, 2, 2])
    split = SplitIndices(np.array([0, 1, 3]), np.array([2, 4]), np.array([5]))
    together, moved = keep_together(split, groups)
    assert moved == 2
    assert together.train.tolist() == [0, 1, 2, 3]
    assert together.val.tolist() == [4, 5] and together.test.tolist() == []
    unchanged, moved = keep_together(together, groups)
    assert moved == 0 and unchanged is together


# ---- validation parts too small to score ---------------------------------------------------


def test_a_one_item_validation_part_is_refused_with_the_sizes(duplicated, tmp_path) -> None:
    groups = identity_keys(duplicated.items, "smiles")
    single = next(i for i in range(len(groups)) if (groups == groups[i]).sum() == 1)
    rest = np.setdiff1d(np.arange(len(groups)), [single])
    path = tmp_path / "split.json"
    SplitIndices(rest[:20], np.array([single]), rest[20:]).save(path, duplicated.row_ids)
    with pytest.raises(ConfigError, match=r"cannot be scored \(train 20, val 1, test 9 items\)"):
        split_dataset(IndexFileSplit(str(path)), duplicated)


def test_a_one_class_validation_part_is_refused(featurizer, tmp_path) -> None:
    path = tmp_path / "classes.csv"
    labels = [0, 1] * 5 + [1, 1]  # rows 10 and 11 (val below) are both class 1
    pd.DataFrame({"smiles": BASES, "active": labels}).to_csv(path, index=False)
    source = MoleculeCSV(str(path), ["active"], task="classification")
    dataset = source.load(featurizer, cache_dir=None, num_workers=1, progress=False)
    split_path = tmp_path / "split.json"
    SplitIndices(np.arange(8), np.array([10, 11]), np.array([8, 9])).save(
        split_path, dataset.row_ids
    )
    with pytest.raises(
        ConfigError, match=r"val 2.*'active': one class only \(2 items labelled 1\)"
    ):
        split_dataset(IndexFileSplit(str(split_path)), dataset)
