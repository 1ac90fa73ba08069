"""Screening-scale prediction and embedding: streaming, resumable, sharded, every row kept.

>>> predict_library("runs/esol", "library.smi.gz", "scores.parquet")      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from molgraph.models.module import PropertyModel
from molgraph.predict import load_predictor, predictor_scorer
from molgraph.screening.parts import OUTPUT_FORMATS, OutputTarget, Parts
from molgraph.screening.run import Scorer, Shard, Summary, screen
from molgraph.uncertainty import Ensemble

__all__ = ["OUTPUT_FORMATS", "Scorer", "Shard", "Summary", "merge", "predict_library", "screen"]


def predict_library(
    model: PropertyModel | Ensemble | str | Path,
    input_path: str,
    output: str | Path,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    members: bool = False,
    **options: Any,
) -> Summary:
    """Predict every molecule of a library with ``model`` (a loaded model or ensemble, or
    its run directory, checkpoint or bundle); ``options`` go to :func:`screen`. An
    ensemble's members all score each chunk's one featurization (mean, sd, interval
    bounds; per-member columns with ``members``)."""
    OutputTarget.of(output)  # a wrong suffix fails before the model loads
    network = model if isinstance(model, PropertyModel | Ensemble) else load_predictor(model)
    assert network.recipe is not None
    columns, score = predictor_scorer(network, batch_size, device, False, members=members)
    lookahead = 2 if str(device).startswith("cuda") else 0
    fingerprint = state_fingerprint(network, columns)
    scorer = Scorer(columns, score, fingerprint, lookahead=lookahead)
    return screen(network.recipe.featurizer, scorer, input_path, output, **options)


def state_fingerprint(module: torch.nn.Module | Ensemble, columns: Sequence[str] = ()) -> str:
    """sha256 of the weights and recipe (every member's, and the calibration, for an
    ensemble) and of the output columns: what a resumed run's scores depend on."""
    digest = hashlib.sha256(repr(getattr(module, "recipe", None)).encode())
    if isinstance(module, Ensemble):
        digest.update(repr(module.record([])).encode())
        digest.update("".join(state_fingerprint(m) for m in module.members).encode())
        digest.update(repr(list(columns)).encode())
        return digest.hexdigest()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def merge(output: str | Path) -> int:
    """Assemble a sharded run's output once every shard has finished; returns its rows.

    Raises :class:`~molgraph.errors.InputError` naming every missing or incomplete chunk."""
    return Parts(OutputTarget.of(output)).merge()
