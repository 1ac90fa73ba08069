"""PropertyModel: target scaling, and checkpoints that load without running code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from molgraph.batch import GraphBatch
from molgraph.errors import CheckpointError
from molgraph.featurize import MoleculeFeaturizer
from molgraph.models import MLPHead, PropertyModel, Task
from molgraph.models.checkpoint import save_checkpoint
from molgraph.models.recipe import Recipe
from molgraph.nn import GINEncoder
from molgraph.predict import load_model

SMILES = ["C", "CCO", "c1ccccc1O", "CC(=O)O", "[Na+].[Cl-]", "CCN(CC)CC"]
NAMES = ("a", "b")
MEAN = torch.tensor([-2.0, 10.0])
STD = torch.tensor([3.0, 0.5])


def _recipe(featurizer: MoleculeFeaturizer, kind: str = "regression") -> dict:
    """A recipe as ``train_from_config`` writes it: featurizer, encoder, head, task."""
    return {
        "featurizer": featurizer.to_dict(),
        "encoder": {
            "_target_": "molgraph.nn.GINEncoder",
            "in_node_dim": featurizer.node_dim,
            "in_edge_dim": featurizer.edge_dim,
            "hidden_dim": 16,
            "num_layers": 2,
            "readout": "mean",
        },
        "head": {
            "_target_": "molgraph.models.MLPHead",
            "in_dim": 16,
            "out_dim": 2,
            "hidden_dim": 8,
        },
        "task": {"kind": kind, "names": list(NAMES)},
    }


def _model(featurizer: MoleculeFeaturizer, kind: str = "regression") -> PropertyModel:
    torch.manual_seed(0)
    recipe = _recipe(featurizer, kind)
    encoder = GINEncoder(
        featurizer.node_dim, featurizer.edge_dim, hidden_dim=16, num_layers=2, readout="mean"
    )
    return PropertyModel(
        encoder,
        MLPHead(16, 2, hidden_dim=8),
        Task(kind, NAMES),
        target_mean=MEAN if kind == "regression" else None,
        target_std=STD if kind == "regression" else None,
        recipe=Recipe.from_dict(recipe),
    )


@pytest.fixture(scope="module")
def featurizer() -> MoleculeFeaturizer:
    return MoleculeFeaturizer()


@pytest.fixture(scope="module")
def batch(featurizer: MoleculeFeaturizer) -> GraphBatch:
    y = torch.tensor(
        [
            [-1.0, 10.5],
            [float("nan"), 9.0],
            [-5.0, 10.0],
            [0.0, float("nan")],
            [2.0, 11.0],
            [-3.0, 10.2],
        ]
    )
    return featurizer.packed(SMILES).batch(torch.arange(len(SMILES)), y)


def _trained_buffers(model: PropertyModel, batch: GraphBatch) -> PropertyModel:
    """Move BatchNorm running statistics away from their initial values."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(batch)
    return model.eval()


def test_predict_batch_unscales_regression_outputs(featurizer, batch) -> None:
    model = _model(featurizer).eval()
    with torch.no_grad():
        raw = model(batch)
        pred = model.predict_batch(batch)
    torch.testing.assert_close(pred, raw * STD + MEAN)


def test_predict_batch_gives_probabilities_for_classification(featurizer, batch) -> None:
    model = _model(featurizer, "classification").eval()
    with torch.no_grad():
        torch.testing.assert_close(model.predict_batch(batch), torch.sigmoid(model(batch)))


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_regression_loss_uses_standardised_targets(featurizer, batch) -> None:
    model = _model(featurizer).eval()
    loss = model.training_step(batch, 0)
    output = model(batch)
    expected = model.task.loss(output, (batch.y - MEAN) / STD, batch.y_mask)
    torch.testing.assert_close(loss, expected)
    # Not the loss on raw targets: the scaling matters for these statistics.
    assert not torch.allclose(loss, model.task.loss(output, batch.y, batch.y_mask))


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_classification_loss_uses_raw_labels(featurizer) -> None:
    y = torch.tensor([[1.0, 0.0], [0.0, float("nan")], [1.0, 1.0]])
    batch = featurizer.packed(SMILES[:3]).batch(torch.arange(3), y)
    model = _model(featurizer, "classification").eval()
    loss = model.training_step(batch, 0)
    torch.testing.assert_close(loss, model.task.loss(model(batch), batch.y, batch.y_mask))


def test_checkpoint_round_trip(featurizer, batch, tmp_path: Path) -> None:
    model = _trained_buffers(_model(featurizer), batch)
    path = save_checkpoint(model, tmp_path / "model.pt")

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["molgraph"] == model.recipe.to_dict()
    rebuilt = PropertyModel.from_recipe(
        Recipe.from_dict(checkpoint["molgraph"]), checkpoint["state_dict"]
    )
    assert not rebuilt.training
    torch.testing.assert_close(rebuilt.target_mean, MEAN)
    torch.testing.assert_close(rebuilt.target_std, STD)
    with torch.no_grad():
        expected = model.predict_batch(batch)
        torch.testing.assert_close(rebuilt.predict_batch(batch), expected, rtol=0, atol=1e-6)

    for source in (path, tmp_path):  # the file, or its run directory
        loaded, loaded_featurizer = load_model(source)
        assert loaded_featurizer == featurizer
        with torch.no_grad():
            torch.testing.assert_close(loaded.predict_batch(batch), expected, rtol=0, atol=1e-6)


