"""VariantGraphs: many sequence variants of one structure, stored as one graph.

A mutational scan measures thousands of variants of one protein. Each variant's graph is
the wild-type geometry with its residue types substituted (LM-GVP's approach), so only
the residue types differ between graphs: they are stored as a ``[V, R]`` matrix beside
one packed wild-type graph, and a batch tiles the wild-type graph and writes each
variant's one-hot residue columns. (avGFP: 54k variants x 237 residues x 30 neighbours
would take tens of GB as separate graphs; stored this way, 13 MB.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from molgraph.batch import GraphBatch
from molgraph.errors import ConfigError
from molgraph.packed import PackedGraphs, Padding, batch_labels


@dataclass(frozen=True)
class VariantGraphs:
    """Variants of one protein graph, batched like :class:`PackedGraphs`.

    Parameters
    ----------
    wild_type
        The wild-type graph (one graph of ``R`` nodes, with coordinates and node vectors
        where the featurizer gives them).
    residue_types
        ``[V, R]`` integer residue type of every node of every variant (index into the
        featurizer's residue one-hot, e.g. 20 = unknown).
    type_columns
        ``(start, stop)``: the columns of ``x`` that hold the residue one-hot.
    embeddings
        ``[V, R, D]`` per-residue language-model embeddings of every variant, or None;
        batches carry them as ``node_embeddings``.
    """

    wild_type: PackedGraphs
    residue_types: Tensor
    type_columns: tuple[int, int]
    embeddings: Tensor | None = None

    def __post_init__(self) -> None:
        start, stop = self.type_columns
        object.__setattr__(self, "type_columns", (int(start), int(stop)))
        if len(self.wild_type) != 1:
            raise ConfigError(f"VariantGraphs needs one wild-type graph, got {len(self.wild_type)}")
        nodes = int(self.wild_type.node_counts[0])
        if self.residue_types.ndim != 2 or self.residue_types.shape[1] != nodes:
            raise ConfigError(
                f"residue types of shape {tuple(self.residue_types.shape)} do not match "
                f"the wild type's {nodes} residues"
            )
        if not 0 <= start < stop <= self.wild_type.node_dim:
            raise ConfigError(f"type columns {self.type_columns} outside x's {self.node_dim}")
        if self.embeddings is not None and self.embeddings.shape[:2] != self.residue_types.shape:
            raise ConfigError(
                f"embeddings of shape {tuple(self.embeddings.shape)} do not match "
                f"{len(self)} variants of {nodes} residues"
            )

    def __len__(self) -> int:
        return self.residue_types.shape[0]

    @property
    def num_residues(self) -> int:
        return self.residue_types.shape[1]

    @property
    def node_dim(self) -> int:
        return self.wild_type.node_dim

    @property
    def edge_dim(self) -> int:
        return self.wild_type.edge_dim

    @property
    def device(self) -> torch.device:
        return self.wild_type.device

    def to(self, device: torch.device | str) -> VariantGraphs:
        return replace(
            self,
            wild_type=self.wild_type.to(device),
            residue_types=self.residue_types.to(device),
            embeddings=None if self.embeddings is None else self.embeddings.to(device),
        )

    def batch(
        self,
        indices: Tensor | Sequence[int],
        y: Tensor | None = None,
        padding: Padding | None = None,
    ) -> GraphBatch:
        """Variants ``indices`` as one GraphBatch, exactly as :meth:`PackedGraphs.batch`
        would give them had each variant been featurized as a graph of its own.

        ``y`` is ``[len(self), T]`` with NaN for missing labels, on this device.
        """
        indices = torch.as_tensor(indices, dtype=torch.long).cpu()
        n = len(indices)
        tiled = self.wild_type.batch(torch.zeros(n, dtype=torch.long), None, padding)
        on_device = indices.to(self.device, non_blocking=True)
        start, stop = self.type_columns
        types = self.residue_types[on_device].long().reshape(-1)
        x = tiled.x  # a fresh tensor (gathered), so writing into it is safe
        # padding nodes follow the n * R variant nodes and keep zero features
        x[: n * self.num_residues, start:stop] = F.one_hot(types, stop - start).to(x.dtype)
        y_mask, embeddings = None, None
        if y is not None:
            y, y_mask = batch_labels(y, on_device.to(y.device), tiled.num_graphs)
        if self.embeddings is not None:
            embeddings = self.embeddings[on_device].flatten(0, 1)
            embeddings = F.pad(embeddings, (0, 0, 0, x.shape[0] - embeddings.shape[0]))
        return replace(tiled, x=x, y=y, y_mask=y_mask, node_embeddings=embeddings)
