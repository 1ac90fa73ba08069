"""Zero-shot variant scores from a masked protein language model (ESM-2, ESM-1v).

Meier et al. 2021 score a substitution ``wt -> mt`` at position ``i`` by a log-odds ratio
of the model's distribution at ``i``; a multi-mutant sums its substitutions:

- ``wt_marginal``: one pass over the wild type, ``log p(mt_i | wt) - log p(wt_i | wt)``.
- ``masked_marginal``: position ``i`` masked, ``log p(mt_i | wt_{-i}) - log p(wt_i | wt_{-i})``
  (one pass per position; every position is masked on its own).

Both come from one ``[L, 20]`` matrix of log-probabilities per (model, method, sequence)
over :data:`~molgraph.featurize.residues.RESIDUE_TYPES`, cached as ``.npy`` under
``<cache>/esm/zero_shot/<model key>/<method>/<sha256 of the sequence>.npy``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import esm
import numpy as np
import torch

from molgraph import paths
from molgraph.errors import ConfigError
from molgraph.featurize.residues import RESIDUE_TYPES

METHODS = ("masked_marginal", "wt_marginal")
#: Longest sequence scored (fair-esm's 1,024 positions less the BOS and EOS tokens).
MAX_LENGTH = 1022


def log_probabilities(
    model: torch.nn.Module, alphabet: esm.data.Alphabet, sequence: str, method: str, batch: int = 16
) -> np.ndarray:
    """``[L, 20]`` float64 log-probabilities of the 20 residue types at every position of
    ``sequence`` under ``method`` (normalised over the model's whole vocabulary)."""
    if method not in METHODS:
        raise ConfigError(f"zero-shot method must be one of {', '.join(METHODS)}, got {method!r}")
    if len(sequence) > MAX_LENGTH:
        raise ConfigError(
            f"sequence of {len(sequence)} residues: zero-shot scoring takes at most {MAX_LENGTH}"
        )
    device = next(model.parameters()).device
    columns = torch.tensor([alphabet.get_idx(a) for a in RESIDUE_TYPES], device=device)
    tokens = [alphabet.cls_idx, *(alphabet.get_idx(a) for a in sequence), alphabet.eos_idx]
    tokens = torch.tensor(tokens, device=device)[None]
    with torch.no_grad():
        if method == "wt_marginal":
            logits = model(tokens)["logits"][0, 1:-1].double()
            return logits.log_softmax(-1)[:, columns].cpu().numpy()
        out = np.empty((len(sequence), len(RESIDUE_TYPES)))
        for start in range(0, len(sequence), batch):
            positions = torch.arange(start, min(start + batch, len(sequence)), device=device)
            masked = tokens.repeat(len(positions), 1)
            masked[torch.arange(len(positions)), positions + 1] = alphabet.mask_idx
            logits = model(masked)["logits"].double()
            rows = logits[torch.arange(len(positions)), positions + 1].log_softmax(-1)
            out[positions.cpu().numpy()] = rows[:, columns].cpu().numpy()
    return out


def model_key(path: str | Path) -> str:
    """A checkpoint's cache key: its stem, size and modification time."""
    stat = Path(path).stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"{Path(path).stem}-{digest}"


def cached_log_probabilities(
    model: torch.nn.Module,
    alphabet: esm.data.Alphabet,
    key: str,
    sequence: str,
    method: str,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """:func:`log_probabilities`, read from or written to the cache (``key`` names the
    model, e.g. :func:`model_key`)."""
    root = Path(cache_dir) if cache_dir is not None else paths.cache_dir()
    name = hashlib.sha256(sequence.encode()).hexdigest()
    path = root / "esm" / "zero_shot" / key / method / f"{name}.npy"
    if path.is_file():
        return np.load(path)
    matrix = log_probabilities(model, alphabet, sequence, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, matrix)
    partial.replace(path)
    return matrix


def substitution_score(
    matrix: np.ndarray, sequence: str, substitutions: Sequence[tuple[int, str, str]]
) -> float:
    """Sum over ``(index, wild type, mutant)`` of ``matrix[index, mt] - matrix[index, wt]``
    (0-based indexes into ``sequence``; 0 for none, the wild type).

    Raises
    ------
    ValueError
        An index outside the sequence, a wild-type letter that differs from it, or a
        letter outside the 20 residue types.
    """
    total = 0.0
    for index, wild_type, mutant in substitutions:
        if not 0 <= index < len(sequence):
            raise ValueError(f"position {index + 1} outside the {len(sequence)}-residue sequence")
        if sequence[index] != wild_type:
            raise ValueError(f"{wild_type}{index + 1}{mutant}: the sequence has {sequence[index]}")
        for letter in (wild_type, mutant):
            if letter not in RESIDUE_TYPES:
                raise ValueError(f"{wild_type}{index + 1}{mutant}: no score for residue {letter!r}")
        total += (
            matrix[index, RESIDUE_TYPES.index(mutant)]
            - matrix[index, RESIDUE_TYPES.index(wild_type)]
        )
    return float(total)
