"""Model checkpoints: weights and recipe in one file that loads without running code.

A run directory holds ``model.pt`` (the best weights and the recipe); Lightning's
``checkpoints/best.ckpt`` carries the recipe too. Both are read with
``torch.load(weights_only=True)``, so a downloaded file cannot execute anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from molgraph.errors import CheckpointError
from molgraph.models.module import PropertyModel
from molgraph.models.recipe import Recipe

#: The file of a run directory that holds its model.
MODEL_FILE = "model.pt"


def resolve_model_path(path: str | Path) -> Path:
    """A run directory (its ``model.pt``) or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file (give a run directory or a .pt/.ckpt)")
    return path


def save_checkpoint(model: PropertyModel, path: Path) -> Path:
    """Weights and recipe in a file that ``torch.load(weights_only=True)`` reads."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    recipe = {} if model.recipe is None else model.recipe.to_dict()
    torch.save({"molgraph": recipe, "state_dict": state}, path)
    return path


def read_checkpoint(path: str | Path) -> tuple[Recipe, dict[str, Tensor]]:
    """Recipe and weights of a run directory, ``model.pt`` or Lightning ``.ckpt``."""
    path = resolve_model_path(path)
    try:
        checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a weights-only checkpoint ({exc})") from None
    if not isinstance(checkpoint, dict) or "molgraph" not in checkpoint:
        raise CheckpointError(f"{path}: no molgraph recipe in this checkpoint")
    recipe, state_dict = checkpoint["molgraph"], checkpoint.get("state_dict")
    if not isinstance(recipe, dict) or not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: the checkpoint lacks its recipe or its weights")
    return Recipe.from_dict(recipe, f"{path}: checkpoint recipe"), state_dict


def load_checkpoint(path: str | Path) -> PropertyModel:
    """The trained model of a run directory, ``model.pt`` or ``.ckpt``, in eval mode."""
    recipe, state_dict = read_checkpoint(path)
    return PropertyModel.from_recipe(recipe, state_dict)