class _RunsCode:
    """Pickles to a call of ``os.system`` that writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _TorchFile:
    """Written by ``torch.save``; read back unrestricted by ``torch.load``."""

    @staticmethod
    def write(obj: object, path: Path) -> None:
        torch.save(obj, path)

    @staticmethod
    def read_unrestricted(path: Path) -> object:
        return torch.load(path, weights_only=False)


class _PickleFile:
    """A plain pickle named like a checkpoint."""

    @staticmethod
    def write(obj: object, path: Path) -> None:
        path.write_bytes(pickle.dumps(obj, protocol=2))

    @staticmethod
    def read_unrestricted(path: Path) -> object:
        return pickle.loads(path.read_bytes())


@pytest.mark.parametrize("file", [_TorchFile, _PickleFile], ids=["torch.save", "pickle"])
@pytest.mark.parametrize("wrap", [False, True], ids=["bare", "inside-a-checkpoint-dict"])
def test_pickled_code_is_refused_and_never_runs(file, wrap: bool, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    payload = _RunsCode(marker)
    obj = {"molgraph": {}, "state_dict": {"w": payload}} if wrap else payload
    file.write(obj, tmp_path / "model.pt")

    with pytest.raises(CheckpointError, match=r"model\.pt"):
        load_model(tmp_path)
    assert not marker.exists()
    # Control: the payload is live; an unrestricted unpickler does run it.
    file.read_unrestricted(tmp_path / "model.pt")
    assert marker.exists()


def test_file_without_recipe_is_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="no molgraph recipe"):
        load_model(tmp_path / "model.pt")


def test_recipe_without_weights_is_refused(featurizer, tmp_path: Path) -> None:
    torch.save({"molgraph": _recipe(featurizer)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError):
        load_model(tmp_path)


def test_weights_not_matching_the_recipe_are_refused(featurizer, tmp_path: Path) -> None:
    state = _model(featurizer).state_dict()
    del state["target_std"]
    torch.save({"molgraph": _recipe(featurizer), "state_dict": state}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError):
        load_model(tmp_path)


def test_recipe_lacking_a_part_is_refused(featurizer) -> None:
    recipe = _recipe(featurizer)
    del recipe["head"]
    with pytest.raises(CheckpointError, match="head"):
        PropertyModel.from_recipe(Recipe.from_dict(recipe), {})


def _os_system_encoder(recipe: dict, marker: Path, tmp_path: Path) -> dict:
    return {**recipe, "encoder": {"_target_": "os.system", "_args_": [f"touch {marker}"]}}


def _os_system_nested_in_head(recipe: dict, marker: Path, tmp_path: Path) -> dict:
    nested = {"_target_": "os.system", "_args_": [f"touch {marker}"]}
    return {**recipe, "head": {**recipe["head"], "dropout": nested}}


def _read_pickle_through_molgraph_io(recipe: dict, marker: Path, tmp_path: Path) -> dict:
    # The name starts with "molgraph." but is pandas.read_pickle, reached through a module
    # attribute (molgraph.io imports pandas as pd); it unpickles the file, running its code.
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(pickle.dumps(_RunsCode(marker), protocol=2))
    target = {"_target_": "molgraph.io.pd.read_pickle", "_args_": [str(payload)]}
    return {**recipe, "encoder": target}


def _torch_load_through_torch_optim(recipe: dict, marker: Path, tmp_path: Path) -> dict:
    # "torch.optim." is allowed for optimizers, but torch.optim.optimizer imports torch,
    # so this name reaches torch.load, and the recipe can turn weights_only off.
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(pickle.dumps(_RunsCode(marker), protocol=2))
    target = {
        "_target_": "torch.optim.optimizer.torch.load",
        "f": str(payload),
        "weights_only": False,
    }
    return {**recipe, "encoder": target}


@pytest.mark.parametrize(
    "hostile",
    [
        _os_system_encoder,
        _os_system_nested_in_head,
        _read_pickle_through_molgraph_io,
        _torch_load_through_torch_optim,
    ],
    ids=["os.system", "os.system-nested", "molgraph.io.pd.read_pickle", "torch.optim...load"],
)
def test_recipe_targets_outside_molgraph_are_refused(featurizer, hostile, tmp_path) -> None:
    marker = tmp_path / "marker"
    recipe = hostile(_recipe(featurizer), marker, tmp_path)
    torch.save(
        {"molgraph": recipe, "state_dict": _model(featurizer).state_dict()}, tmp_path / "model.pt"
    )
    # The file itself is a plain weights-only checkpoint: only the recipe is hostile.
    torch.load(tmp_path / "model.pt", weights_only=True)

    with pytest.raises(Exception) as raised:  # its type is checked below
        load_model(tmp_path)
    assert not marker.exists(), "loading the checkpoint ran the recipe's code"
    assert isinstance(raised.value, CheckpointError), repr(raised.value)


def test_missing_model_path_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=str(tmp_path / "nothing")):
        load_model(tmp_path / "nothing")
