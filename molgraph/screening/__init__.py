"""Screening-scale prediction and embedding: streaming, resumable, sharded, every row kept.

>>> predict_library("runs/esol", "library.smi.gz", "scores.parquet")      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molgraph.models.module import PropertyModel
from molgraph.packed import PackedGraphs
from molgraph.predict import load_model, predict_graphs
from molgraph.screening.parts import OUTPUT_FORMATS, OutputTarget, Parts
from molgraph.screening.run import Scorer, Shard, Summary, screen

__all__ = ["OUTPUT_FORMATS", "Scorer", "Shard", "Summary", "merge", "predict_library", "screen"]


def predict_library(
    model: PropertyModel | str | Path,
    input_path: str,
    output: str | Path,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    **options: Any,
) -> Summary:
    """Predict every molecule of a library with ``model`` (a loaded model, or its run
    directory, checkpoint or bundle); ``options`` go to :func:`screen`."""
    OutputTarget.of(output)  # a wrong suffix fails before the model loads
    if isinstance(model, PropertyModel):
        assert model.recipe is not None
        network, featurizer = model, model.recipe.featurizer
    else:
        network, featurizer = load_model(model)

    def score(graphs: PackedGraphs) -> np.ndarray:
        return predict_graphs(network, graphs, batch_size, device, progress=False)

    lookahead = 2 if str(device).startswith("cuda") else 0
    scorer = Scorer(network.task.names, score, state_fingerprint(network), lookahead=lookahead)
    return screen(featurizer, scorer, input_path, output, **options)


def state_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a module's weights and recipe: what a resumed run's scores depend on."""
    digest = hashlib.sha256(repr(getattr(module, "recipe", None)).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def merge(output: str | Path) -> int:
    """Assemble a sharded run's output once every shard has finished; returns its rows.

    Raises :class:`~molgraph.errors.InputError` naming every missing or incomplete chunk."""
    return Parts(OutputTarget.of(output)).merge()
