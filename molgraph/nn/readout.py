"""Readouts: node states → one vector per graph."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from molgraph.nn.scatter import scatter_max, scatter_mean, scatter_sum

ReadoutKind = Literal["sum", "mean", "max"]
_REDUCE = {"sum": scatter_sum, "mean": scatter_mean, "max": scatter_max}


class Readout(nn.Module):
    """Permutation-invariant pooling of node states per graph.

    Shapes
    ------
    h: ``[N, d]``, batch: ``[N]`` → ``[num_graphs, d]``
    """

    def __init__(self, kind: ReadoutKind = "sum") -> None:
        super().__init__()
        if kind not in _REDUCE:
            raise ValueError(f"unknown readout {kind!r}; choose from {', '.join(_REDUCE)}")
        self.kind = kind

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        return _REDUCE[self.kind](h, batch, num_graphs)

    def extra_repr(self) -> str:
        return self.kind
