"""ProteinGym-format scans: the nonsense policy, the stop residue type, the fold schemes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph.data import MutationalScan, ProteinGymFoldSplit, VariantReader, parse_mutations
from molgraph.data.folds import assign_folds
from molgraph.data.mutations import LETTERS
from molgraph.errors import ConfigError
from molgraph.featurize.protein import ProteinFeaturizer
from molgraph.featurize.residues import STOP

GB1 = Path(__file__).resolve().parents[2] / "molgraph" / "datasets" / "gb1_2qmt.pdb"
SEQUENCE = "MQYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"


def _dms(tmp_path: Path) -> Path:
    table = pd.DataFrame(
        {
            "mutant": ["", "V39A", "V39A:D40G", "K10*", "A20*:T25A", "V39Q", "E56Z"],
            "DMS_score": [1.0, 0.5, 0.2, -1.0, -1.5, 0.7, 0.1],
            "DMS_score_bin": [1, 1, 0, 0, 0, 1, 0],
        }
    )
    path = tmp_path / "dms.csv"
    table.to_csv(path, index=False)
    return path


def _scan(path: Path, nonsense: str) -> MutationalScan:
    return MutationalScan(str(path), str(GB1), ["DMS_score"], chains=["A"], mutations_column="mutant",
                          numbering="index", offset=1, nonsense=nonsense, bin_column="DMS_score_bin")  # fmt: skip


def test_parse_reads_stop_codons() -> None:
    (m,) = parse_mutations("K156*")
    assert (m.wild_type, m.position, m.mutant) == ("K", 156, "*")


def test_reader_truncates_at_the_stop_or_refuses() -> None:
    stop = VariantReader("MKVDG", [1, 2, 3, 4, 5], [""] * 5, "index", 1, nonsense="stop")
    types, errors = stop.from_mutations(["K2*", "V3A:D4*", "K2*:G5A"])
    assert not errors
    assert ["".join(LETTERS[t] for t in row) for row in types] == ["M****", "MKA**", "M****"]
    refuse = VariantReader("MKVDG", [1, 2, 3, 4, 5], [""] * 5, "index", 1)
    types, errors = refuse.from_mutations(["K2*", "V3A"])
    assert "stop codon" in errors[0] and 1 not in errors
    _, errors = refuse.from_sequences(["MK*DG"])
    assert "'*'" in errors[0]
    types, errors = stop.from_sequences(["MK*DG"])
    assert not errors and types[0].tolist()[2:] == [STOP] * 3


def test_proteingym_csv_with_stop_residue(tmp_path: Path) -> None:
    path = _dms(tmp_path)
    with pytest.raises(ConfigError, match="stop_residue=true"):
        _scan(path, "stop").load(ProteinFeaturizer(), tmp_path / "cache")
    featurizer = ProteinFeaturizer(stop_residue=True)
    dataset = _scan(path, "stop").load(featurizer, tmp_path / "cache")
    # E56Z has an unknown letter: the one failed row
    assert dataset.row_ids.tolist() == [0, 1, 2, 3, 4, 5]
    assert dataset.items[1] == SEQUENCE[:38] + "A" + SEQUENCE[39:]
    assert dataset.items[3] == SEQUENCE[:9] + "*" * 47
    assert dataset.graphs.node_dim == ProteinFeaturizer().node_dim + 1
    batch = dataset.graphs.batch([3])
    columns = featurizer.residue_type_columns
    assert batch.x[9:56, columns.stop - 1].eq(1).all() and batch.x[:9, columns.stop - 1].eq(0).all()
    refused = _scan(path, "refuse").load(ProteinFeaturizer(), tmp_path / "cache")
    assert refused.row_ids.tolist() == [0, 1, 2, 5]


def test_featurizer_recipe_unchanged_without_stop() -> None:
    assert "stop_residue" not in ProteinFeaturizer().to_dict()
    recipe = ProteinFeaturizer(stop_residue=True).to_dict()
    assert ProteinFeaturizer.from_dict(recipe).stop_residue
    assert ProteinFeaturizer().residue_type_columns.stop == 21


VARIANTS = ["", "A1C", "A2C", "A3C:A7D", "A4C", "A5C", "A6C", "A7C", "A8C", "A2C:A9C", "A10C"]


@pytest.mark.parametrize("scheme", ["modulo", "contiguous"])
def test_position_folds_keep_positions_apart(scheme: str) -> None:
    k = 3
    table = pd.DataFrame({"mutant": VARIANTS})
    n = len(VARIANTS)
    tested = np.zeros(n, int)
    for fold in range(k):
        split = ProteinGymFoldSplit(scheme, k, fold, seed=0, val_fraction=0.2)(
            VARIANTS, np.zeros((n, 1)), np.arange(n), table=table
        )
        tested[split.test] += 1
        positions = lambda rows: {m.position for r in rows for m in parse_mutations(VARIANTS[r])}  # noqa: E731
        train_positions = positions(np.concatenate([split.train, split.val]))
        fold_positions = {p for p in range(1, 11) if _fold_of(p, scheme, k) == fold}
        assert not train_positions & fold_positions
        assert not set(split.test) & set(split.train) | set(split.test) & set(split.val)
    assert tested.tolist() == [1] * n  # every variant in exactly one test fold


def _fold_of(position: int, scheme: str, k: int) -> int:
    fold, _ = assign_folds([f"A{p}C" for p in range(1, 11)], scheme, k, 0)
    return int(fold[position - 1])


def test_modulo_and_contiguous_assignment() -> None:
    singles = [f"A{p}C" for p in range(1, 11)]
    modulo, _ = assign_folds(singles, "modulo", 3)
    contiguous, _ = assign_folds(singles, "contiguous", 3)
    assert modulo.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert contiguous.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ConfigError, match="cannot fill 5 folds"):
        assign_folds(["A1C", "A2C", "A3C"], "modulo", 5)


def test_random_folds_partition_variants() -> None:
    n = 23
    variants = [f"A{i + 1}C" for i in range(n)]
    table = pd.DataFrame({"mutant": variants})
    tests = []
    for fold in range(5):
        split = ProteinGymFoldSplit("random", 5, fold, seed=3)(
            variants, np.zeros((n, 1)), np.arange(n), table=table
        )
        assert len(split.train) + len(split.val) + len(split.test) == n
        tests.extend(split.test.tolist())
    assert sorted(tests) == list(range(n))


def test_proteingym_configs_give_the_stop_column(shared_data: Path, monkeypatch) -> None:
    from hydra import compose, initialize_config_dir

    from molgraph.builder import build, config_dir

    monkeypatch.setenv("MOLGRAPH_DATA", str(shared_data))
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        dms = compose("train", overrides=["experiment=proteingym_gin", "data=gb1_dms"])
        old = compose("train", overrides=["experiment=gb1_gin"])
        refuse = compose(
            "train",
            overrides=["experiment=proteingym_gvp", "data=avgfp_dms", "data.nonsense=refuse"],
        )
    scan = build(dms.data)
    assert isinstance(scan, MutationalScan) and scan.nonsense == "stop" and scan.offset == 1
    assert build(dms.featurizer).stop_residue
    assert not build(old.featurizer).stop_residue and build(old.data).nonsense == "refuse"
    assert not build(refuse.featurizer).stop_residue
    assert dms.split.fold == "all" and dms.split.column == "mutant"


def test_fold_split_names_a_missing_column() -> None:
    n = len(VARIANTS)
    split = ProteinGymFoldSplit("random", 5, 0, seed=0)
    with pytest.raises(ConfigError, match="no column 'mutant'; columns present: \\['variant'\\]"):
        split(VARIANTS, np.zeros((n, 1)), np.arange(n), table=pd.DataFrame({"variant": VARIANTS}))
    with pytest.raises(ConfigError, match="no table of columns"):
        split(VARIANTS, np.zeros((n, 1)), np.arange(n), table=None)
