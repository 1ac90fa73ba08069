"""What every featurizer offers (:class:`Featurizer`), and what each derives from its
``encode`` (:class:`GraphFeaturizer`: packed graphs and single DGL graphs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from molgraph.arrays import GraphArrays
from molgraph.errors import FeaturizationError
from molgraph.graphs import DGLGraph
from molgraph.packed import PackedGraphs


@runtime_checkable
class Featurizer(Protocol):
    """The featurizer contract: inputs → graphs, with the widths the model is built from.

    Attributes
    ----------
    node_dim, edge_dim
        Columns of the node features ``x`` and edge features ``edge_attr``.
    node_vector_dim
        Channels of the node vectors ``[N, C, 3]`` (0 where there are none).
    has_coordinates
        Whether graphs carry node positions ``pos`` (Å).
    """

    @property
    def node_dim(self) -> int: ...

    @property
    def edge_dim(self) -> int: ...

    @property
    def node_vector_dim(self) -> int: ...

    @property
    def has_coordinates(self) -> bool: ...

    def encode(self, items: Iterable[Any]) -> tuple[GraphArrays, list[FeaturizationError | None]]:
        """Featurize many inputs: packed arrays of those that succeeded, and one entry per
        input (None, or the error it raised). Picklable both, for worker processes."""
        ...

    def packed(self, items: Iterable[Any]) -> PackedGraphs:
        """All inputs as PackedGraphs; the first failure raises its FeaturizationError."""
        ...

    def __call__(self, item: Any) -> DGLGraph:
        """One input → DGLGraph."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Complete settings, JSON-serialisable, with a ``kind`` (cache keys, bundles)."""
        ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Featurizer:
        """The featurizer ``to_dict`` described."""
        ...


class GraphFeaturizer:
    """Mixin for featurizers whose ``encode(items)`` returns packed arrays and one error
    (or None) per item: derives :meth:`packed` and :meth:`__call__` from it."""

    def encode(self, items: Iterable[Any]) -> tuple[GraphArrays, list[FeaturizationError | None]]:
        raise NotImplementedError

    def packed(self, items: Iterable[Any]) -> PackedGraphs:
        """All inputs as PackedGraphs; the first failure raises its FeaturizationError."""
        arrays, errors = self.encode(items)
        for error in errors:
            if error is not None:
                raise error
        return PackedGraphs.from_arrays(arrays)

    def __call__(self, item: Any) -> DGLGraph:
        """One input → DGLGraph (``ndata`` x and, where the featurizer gives them, the
        optional node fields that have DGL keys, e.g. pos and vec; ``edata`` e)."""
        return self.packed([item]).to_dgl()
