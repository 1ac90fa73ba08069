"""Protein configs compose and build; the embedded demo trains end to end; bad pairs fail early."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import TINY_TRAINING
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from molgraph.builder import build, config_dir, run_from_config, train_from_config
from molgraph.data import MutationalScan
from molgraph.errors import ConfigError
from molgraph.featurize.protein import ProteinFeaturizer

DEMO_STRUCTURE = str(Path(__file__).parents[1] / "molgraph/datasets/gb1_2qmt.pdb")

EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def _compose(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_protein_featurizer_option() -> None:
    featurizer = build(_compose("featurizer=protein").featurizer)
    assert featurizer == ProteinFeaturizer()


@pytest.mark.parametrize("option", ["gb1", "avgfp", "protein_demo"])
def test_protein_data_option(option: str, shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("MOLGRAPH_DATA", str(shared_data))
    source = build(_compose(f"data={option}").data)
    assert isinstance(source, MutationalScan)
    assert Path(source.path).is_file() and Path(source.structure).is_file()
    header = pd.read_csv(source.path, nrows=0).columns
    for column in (source.variant_column, *source.target_columns):
        assert column in header


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_builds(experiment: str, shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("MOLGRAPH_DATA", str(shared_data))
    # the ProteinGym presets take any scan in that format (GB1 here), one fold per run
    scan = ["data=gb1_dms", "split.fold=0"] if experiment.startswith("proteingym") else []
    cfg = _compose(f"experiment={experiment}", *scan)
    featurizer = build(cfg.featurizer)
    source = build(cfg.data)
    source.check_featurizer(featurizer)
    spec = run_from_config(cfg).encoder
    takes_vectors = spec.accepts("in_node_vector_dim")
    vectors = {"in_node_vector_dim": featurizer.node_vector_dim} if takes_vectors else {}
    encoder = build(cfg.encoder, in_node_dim=featurizer.node_dim,
                    in_edge_dim=featurizer.edge_dim, **vectors)  # fmt: skip
    if "gvp" in experiment or experiment == "protein_demo":
        assert vectors == {"in_node_vector_dim": 3}
    assert not getattr(encoder, "requires_positions", False) or featurizer.has_coordinates
    build(cfg.split)


def test_protein_demo_trains(tmp_path: Path) -> None:
    cfg = _compose("experiment=protein_demo", *TINY_TRAINING, f"cache_dir={tmp_path / 'cache'}")
    run_dir = tmp_path / "run"
    metrics = train_from_config(cfg, run_dir)
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    for part in ("val", "test"):
        for key in ("spearman", "rmse", "spearman/fitness", "rmse/fitness"):
            assert math.isfinite(metrics[part][key]), (part, key)
    split = json.loads((run_dir / "split.json").read_text())
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (270, 30, 100)
    predictions = pd.read_csv(run_dir / "predictions_test.csv")
    assert list(predictions.columns) == ["row", "sequence", "fitness", "fitness_pred"]
    assert predictions["sequence"].str.len().eq(56).all()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (("data=protein_demo",), "needs a ProteinFeaturizer"),
        (("featurizer=protein",), "needs a MoleculeFeaturizer"),
    ],
)
def test_incompatible_featurizer_fails_before_loading(
    overrides: tuple[str, ...], match: str, tmp_path: Path
) -> None:
    cfg = _compose(*overrides, f"cache_dir={tmp_path / 'cache'}")
    with pytest.raises(ConfigError, match=match):
        train_from_config(cfg, tmp_path / "run")
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "run" / "split.json").exists()


def test_captured_step_inputs_carry_node_vectors() -> None:
    # the tensors-only forward that CUDA graphs replay must see the node vectors GVP reads
    from molgraph.models import MLPHead
    from molgraph.models.module import _TensorForward
    from molgraph.nn import GVPEncoder
    from molgraph.packed import Padding

    packed = ProteinFeaturizer(k=8).packed([DEMO_STRUCTURE, DEMO_STRUCTURE])
    batch = packed.batch([0, 1], padding=Padding(graphs=3, node_multiple=64, edge_multiple=256))
    encoder = GVPEncoder(
        packed.node_dim, packed.edge_dim, hidden_dim=16, hidden_vector_dim=4, num_layers=1,
        node_vectors="none", in_node_vector_dim=3,
    )  # fmt: skip
    head = MLPHead(encoder.out_dim, 1, hidden_dim=8)
    encoder.eval(), head.eval()  # no dropout: the two calls must agree exactly
    optional = _TensorForward.optional_fields(batch)
    assert optional == ("pos", "node_vectors")
    step = _TensorForward(encoder, head, batch.num_graphs, optional)
    expected = head(encoder(batch).graph)
    torch.testing.assert_close(step(*_TensorForward.inputs(batch)), expected)
