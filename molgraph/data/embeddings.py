"""Per-residue ESM embeddings of residue graphs, through the on-disk cache: one path for
training, ``embed-esm`` and prediction alike."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from molgraph.data.proteins import attach_embeddings, graph_sequences
from molgraph.data.variants import VariantGraphs
from molgraph.esm import EmbeddingCache, ESMEmbedder
from molgraph.packed import PackedGraphs

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
