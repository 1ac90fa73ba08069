"""Prediction with a trained model: load safely, featurize as in training, keep every row."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from molgraph.batch import GraphBatch
from molgraph.builder import model_from_recipe
from molgraph.data.dataset import featurize_all
from molgraph.data.inputs import VariantOptions, read_inputs
from molgraph.errors import CheckpointError
from molgraph.featurize import featurizer_from_dict
from molgraph.io import write_table
from molgraph.models.module import PropertyModel
from molgraph.train import predict_loader


def resolve_model_path(path: str | Path) -> Path:
    """A run directory (its ``model.pt``) or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file (give a run directory or a .pt/.ckpt)")
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Recipe and weights of a run directory, ``model.pt`` or Lightning ``.ckpt``.

    Loaded with ``torch.load(weights_only=True)``: the file cannot run code.
    """
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
    return recipe, state_dict


def load_model(path: str | Path) -> tuple[PropertyModel, Any]:
    """Model and featurizer from a run directory, ``model.pt``, Lightning ``.ckpt``, or an
    encoder bundle with a task head (a directory or a registered name).

    Nothing is unpickled: checkpoints load with ``torch.load(weights_only=True)``,
    bundles as JSON and checksummed safetensors.
    """
    from molgraph.pretrained.registry import open_bundle

    if not Path(path).exists() or (Path(path) / "recipe.json").is_file():
        bundle = open_bundle(path)  # a bundle, or a clear error naming what was looked for
        if not bundle.has_head:
            raise CheckpointError(
                f"{path}: this bundle holds an encoder only (no task head): it cannot predict"
            )
        recipe, state_dict = bundle.recipe, bundle.state_dict
    else:
        recipe, state_dict = read_checkpoint(path)
    model = model_from_recipe(recipe, state_dict)
    return model, featurizer_from_dict(recipe["featurizer"])


def graph_batches(
    graphs: Any, batch_size: int, progress: bool = False, desc: str = "predicting"
) -> Iterator[GraphBatch]:
    """Consecutive batches of ``batch_size`` graphs of ``graphs`` (``PackedGraphs`` or
    ``VariantGraphs``), in order, with a progress bar over batches."""
    starts = range(0, len(graphs), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress):
        yield graphs.batch(torch.arange(start, min(start + batch_size, len(graphs))))


def with_esm_embeddings(
    recipe: dict[str, Any],
    graphs: Any,
    esm_path: str | Path | None = None,
    progress: bool = True,
) -> Any:
    """``graphs`` with the per-residue ESM embeddings that a model fused with a frozen ESM
    reads (``recipe["fusion"]``), else unchanged.

    The ESM checkpoint is ``esm_path``, or found by the recipe's model name (torch hub's
    cache, else a download); embeddings go through the cache under ``$MOLGRAPH_CACHE/esm``.
    """
    fusion = recipe.get("fusion")
    if not fusion or fusion.get("finetune_layers") or graphs is None:
        return graphs
    from molgraph.data.proteins import attach_embeddings, graph_sequences
    from molgraph.esm import EmbeddingCache, ESMEmbedder, load_esm

    model, alphabet = load_esm(fusion["esm_model"], esm_path)
    embedder = ESMEmbedder(model, alphabet, fusion["esm_model"], layer=fusion["esm_layer"])
    cache = EmbeddingCache.of(embedder, os.environ.get("MOLGRAPH_CACHE", "~/.cache/molgraph"))
    columns = featurizer_from_dict(recipe["featurizer"]).residue_type_columns
    embeddings = cache.embed(embedder, graph_sequences(graphs, columns), progress)
    return attach_embeddings(graphs, embeddings)


def predict_graphs(
    model: PropertyModel,
    graphs: Any,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
    esm_path: str | Path | None = None,
) -> np.ndarray:
    """Predictions ``[len(graphs), T]`` of featurized graphs (``PackedGraphs`` or
    ``VariantGraphs``), in target units; ESM embeddings are added for fused models
    (:func:`with_esm_embeddings`)."""
    graphs = with_esm_embeddings(model.recipe, graphs, esm_path, progress)
    model = model.to(device)
    graphs = graphs.to(device) if torch.device(device).type == "cuda" else graphs
    return predict_loader(model, graph_batches(graphs, batch_size, progress)).numpy()


def predict_items(
    model: PropertyModel,
    featurizer: Any,
    items: list,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    num_workers: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Predictions ``[n, T]`` (NaN for failed items) and an error string per item ('' if ok)."""
    graphs, errors = featurize_all(featurizer, items, num_workers, progress)
    pred = np.full((len(items), len(model.task.names)), np.nan, dtype=np.float32)
    ok = np.array([e is None for e in errors])
    if graphs is not None:
        pred[ok] = predict_graphs(model, graphs, batch_size, device, progress)
    return pred, ["" if e is None else e.reason for e in errors]


def predict_file(
    model_path: str | Path,
    input_path: str | Path | Sequence[str | Path],
    output_path: str | Path,
    smiles_column: str | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    variants: dict[str, Any] | None = None,
    esm_path: str | Path | None = None,
    **input_options: Any,
) -> pd.DataFrame:
    """Predict every input of a file (see :mod:`molgraph.inputs`: molecules from a
    CSV/SMI/SDF file; structure files, a folder or a CSV of them; variants of one
    structure); the output keeps every input row in order, adds one column per task and
    an ``error`` column for rows that could not be used. ``esm_path``: the ESM checkpoint
    of a model fused with ESM (see :func:`with_esm_embeddings`).

    ``variants`` (``structure``, ``mutations_column``, ...) override the settings of
    the mutational scan the model was trained on; ``input_options`` go to
    :func:`~molgraph.inputs.read_inputs`.
    """
    model, featurizer = load_model(model_path)
    rows = read_inputs(
        input_path,
        featurizer,
        smiles_column=smiles_column,
        variants=VariantOptions.from_recipe(model.recipe, **(variants or {})),
        progress=progress,
        **input_options,
    )
    pred = np.full((len(rows.table), len(model.task.names)), np.nan, dtype=np.float32)
    if rows.graphs is not None:
        pred[rows.ok] = predict_graphs(
            model, rows.graphs, batch_size, device, progress, esm_path=esm_path
        )
    out = rows.table.copy()
    for t, name in enumerate(model.task.names):
        out[_free_name(out, name)] = pred[:, t]
    out[_free_name(out, "error")] = rows.errors
    write_table(out, Path(output_path))
    return out


def _free_name(table: pd.DataFrame, name: str) -> str:
    """``name``, or ``name_pred`` where the input already has a column of that name."""
    return name if name not in table else f"{name}_pred"
