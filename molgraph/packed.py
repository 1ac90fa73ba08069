"""PackedGraphs: many small graphs stored as one, sliced into batches without Python loops.

All node features, edge endpoints and edge features are concatenated; per-graph node and
edge counts give the offsets. Edge endpoints are stored *local* to their graph, so any
subset of graphs becomes a batch by a few gathers and one addition. Counts and offsets
stay on the CPU (they plan each batch); the feature tensors may live on the GPU, where
batches are then formed without copying graph data across.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from molgraph.arrays import GraphArrays
from molgraph.batch import NODE_FIELD_NAMES, OPTIONAL_NODE_FIELDS, GraphBatch, NodeField
from molgraph.graphs import EDGE_FEATURES, NODE_FEATURES, DGLGraph, dgl

_NODE_COUNTS, _EDGE_COUNTS = "_node_counts", "_edge_counts"


@dataclass(frozen=True)
class Padding:
    """Fixed batch sizes, so that one captured CUDA graph serves many batches.

    Node and edge counts are rounded up to multiples (with at least one padding node),
    and the graph count is fixed at ``graphs`` (the last graph holds the padding nodes,
    whose features are zero; padding edges are self-loops spread over them; the labels of
    the padding graphs are missing).
    """

    graphs: int
    node_multiple: int = 512
    edge_multiple: int = 1024

    def sizes(self, num_nodes: int, num_edges: int, num_graphs: int) -> tuple[int, int, int]:
        if num_graphs >= self.graphs:
            raise ValueError(f"{num_graphs} graphs do not fit a padding of {self.graphs}")
        nodes = -(-(num_nodes + 1) // self.node_multiple) * self.node_multiple
        edges = -(-max(num_edges, 1) // self.edge_multiple) * self.edge_multiple
        return nodes, edges, self.graphs


def batch_labels(y: Tensor, graph_index: Tensor, num_graphs: int) -> tuple[Tensor, Tensor]:
    """Labels of the graphs ``graph_index`` as a batch of ``num_graphs`` rows (padding
    graphs get missing labels): ``(y with 0 where missing, mask True where present)``."""
    y = F.pad(y[graph_index], (0, 0, 0, num_graphs - len(graph_index)), value=float("nan"))
    return torch.nan_to_num(y, nan=0.0), ~torch.isnan(y)


def _in_ndata(node_field: NodeField, g: DGLGraph) -> bool:
    return node_field.ndata is not None and node_field.ndata in g.ndata


def _exclusive_cumsum(counts: Tensor) -> Tensor:
    return torch.cumsum(counts, 0) - counts


@dataclass(frozen=True)
class PackedGraphs:
    """A collection of graphs in packed form.

    Shapes
    ------
    x: ``[N, node_dim]``; src, dst: ``[E]`` int64, node index within its own graph;
    edge_attr: ``[E, edge_dim]``; pos: ``[N, 3]`` or None; node_vectors: ``[N, C, 3]`` or
    None; node_embeddings: ``[N, D]`` (per-residue ESM embeddings, attached after loading,
    never saved) or None; node_counts, edge_counts: ``[G]`` int64 on CPU.
    """

    x: Tensor
    src: Tensor
    dst: Tensor
    edge_attr: Tensor
    node_counts: Tensor
    edge_counts: Tensor
    pos: Tensor | None = None
    node_vectors: Tensor | None = None
    node_embeddings: Tensor | None = None
    node_offsets: Tensor = field(init=False, repr=False)
    edge_offsets: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_offsets", _exclusive_cumsum(self.node_counts))
        object.__setattr__(self, "edge_offsets", _exclusive_cumsum(self.edge_counts))

    def __len__(self) -> int:
        return self.node_counts.shape[0]

    @property
    def node_dim(self) -> int:
        return self.x.shape[1]

    @property
    def edge_dim(self) -> int:
        return self.edge_attr.shape[1]

    @property
    def device(self) -> torch.device:
        return self.x.device

    @classmethod
    def from_arrays(cls, arrays: GraphArrays) -> PackedGraphs:
        """From a featurizer's arrays (tensors share their memory where contiguous)."""
        t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        return cls(**t)

    def to_arrays(self) -> GraphArrays:
        """As numpy arrays (on the CPU)."""
        return GraphArrays(
            **{
                f.name: getattr(self, f.name).cpu().numpy()
                for f in fields(self)
                if f.init and getattr(self, f.name) is not None
            }
        )

    @classmethod
    def concat(cls, parts: Sequence[PackedGraphs]) -> PackedGraphs:
        if not parts:
            raise ValueError("no graphs to concatenate")
        for node_field in OPTIONAL_NODE_FIELDS:
            if len({getattr(p, node_field.name) is not None for p in parts}) > 1:
                raise ValueError(f"cannot concatenate graphs with and without {node_field.what}")
        return cls(
            **{
                f.name: torch.cat([getattr(p, f.name) for p in parts])
                for f in fields(cls)
                if f.init and getattr(parts[0], f.name) is not None
            }
        )

    def to(self, device: torch.device | str) -> PackedGraphs:
        """Feature tensors moved to ``device``; counts stay on the CPU."""
        moved = {
            name: getattr(self, name).to(device)
            for name in ("x", "src", "dst", "edge_attr", *NODE_FIELD_NAMES)
            if getattr(self, name) is not None
        }
        return replace(self, **moved)

    def _plan(self, indices: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Gather indices of the nodes and edges of graphs ``indices`` (CPU)."""
        node_counts, edge_counts = self.node_counts[indices], self.edge_counts[indices]
        num_nodes, num_edges = int(node_counts.sum()), int(edge_counts.sum())
        new_node_offsets = _exclusive_cumsum(node_counts)
        node_index = torch.arange(num_nodes) + torch.repeat_interleave(
            self.node_offsets[indices] - new_node_offsets, node_counts, output_size=num_nodes
        )
        edge_index = torch.arange(num_edges) + torch.repeat_interleave(
            self.edge_offsets[indices] - _exclusive_cumsum(edge_counts),
            edge_counts,
            output_size=num_edges,
        )
        edge_base = torch.repeat_interleave(new_node_offsets, edge_counts, output_size=num_edges)
        graph_of_node = torch.repeat_interleave(
            torch.arange(len(indices)), node_counts, output_size=num_nodes
        )
        return node_index, edge_index, edge_base, graph_of_node

    def batch(
        self,
        indices: Tensor | Sequence[int],
        y: Tensor | None = None,
        padding: Padding | None = None,
    ) -> GraphBatch:
        """The graphs ``indices`` as one GraphBatch on this collection's device.

        ``y`` is ``[len(self), T]`` with NaN for missing labels, on the same device.
        The batch is planned on the CPU and sent in one copy, so no GPU sync is needed.
        With ``padding``, the batch is padded to fixed sizes (see :class:`Padding`).
        """
        indices = torch.as_tensor(indices, dtype=torch.long).cpu()
        node_index, edge_index, edge_base, graph_of_node = self._plan(indices)
        num_nodes, num_edges, num_graphs = len(node_index), len(edge_index), len(indices)
        if padding is not None:
            num_nodes, num_edges, num_graphs = padding.sizes(num_nodes, num_edges, num_graphs)
            # padding nodes form the last graph; padding edges are loops on the last node
            graph_of_node = F.pad(
                graph_of_node, (0, num_nodes - len(node_index)), value=num_graphs - 1
            )
        plan = [node_index, edge_index, edge_base, graph_of_node, indices]
        flat = torch.cat(plan)
        if self.device.type == "cuda":
            flat = flat.pin_memory().to(self.device, non_blocking=True)
        node_index, edge_index, edge_base, graph_of_node, graph_index = flat.split(
            [len(p) for p in plan]
        )
        x, node_fields = self.x[node_index], self._node_fields(node_index)
        src, dst = self.src[edge_index] + edge_base, self.dst[edge_index] + edge_base
        edge_attr, node_mask = self.edge_attr[edge_index], None
        y_mask = None
        if y is not None:
            y, y_mask = batch_labels(y, graph_index, num_graphs)
        if padding is not None:
            n_pad, e_pad = num_nodes - len(node_index), num_edges - len(edge_index)
            node_mask = F.pad(torch.ones_like(node_index, dtype=torch.bool), (0, n_pad))
            x, edge_attr = F.pad(x, (0, 0, 0, n_pad)), F.pad(edge_attr, (0, 0, 0, e_pad))
            node_fields = {
                name: F.pad(t, (0, 0) * (t.ndim - 1) + (0, n_pad))
                for name, t in node_fields.items()
            }
            # padding edges are loops spread round-robin over the padding nodes, so no
            # node sums messages from many of them
            first_pad = len(node_index)
            loops = first_pad + torch.arange(e_pad, device=src.device) % (num_nodes - first_pad)
            src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
        return GraphBatch(
            x=x,
            src=src,
            dst=dst,
            edge_attr=edge_attr,
            batch=graph_of_node,
            num_graphs=num_graphs,
            y=y,
            y_mask=y_mask,
            node_mask=node_mask,
            **node_fields,
        )

    def _node_fields(self, node_index: Tensor) -> dict[str, Tensor]:
        """The optional per-node fields this collection has, at ``node_index``."""
        return {
            name: tensor[node_index]
            for name in NODE_FIELD_NAMES
            if (tensor := getattr(self, name)) is not None
        }

    def subset(self, indices: Tensor | Sequence[int]) -> PackedGraphs:
        """A new collection holding graphs ``indices`` in that order."""
        indices = torch.as_tensor(indices, dtype=torch.long).cpu()
        node_index, edge_index, _, _ = self._plan(indices)
        dev = self.device
        node_index, edge_index = node_index.to(dev), edge_index.to(dev)
        return PackedGraphs(
            x=self.x[node_index],
            src=self.src[edge_index],
            dst=self.dst[edge_index],
            edge_attr=self.edge_attr[edge_index],
            node_counts=self.node_counts[indices],
            edge_counts=self.edge_counts[indices],
            **self._node_fields(node_index),
        )

    # DGL views -----------------------------------------------------------------------

    def to_dgl(self) -> DGLGraph:
        """All graphs as one batched DGLGraph (``dgl.unbatch`` gives them back)."""
        base = torch.repeat_interleave(self.node_offsets, self.edge_counts).to(self.device)
        g = dgl.graph((self.src + base, self.dst + base), num_nodes=self.x.shape[0])
        g.ndata[NODE_FEATURES] = self.x
        g.edata[EDGE_FEATURES] = self.edge_attr
        for node_field in OPTIONAL_NODE_FIELDS:
            tensor = getattr(self, node_field.name)
            if node_field.ndata is not None and tensor is not None:
                g.ndata[node_field.ndata] = tensor
        g.set_batch_num_nodes(self.node_counts)
        g.set_batch_num_edges(self.edge_counts)
        return g

    @classmethod
    def from_dgl(cls, g: DGLGraph) -> PackedGraphs:
        node_counts, edge_counts = g.batch_num_nodes().long(), g.batch_num_edges().long()
        src, dst = g.edges()
        base = torch.repeat_interleave(_exclusive_cumsum(node_counts), edge_counts)
        return cls(
            x=g.ndata[NODE_FEATURES],
            src=src.long() - base,
            dst=dst.long() - base,
            edge_attr=g.edata[EDGE_FEATURES],
            node_counts=node_counts,
            edge_counts=edge_counts,
            **{f.name: g.ndata[f.ndata] for f in OPTIONAL_NODE_FIELDS if _in_ndata(f, g)},
        )

    def graph(self, i: int) -> DGLGraph:
        """Graph ``i`` alone as a DGLGraph."""
        return self.subset([i]).to_dgl()

    def save(self, path: Path, labels: dict[str, Tensor] | None = None) -> None:
        """One file via ``dgl.save_graphs``: the batched graph, its per-graph node and
        edge counts, and ``labels`` tensors (one read loads everything back)."""
        counts = {_NODE_COUNTS: self.node_counts, _EDGE_COUNTS: self.edge_counts}
        dgl.save_graphs(str(path), [self.to_dgl()], {**(labels or {}), **counts})

    @classmethod
    def load(cls, path: Path) -> tuple[PackedGraphs, dict[str, Tensor]]:
        graphs, labels = dgl.load_graphs(str(path))
        g = graphs[0]
        g.set_batch_num_nodes(labels.pop(_NODE_COUNTS))
        g.set_batch_num_edges(labels.pop(_EDGE_COUNTS))
        return cls.from_dgl(g), labels
