"""Residue sequences of protein graphs, and per-residue embeddings attached to them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from molgraph.data.mutations import sequences_of
from molgraph.data.variants import VariantGraphs
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
