"""GraphBatch: the one batch type that flows through encoders, heads and training; and
the declaration of the optional per-node fields every graph record may carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import ClassVar

import torch
from torch import Tensor

from molgraph.graphs import (
    EDGE_FEATURES,
    NODE_FEATURES,
    NODE_POSITIONS,
    NODE_VECTORS,
    DGLGraph,
    dgl,
)


@dataclass(frozen=True)
class NodeField:
    """An optional per-node field: a tensor (or array) ``[N, *shape]`` beside ``x``.

    Parameters
    ----------
    name
        Its attribute on :class:`~molgraph.arrays.GraphArrays`,
        :class:`~molgraph.packed.PackedGraphs` and :class:`GraphBatch` (each declares it,
        default None; a test checks the three against :data:`OPTIONAL_NODE_FIELDS`).
    shape
        Its trailing shape after the node axis, in words (``"3"``, ``"C"``...).
    what
        What it holds, for messages.
    ndata
        Its key in a DGLGraph's ``ndata`` (:mod:`molgraph.graphs`), or None for a field
        never stored in DGL graphs (attached after loading, so never cached).
    """

    name: str
    shape: tuple[str, ...]
    what: str
    ndata: str | None


#: The optional per-node fields, declared once: packing, batching, padding, device moves,
#: DGL conversion and the captured training step all iterate over this tuple.
OPTIONAL_NODE_FIELDS: tuple[NodeField, ...] = (
    NodeField("pos", ("3",), "coordinates", NODE_POSITIONS),  # Å
    NodeField("node_vectors", ("C", "3"), "node vectors", NODE_VECTORS),
    NodeField("node_embeddings", ("D",), "node embeddings", None),  # per-residue ESM
)
NODE_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in OPTIONAL_NODE_FIELDS)


@dataclass(frozen=True)
class GraphBatch:
    """Many small graphs as one disjoint graph, tensors only.

    Shapes
    ------
    x: ``[N, node_dim]`` node features; src, dst: ``[E]`` int64 edge endpoints (global
    node indices); edge_attr: ``[E, edge_dim]``; batch: ``[N]`` int64 graph of each node;
    pos: ``[N, 3]`` coordinates in Å or None; node_vectors: ``[N, C, 3]`` vector features
    that rotate with the coordinates (e.g. residue orientations) or None; y: ``[G, T]``
    targets (0 where missing) or None; y_mask: ``[G, T]`` bool, True where a label exists;
    node_mask: ``[N]`` bool, False for padding nodes (only in padded batches, see
    :class:`molgraph.packed.Padding`); node_embeddings: ``[N, D]`` per-residue language-model
    (ESM) embeddings, node i = residue i, zero on padding nodes, or None.
    """

    x: Tensor
    src: Tensor
    dst: Tensor
    edge_attr: Tensor
    batch: Tensor
    num_graphs: int
    pos: Tensor | None = None
    y: Tensor | None = None
    y_mask: Tensor | None = None
    node_mask: Tensor | None = None
    node_vectors: Tensor | None = None
    node_embeddings: Tensor | None = None
    #: Names of the optional per-node fields (:data:`OPTIONAL_NODE_FIELDS`).
    node_field_names: ClassVar[tuple[str, ...]] = NODE_FIELD_NAMES

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_edges(self) -> int:
        return self.src.shape[0]

    def _map(self, fn) -> GraphBatch:
        return replace(
            self,
            **{
                f.name: fn(getattr(self, f.name))
                for f in fields(self)
                if isinstance(getattr(self, f.name), Tensor)
            },
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> GraphBatch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> GraphBatch:
        return self._map(Tensor.pin_memory)

    def with_dtype(self, dtype: torch.dtype) -> GraphBatch:
        """Floating tensors (features, coordinates, targets) cast to ``dtype``."""
        return self._map(lambda t: t.to(dtype) if t.is_floating_point() else t)

    def positions(self, who: str) -> Tensor:
        """Coordinates, or a clear error naming the module that needs them."""
        if self.pos is None:
            raise ValueError(
                f"{who} needs node coordinates, but this batch has none: use a featurizer "
                "that provides them (for molecules: conformer=true)"
            )
        return self.pos

    @classmethod
    def from_dgl(cls, graph: DGLGraph, y: Tensor | None = None) -> GraphBatch:
        """Convert a (batched) DGLGraph; ``y`` is ``[G, T]`` with NaN for missing labels."""
        src, dst = graph.edges()
        counts = graph.batch_num_nodes()
        num_graphs = counts.shape[0]
        y_mask = None
        if y is not None:
            y_mask = ~torch.isnan(y)
            y = torch.where(y_mask, y, torch.zeros_like(y))
        return cls(
            x=graph.ndata[NODE_FEATURES],
            src=src.long(),
            dst=dst.long(),
            edge_attr=graph.edata[EDGE_FEATURES],
            batch=torch.repeat_interleave(torch.arange(num_graphs), counts),
            num_graphs=num_graphs,
            y=y,
            y_mask=y_mask,
            **{f.name: graph.ndata.get(f.ndata) for f in OPTIONAL_NODE_FIELDS if f.ndata},
        )


def collate(graphs: Sequence[DGLGraph], y: Tensor | None = None) -> GraphBatch:
    """``dgl.batch`` the graphs on CPU and convert to a GraphBatch."""
    return GraphBatch.from_dgl(dgl.batch(list(graphs)), y)
