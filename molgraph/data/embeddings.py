"""Residue sequences of protein graphs, and per-residue embeddings attached to them:
ESM embeddings through the on-disk cache, one path for training, ``embed-esm`` and
prediction alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from molgraph.data.mutations import sequences_of
from molgraph.data.variants import VariantGraphs
from molgraph.esm import EmbeddingCache, ESMEmbedder
from molgraph.packed import PackedGraphs


def residue_sequences(graphs: PackedGraphs, columns: slice) -> tuple[str, ...]:
    """The sequence of each graph, read back from its residue one-hot ``x[:, columns]``."""
    types = graphs.x[:, columns].argmax(1).to(torch.uint8).cpu().numpy()
    bounds = np.cumsum(graphs.node_counts.numpy())[:-1]
    return tuple(s for part in np.split(types, bounds) for s in sequences_of(part[None]))


def graph_sequences(graphs: PackedGraphs | VariantGraphs, columns: slice) -> list[str]:
    """The sequence of each graph (node i = residue i), from its residue one-hot."""
    if isinstance(graphs, VariantGraphs):
        return sequences_of(graphs.residue_types.cpu().numpy())
    return list(residue_sequences(graphs, columns))


def attach_embeddings(
    graphs: PackedGraphs | VariantGraphs, embeddings: Sequence[Tensor]
) -> PackedGraphs | VariantGraphs:
    """``graphs`` with per-residue embeddings ``[L_i, D]`` (one per graph, in order,
    ``L_i`` = the graph's node count), which batches carry as ``node_embeddings``.

    Raises
    ------
    ValueError
        The number of embeddings, or the length of one, does not match the graphs.
    """
    if isinstance(graphs, VariantGraphs):
        counts = [graphs.num_residues] * len(graphs)
    else:
        counts = graphs.node_counts.tolist()
    if len(embeddings) != len(counts):
        raise ValueError(f"{len(embeddings)} embeddings for {len(counts)} graphs")
    for i, (e, n) in enumerate(zip(embeddings, counts, strict=True)):
        if e.ndim != 2 or e.shape[0] != n:
            raise ValueError(f"graph {i}: embedding of shape {tuple(e.shape)} for {n} residues")
    if isinstance(graphs, VariantGraphs):
        return replace(graphs, embeddings=torch.stack(list(embeddings)))
    return replace(graphs, node_embeddings=torch.cat(list(embeddings)))


Graphs = PackedGraphs | VariantGraphs


def esm_embeddings(
    graphs: Graphs,
    residue_columns: slice,
    embedder: ESMEmbedder,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> list[Tensor]:
    """The embedding ``[L_i, D]`` of each graph's sequence (read from its residue one-hot
    ``residue_columns``), from the cache under ``cache_dir/esm`` (default
    :func:`molgraph.paths.cache_dir`); missing ones are computed and stored."""
    cache = EmbeddingCache.of(embedder, cache_dir)
    return cache.embed(embedder, graph_sequences(graphs, residue_columns), progress)


def with_esm_embeddings(
    graphs: Graphs,
    residue_columns: slice,
    embedder: ESMEmbedder,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Graphs:
    """``graphs`` carrying :func:`esm_embeddings` into every batch as ``node_embeddings``."""
    embeddings = esm_embeddings(graphs, residue_columns, embedder, cache_dir, progress)
    return attach_embeddings(graphs, embeddings)


def fill_esm_cache(
    graphs: Graphs,
    residue_columns: slice,
    embedder: ESMEmbedder,
    cache_dir: str | Path | None = None,
) -> int:
    """Compute the missing embeddings of ``graphs``' sequences into the cache, one chunk in
    memory at a time; returns the number of sequences."""
    sequences = graph_sequences(graphs, residue_columns)
    EmbeddingCache.of(embedder, cache_dir).compute(embedder, sequences, progress=True)
    return len(sequences)
