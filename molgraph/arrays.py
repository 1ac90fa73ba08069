"""GraphArrays: what every featurizer's ``encode`` returns, many graphs as numpy arrays.

A leaf module (numpy only). Its optional fields are those declared in
:data:`molgraph.batch.OPTIONAL_NODE_FIELDS` (a test checks it);
:meth:`molgraph.packed.PackedGraphs.from_arrays` turns it into tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class GraphArrays:
    """Graphs packed as numpy arrays, in the layout (and with the field names) of
    :class:`~molgraph.packed.PackedGraphs`.

    All node features, edge endpoints and edge features are concatenated, with per-graph
    node and edge counts. Picklable, so featurizer worker processes can return it. It
    reads like a mapping of its present fields (``arrays["x"]``, ``keys()``, ``items()``,
    ``"pos" in arrays``), as the dicts featurizers returned before it did.

    Shapes
    ------
    x: ``[N, node_dim]`` float; src, dst: ``[E]`` int64, node index within its own graph;
    edge_attr: ``[E, edge_dim]`` float; node_counts, edge_counts: ``[G]`` int64; the
    optional per-node fields (:data:`molgraph.batch.OPTIONAL_NODE_FIELDS`): pos
    ``[N, 3]`` (Å), node_vectors ``[N, C, 3]``, node_embeddings ``[N, D]``, each or None.
    """

    x: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    edge_attr: np.ndarray
    node_counts: np.ndarray
    edge_counts: np.ndarray
    pos: np.ndarray | None = None
    node_vectors: np.ndarray | None = None
    node_embeddings: np.ndarray | None = None

    @property
    def num_graphs(self) -> int:
        return len(self.node_counts)

    def keys(self) -> tuple[str, ...]:
        """Names of the fields present (not None), in field order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)

    def items(self) -> list[tuple[str, np.ndarray]]:
        """``(name, array)`` of the fields present."""
        return [(name, getattr(self, name)) for name in self.keys()]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.keys():
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    @classmethod
    def empty(cls, node_dim: int, edge_dim: int, **node_fields: tuple[int, ...]) -> GraphArrays:
        """Zero graphs: float32 features ``[0, node_dim]`` and ``[0, edge_dim]``, int64
        indices and counts, and each optional node field named in ``node_fields`` as
        float32 ``[0, *shape]`` (e.g. ``pos=(3,)``)."""
        f, i = np.float32, np.int64
        return cls(
            x=np.zeros((0, node_dim), f),
            src=np.zeros(0, i),
            dst=np.zeros(0, i),
            edge_attr=np.zeros((0, edge_dim), f),
            node_counts=np.zeros(0, i),
            edge_counts=np.zeros(0, i),
            **{name: np.zeros((0, *shape), f) for name, shape in node_fields.items()},
        )

    @classmethod
    def concat(cls, parts: Sequence[GraphArrays]) -> GraphArrays:
        """The graphs of ``parts`` in order (each part's fields concatenated).

        Raises
        ------
        ValueError
            No parts, or parts with different optional fields.
        """
        if not parts:
            raise ValueError("no graphs to concatenate")
        names = parts[0].keys()
        for part in parts:
            if part.keys() != names:
                raise ValueError(f"cannot concatenate graphs with fields {names} and {part.keys()}")
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})
