"""Readouts: node states → one vector per graph."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from molgraph.nn.scatter import gather, scatter_max, scatter_mean, scatter_sum, segment_softmax

ReadoutKind = Literal["sum", "norm", "mean", "max", "attention", "set2set"]
#: ``norm``: the sum over 100, chemprop's default aggregation (size-aware like ``sum``,
#: at the scale of ``mean`` for drug-sized molecules)
NORM = 100.0
_REDUCE = {
    "sum": scatter_sum,
    "norm": lambda h, batch, num_graphs: scatter_sum(h, batch, num_graphs) / NORM,
    "mean": scatter_mean,
    "max": scatter_max,
}


def readout_width(kind: ReadoutKind, dim: int) -> int:
    """Width of the graph vector that readout ``kind`` makes of ``dim``-wide node states."""
    return 2 * dim if kind == "set2set" else dim


class GatedAttentionReadout(nn.Module):
    r"""Gated attention pooling (Li et al., 2016, gated graph neural networks).

    .. math::
        a_i = \mathrm{softmax}_{i \in G}(w^\top h_i), \quad
        h_G = \sum_{i \in G} a_i \, W h_i
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, 1)
        self.value = nn.Linear(dim, dim)

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        weights = segment_softmax(self.gate(h), batch, num_graphs)
        return scatter_sum(weights * self.value(h), batch, num_graphs)


class Set2Set(nn.Module):
    r"""Set2Set pooling (Vinyals et al., 2016), ``steps`` rounds of LSTM-driven attention.

    .. math::
        q_t = \mathrm{LSTM}(q^*_{t-1}), \quad a_i = \mathrm{softmax}_{i \in G}(h_i^\top q_t),
        \quad r_t = \sum_i a_i h_i, \quad q^*_t = [q_t \,\|\, r_t]

    Output width is ``2 * dim``.
    """

    def __init__(self, dim: int, steps: int = 3) -> None:
        super().__init__()
        self.dim, self.steps = dim, steps
        self.lstm = nn.LSTM(2 * dim, dim)

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        state = (h.new_zeros(1, num_graphs, self.dim), h.new_zeros(1, num_graphs, self.dim))
        q_star = h.new_zeros(num_graphs, 2 * self.dim)
        for _ in range(self.steps):
            q, state = self.lstm(q_star.unsqueeze(0), state)
            q = q.squeeze(0)
            scores = (h * gather(q, batch)).sum(-1, keepdim=True)
            weights = segment_softmax(scores, batch, num_graphs)
            q_star = torch.cat([q, scatter_sum(weights * h, batch, num_graphs)], dim=-1)
        return q_star


class Readout(nn.Module):
    """Permutation-invariant pooling of node states per graph.

    ``sum``, ``norm`` (sum / 100), ``mean`` and ``max`` have no parameters; ``attention`` (gated) and
    ``set2set`` need ``dim``. ``out_dim`` is ``dim`` except for Set2Set (``2 * dim``).

    Shapes
    ------
    h: ``[N, d]``, batch: ``[N]`` → ``[num_graphs, out_dim]``
    """

    def __init__(self, kind: ReadoutKind = "sum", dim: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.pool: nn.Module | None = None
        if kind == "attention" or kind == "set2set":
            if dim is None:
                raise ValueError(f"readout {kind!r} needs the node state width (dim)")
            self.pool = GatedAttentionReadout(dim) if kind == "attention" else Set2Set(dim)
        elif kind not in _REDUCE:
            choices = ", ".join([*_REDUCE, "attention", "set2set"])
            raise ValueError(f"unknown readout {kind!r}; choose from {choices}")
        self.out_dim = None if dim is None else readout_width(kind, dim)

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        if self.pool is not None:
            return self.pool(h, batch, num_graphs)
        return _REDUCE[self.kind](h, batch, num_graphs)

    def extra_repr(self) -> str:
        return self.kind
