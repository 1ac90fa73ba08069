"""Every option of every config group composes and instantiates; bad combinations fail early."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from molgraph.builder import build, config_dir, train_from_config
from molgraph.data import MoleculeCSV, SplitIndices
from molgraph.data.splits import Splitter
from molgraph.errors import ConfigError
from molgraph.esm import ESMSettings
from molgraph.featurize import MoleculeFeaturizer
from molgraph.models import MLPHead, PropertyModel, Task
from molgraph.nn import GINEncoder
from molgraph.nn.fusion import FusionSpec

ESOL_TARGET = "measured log solubility in mols per litre"
GROUPS = (
    "data",
    "featurizer",
    "encoder",
    "model",
    "split",
    "trainer",
    "fusion",
    "esm",
    "experiment",
)
# Protein options are tested in tests/test_protein_training.py.
PROTEIN_DATA = ("avgfp", "avgfp_dms", "gb1", "gb1_dms", "protein_demo", "proteingym", "structures")
PROTEIN_FEATURIZERS = ("protein",)
# Widths the feature presets declare in their docstrings: (node_dim, edge_dim).
FEATURIZER_WIDTHS = {
    "default": (135, 14),
    "organic": (47, 14),
    "canonical": (74, 12),
    "pretrain": (123, 7),
}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def _compose(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert _options(group), f"conf/{group}/ has no option"
    assert set(FEATURIZER_WIDTHS) == set(_options("featurizer")) - set(PROTEIN_FEATURIZERS)


@pytest.mark.parametrize("option", sorted(set(_options("data")) - set(PROTEIN_DATA)))
def test_data_option(option: str, shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("MOLGRAPH_DATA", str(shared_data))
    source = build(_compose(f"data={option}").data)
    assert isinstance(source, MoleculeCSV)
    assert Path(source.path).is_file(), source.path
    assert source.task in ("regression", "classification")
    header = pd.read_csv(source.path, nrows=0).columns
    for column in (source.smiles_column, *source.target_columns):
        assert column in header, f"{option}: no column {column!r} in {source.path}"


@pytest.mark.parametrize("option", sorted(FEATURIZER_WIDTHS))
def test_featurizer_option(option: str) -> None:
    featurizer = build(_compose(f"featurizer={option}", "seed=3").featurizer)
    assert isinstance(featurizer, MoleculeFeaturizer)
    assert featurizer == MoleculeFeaturizer.preset(option, conformer_seed=3)
    assert (featurizer.node_dim, featurizer.edge_dim) == FEATURIZER_WIDTHS[option]
    packed = featurizer.packed(["c1ccccc1O"])
    assert packed.x.shape[1] == featurizer.node_dim
    assert packed.edge_attr.shape[1] == featurizer.edge_dim


@pytest.mark.parametrize("option", _options("encoder"))
def test_encoder_option(option: str) -> None:
    cfg = _compose(f"encoder={option}", "encoder.hidden_dim=16", "encoder.num_layers=2")
    plain = MoleculeFeaturizer()
    encoder = build(cfg.encoder, in_node_dim=plain.node_dim, in_edge_dim=plain.edge_dim)
    assert isinstance(encoder, torch.nn.Module)
    # the graph embedding is as wide as the readout makes it (Set2Set doubles it)
    readout = getattr(encoder, "readout", None)
    assert encoder.out_dim == (readout.out_dim if readout is not None else 16)
    featurizer = MoleculeFeaturizer(conformer=encoder.requires_positions)
    batch = featurizer.packed(["CCO", "C"]).batch(torch.arange(2))
    assert encoder.eval()(batch).graph.shape == (2, encoder.out_dim)


@pytest.mark.parametrize("option", _options("model"))
def test_model_option(option: str) -> None:
    cfg = _compose(f"model={option}", "model.head.hidden_dim=8")
    featurizer = MoleculeFeaturizer()
    encoder = GINEncoder(featurizer.node_dim, featurizer.edge_dim, hidden_dim=16, num_layers=1)
    head = build(cfg.model.head, in_dim=encoder.out_dim, out_dim=2)
    assert isinstance(head, MLPHead)
    task = Task("regression", ("a", "b"))
    model = build(cfg.model, encoder=encoder, head=head, task=task)
    assert isinstance(model, PropertyModel)
    assert model.encoder is encoder and model.head is head and model.task is task
    optimizer = model.optimizer_factory(model.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    batch = featurizer.packed(["CCO", "C"]).batch(torch.arange(2))
    assert model.eval()(batch).shape == (2, 2)


@pytest.mark.parametrize("option", _options("split"))
def test_split_option(option: str, tmp_path: Path, esol: pd.DataFrame) -> None:
    smiles = esol["smiles"].iloc[:40].tolist()
    labels = esol[[ESOL_TARGET]].iloc[:40].to_numpy(dtype=float)
    labels = (labels > np.median(labels)).astype(float)  # two classes, for stratified
    row_ids = np.arange(100, 140)
    # per-item columns, for the splitters that read them (column, mutations)
    table = pd.DataFrame(
        {
            "part": ["train"] * 30 + ["test"] * 10,
            "is_val": [True] * 5 + [None] * 35,
            "num_mutations": [1] * 30 + [2] * 10,
            "mutant": [f"A{i + 1}C" for i in range(40)],
        }
    )
    overrides = [f"split={option}"]
    if option == "file":
        stored = SplitIndices(np.arange(0, 30), np.arange(30, 35), np.arange(35, 40))
        stored.save(tmp_path / "split.json", row_ids)
        overrides.append(f"split.path={tmp_path / 'split.json'}")
    if option == "column":
        overrides += ["split.column=part", "split.validation_column=is_val"]
    if option == "proteingym":
        overrides.append("split.fold=0")  # default all: the training command runs each fold
    splitter: Splitter = build(_compose(*overrides).split)
    split = splitter(smiles, labels, row_ids, table=table)
    assert isinstance(split, SplitIndices)
    parts = np.concatenate([split.train, split.val, split.test])
    np.testing.assert_array_equal(np.sort(parts), np.arange(40))
    assert len(split.train) > len(split.val) > 0 and len(split.test) > 0
    if option == "file":
        np.testing.assert_array_equal(split.test, stored.test)


@pytest.mark.parametrize("option", _options("trainer"))
def test_trainer_option(option: str, tmp_path: Path) -> None:
    cfg = _compose(f"trainer={option}")
    extra = {}
    if cfg.trainer.get("accelerator") == "gpu" and not torch.cuda.is_available():
        # No GPU here: build every other argument of the option as written.
        extra["accelerator"] = "cpu"
    trainer = build(cfg.trainer, logger=False, default_root_dir=str(tmp_path), **extra)
    assert isinstance(trainer, L.Trainer)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert trainer.logger is None


@pytest.mark.parametrize("option", _options("fusion"))
def test_fusion_option(option: str) -> None:
    spec = build(_compose(f"fusion={option}").fusion)
    assert isinstance(spec, FusionSpec) and spec.mode == option
    assert spec.active == (option != "none")


def test_esm_option_and_an_unknown_setting(tmp_path: Path) -> None:
    assert build(_compose("esm.layer=3").esm) == ESMSettings(layer=3)
    cfg = _compose("+fusion.colour=blue")
    with pytest.raises(ConfigError, match="colour"):
        train_from_config(cfg, tmp_path / "run")


def test_positions_needed_but_not_featurized_fail_before_training(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(GINEncoder, "requires_positions", True)
    cfg = _compose(
        "encoder.hidden_dim=8",
        "encoder.num_layers=1",
        f"cache_dir={tmp_path / 'cache'}",
        "num_workers=1",
    )
    assert cfg.featurizer.conformer is False
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="conformer"):
        train_from_config(cfg, run_dir)
    # Raised before the data were featurized or anything was trained.
    assert not (tmp_path / "cache").exists()
    assert not (run_dir / "split.json").exists()
    assert not (run_dir / "model.pt").exists()
