"""Prediction with a trained model: load safely, featurize as in training, keep every row.

:func:`score_file` runs any graph scorer (a model's predictions, an encoder's embeddings)
over every input of a file; :func:`predict_file` and
:func:`molgraph.pretrained.embed_file` are its two uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from molgraph.batch import GraphBatch
from molgraph.bundles import is_bundle, open_bundle
from molgraph.data.embeddings import Graphs, with_esm_embeddings
from molgraph.data.featurization import featurize_all
from molgraph.data.inputs import VariantOptions, read_inputs
from molgraph.errors import CheckpointError
from molgraph.esm import ESMSettings
from molgraph.featurize import Featurizer, ProteinFeaturizer
from molgraph.io import write_table
from molgraph.models.checkpoint import read_checkpoint
from molgraph.models.module import PropertyModel
from molgraph.models.recipe import Recipe
from molgraph.resume import RUNNING, unfinished
from molgraph.uncertainty import Ensemble, is_ensemble, load_ensemble

#: Values ``[n, width]`` (numpy) of featurized graphs, in order.
Scorer = Callable[[Graphs], np.ndarray]


def load_model(path: str | Path) -> tuple[PropertyModel, Featurizer]:
    """Model and featurizer from a run directory, ``model.pt``, Lightning ``.ckpt``, or an
    encoder bundle with a task head (a directory or a registered name).

    Nothing is unpickled: checkpoints load with ``torch.load(weights_only=True)``,
    bundles as JSON and checksummed safetensors.
    """
    if not Path(path).exists() or is_bundle(path):
        bundle = open_bundle(path)  # a bundle, or a clear error naming what was looked for
        if not bundle.has_head:
            raise CheckpointError(
                f"{path}: this bundle holds an encoder only (no task head): it cannot predict"
            )
        recipe, state_dict = bundle.recipe, bundle.state_dict
    else:
        if unfinished(Path(path)):
            warnings.warn(f"{path}: this run did not finish (it holds {RUNNING}: killed, or "
                          "still training); its model may be missing or not its best", stacklevel=2)  # fmt: skip
        recipe, state_dict = read_checkpoint(path)
    return PropertyModel.from_recipe(recipe, state_dict), recipe.featurizer


def load_predictor(path: str | Path) -> PropertyModel | Ensemble:
    """The ensemble of a directory holding ``ensemble.json`` (run or bundle), else the
    single model of :func:`load_model`."""
    if Path(path).is_dir() and is_ensemble(path):
        return load_ensemble(path)
    return load_model(path)[0]


def predictor_scorer(
    predictor: PropertyModel | Ensemble,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
    esm_path: str | Path | None = None,
    members: bool = False,
) -> tuple[list[str], Scorer]:
    """Output columns and scorer of a model (one column per target) or an ensemble (mean,
    sd, interval bounds per target; per-member columns with ``members``): every member
    scores the same featurized graphs."""
    if isinstance(predictor, Ensemble):

        def score_all(graphs: Graphs) -> np.ndarray:
            return predictor.predict(
                lambda m: predict_graphs(m, graphs, batch_size, device, progress, esm_path, True),
                members,
            )

        return predictor.columns(members), score_all

    def score(graphs: Graphs) -> np.ndarray:
        return predict_graphs(predictor, graphs, batch_size, device, progress, esm_path)

    return list(predictor.task.names), score


def graph_batches(
    graphs: Graphs, batch_size: int, progress: bool = False, desc: str = "predicting"
) -> Iterator[GraphBatch]:
    """Consecutive batches of ``batch_size`` graphs, in order, with a progress bar."""
    starts = range(0, len(graphs), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress):
        yield graphs.batch(torch.arange(start, min(start + batch_size, len(graphs))))


def attach_esm(
    recipe: Recipe, graphs: Graphs, esm_path: str | Path | None = None, progress: bool = True
) -> Graphs:
    """``graphs`` with the per-residue ESM embeddings that a model fused with a frozen ESM
    reads, else unchanged.

    The ESM checkpoint is ``esm_path``, or found by the recipe's model name (torch hub's
    cache, else a download); embeddings go through the cache as in training.
    """
    fusion = recipe.fusion
    if fusion is None or fusion.finetune_layers or fusion.esm_model is None:
        return graphs
    assert isinstance(recipe.featurizer, ProteinFeaturizer)
    path = None if esm_path is None else str(esm_path)
    embedder = ESMSettings(fusion.esm_model, path, fusion.esm_layer).embedder(name=fusion.esm_model)
    columns = recipe.featurizer.residue_type_columns
    return with_esm_embeddings(graphs, columns, embedder, progress=progress)


def predict_graphs(
    model: PropertyModel,
    graphs: Graphs,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = True,
    esm_path: str | Path | None = None,
    variance: bool = False,
) -> np.ndarray:
    """Predictions ``[len(graphs), T]`` of featurized graphs, in target units (with
    ``variance``, ``[len(graphs), 2T]``: see :meth:`PropertyModel.predict_batch`); ESM
    embeddings are added for fused models (:func:`attach_esm`)."""
    assert model.recipe is not None
    graphs = attach_esm(model.recipe, graphs, esm_path, progress)
    model = model.to(device)
    graphs = graphs.to(device) if torch.device(device).type == "cuda" else graphs
    return model.predict_batches(graph_batches(graphs, batch_size, progress), variance).numpy()


def score_items(
    featurizer: Featurizer,
    items: Sequence[Any],
    width: int,
    score: Scorer,
    num_workers: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """``score`` of every item ``[n, width]`` (NaN rows for items that could not be
    featurized) and an error string per item ('' if it worked)."""
    graphs, errors = featurize_all(featurizer, list(items), num_workers, progress)
    values = np.full((len(items), width), np.nan, dtype=np.float32)
    if graphs is not None:
        values[[e is None for e in errors]] = score(graphs)
    return values, ["" if e is None else e.reason for e in errors]


def predict_items(
    model: PropertyModel,
    featurizer: Featurizer,
    items: list,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    num_workers: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Predictions ``[n, T]`` (NaN for failed items) and an error string per item ('' if ok)."""

    def score(graphs: Graphs) -> np.ndarray:
        return predict_graphs(model, graphs, batch_size, device, progress)

    return score_items(featurizer, items, len(model.task.names), score, num_workers, progress)


def score_file(
    recipe: Recipe,
    input_path: str | Path | Sequence[str | Path],
    width: int,
    score: Scorer,
    smiles_column: str | None = None,
    progress: bool = True,
    variants: dict[str, Any] | None = None,
    **input_options: Any,
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Every input row of a file (see :mod:`molgraph.data.inputs`: molecules from a CSV/SMI/SDF
    file; structure files, a folder or a CSV of them; variants of one structure), in
    order, with ``score`` of its graph ``[n, width]`` (NaN where it has none) and its error
    ('' where it has none).

    ``variants`` (``structure``, ``mutations_column``, ...) override the settings of the
    mutational scan the model was trained on; ``input_options`` go to
    :func:`~molgraph.data.inputs.read_inputs`.
    """
    rows = read_inputs(
        input_path,
        recipe.featurizer,
        smiles_column=smiles_column,
        variants=VariantOptions.from_trained_on(recipe.trained_on, **(variants or {})),
        progress=progress,
        **input_options,
    )
    values = np.full((len(rows.table), width), np.nan, dtype=np.float32)
    if rows.graphs is not None:
        values[rows.ok] = score(rows.graphs)
    table = rows.table.copy()
    if rows.notes is not None:  # structures: dropped waters, mapped residues, ...
        table[free_name(table, "notes")] = rows.notes
    return table, values, rows.errors


def predict_file(
    model_path: str | Path,
    input_path: str | Path | Sequence[str | Path],
    output_path: str | Path,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    esm_path: str | Path | None = None,
    members: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """Predict every input of a file (:func:`score_file`; ``options`` go there) with the
    model or ensemble at ``model_path``; the output keeps every input row in order, adds
    one column per task (an ensemble: also ``<task>_sd``, ``_lower``, ``_upper`` and, with
    ``members``, one per member) and an ``error`` column for rows that could not be used. ``esm_path``: the
    ESM checkpoint of a model fused with ESM (see :func:`attach_esm`)."""
    model = load_predictor(model_path)
    assert model.recipe is not None
    names, score = predictor_scorer(model, batch_size, device, progress, esm_path, members)
    out, pred, errors = score_file(model.recipe, input_path, len(names), score,
                                   progress=progress, **options)  # fmt: skip
    for t, name in enumerate(names):
        out[free_name(out, name)] = pred[:, t]
    out[free_name(out, "error")] = errors
    write_table(out, Path(output_path))
    return out


def free_name(table: pd.DataFrame, name: str) -> str:
    """``name``, or ``name_pred`` where the input already has a column of that name."""
    return name if name not in table else f"{name}_pred"
