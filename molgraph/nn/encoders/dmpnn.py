"""Directed message passing neural network (D-MPNN), Yang et al., J. Chem. Inf. Model. 2019.

"Analyzing Learned Molecular Representations for Property Prediction" (chemprop). Hidden
states live on directed bonds; a bond's message gathers the states of the bonds that
enter its source atom, except the one coming back along the same bond, so that messages
never flow straight back to where they came from.

Reverse edges are found by sorting edge keys (:func:`reverse_edges`), not by assuming
molgraph's featurizer layout (bond ``k`` as edges ``2k``, ``2k + 1``): that works for any
edge order and needs only fixed-shape ops, so the encoder can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.base import GraphEncoder, make_dropout
from molgraph.nn.norm import NormKind, apply_norm, make_norm
from molgraph.nn.output import EncoderOutput
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import gather, scatter_sum


def reverse_edges(src: Tensor, dst: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """For each directed edge ``v → w``, the index of the edge ``w → v``.

    Edges are keyed ``src * num_nodes + dst`` and sorted; each edge's reverse key
    ``dst * num_nodes + src`` is then looked up with a binary search. Every op has a
    static output shape (no ``nonzero``, no host sync), whatever the edge order.

    An edge without a reverse (a directed graph) gets its own index and ``False`` in
    ``found``: nothing is excluded from its message. Parallel edges (the same ``v → w``
    twice) are not supported: all of them would exclude the same reverse edge.

    Parameters
    ----------
    src, dst
        ``[E]`` int64 edge endpoints.
    num_nodes
        Number of nodes ``N`` (keys go up to ``N**2``, fine in int64 for any batch).

    Returns
    -------
    rev
        ``[E]`` int64, the reverse edge of each edge (itself where there is none).
    found
        ``[E]`` bool, True where a reverse edge exists.
    """
    num_edges = src.shape[0]
    key = src * num_nodes + dst
    wanted = dst * num_nodes + src
    sorted_key, order = torch.sort(key)
    slot = torch.searchsorted(sorted_key, wanted).clamp_(max=max(num_edges - 1, 0))
    candidate = order[slot]
    found = gather(key, candidate) == wanted
    rev = torch.where(found, candidate, torch.arange(num_edges, device=src.device))
    return rev, found


class DMPNNConv(nn.Module):
    r"""One D-MPNN update of the directed-bond states.

    .. math::
        m^{t+1}_{vw} = \sum_{k \in N(v) \setminus \{w\}} h^t_{kv}
                     = \Big(\sum_{k \in N(v)} h^t_{kv}\Big) - h^t_{wv}, \qquad
        h^{t+1}_{vw} = \mathrm{ReLU}\big(h^0_{vw} + W_m\, m^{t+1}_{vw}\big)

    Edge ``e`` is the directed bond ``v → w`` with ``v = src[e]``, ``w = dst[e]``;
    ``rev[e]`` is ``w → v``, subtracted only where ``keep[e]`` is 1 (see
    :func:`reverse_edges`). :math:`W_m` has no bias, as in chemprop.

    Shapes
    ------
    h, h0: ``[E, d]``, src, dst, rev: ``[E]``, keep: ``[E, 1]`` (0/1, h's dtype) →
    ``[E, d]``
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.W_m = nn.Linear(dim, dim, bias=False)

    def message(
        self, h: Tensor, src: Tensor, dst: Tensor, rev: Tensor, keep: Tensor, num_nodes: int
    ) -> Tensor:
        """:math:`m_{vw}`: states entering ``v``, less the one coming back from ``w``."""
        incoming = scatter_sum(h, dst, num_nodes)
        return gather(incoming, src) - gather(h, rev) * keep

    def update(self, m: Tensor, h0: Tensor) -> Tensor:
        r""":math:`h_{vw} = \mathrm{ReLU}(h^0_{vw} + W_m m_{vw})`."""
        return torch.relu(h0 + self.W_m(m))

    def forward(
        self,
        h: Tensor,
        h0: Tensor,
        src: Tensor,
        dst: Tensor,
        rev: Tensor,
        keep: Tensor,
        num_nodes: int,
    ) -> Tensor:
        return self.update(self.message(h, src, dst, rev, keep, num_nodes), h0)


class DMPNNEncoder(GraphEncoder):
    r"""D-MPNN over a GraphBatch: directed-bond states, then atom states and a readout.

    .. math::
        h^0_{vw} = \mathrm{ReLU}(W_i [x_v \,\|\, e_{vw}]), \quad
        h^{t+1}_{vw} = \mathrm{ReLU}(h^0_{vw} + W_m m^{t+1}_{vw})
        \ (t < T), \quad
        m_v = \sum_{k \in N(v)} h^T_{kv}, \quad
        h_v = \mathrm{ReLU}(W_o [x_v \,\|\, m_v])

    with :math:`T` = ``num_layers - 1`` updates (see :class:`DMPNNConv`), one :math:`W_m`
    shared by all of them, and a readout of the atom states (chemprop: their sum over 100). An atom
    without bonds gets :math:`h_v = \mathrm{ReLU}(W_o [x_v \,\|\, 0])`.

    Follows the paper's equations, which differ from chemprop's code in one place:
    chemprop adds the *pre-activation* :math:`W_i [x_v \| e_{vw}]` in each update, the
    paper (and this class) the activated :math:`h^0_{vw}`. As in chemprop, :math:`W_i`
    and :math:`W_m` have no bias, dropout follows each update and the atom output.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input widths, taken from the featurizer.
    hidden_dim
        Width of the bond and atom states.
    num_layers
        chemprop's ``depth``: bond-state layers :math:`h^0 \dots h^T`, so ``num_layers -
        1`` message-passing updates; an atom state then sees bonds up to ``num_layers``
        hops away. At least 1.
    dropout
        Dropout after each update and on the atom states.
    readout
        ``norm`` (the sum over 100, chemprop's default), ``sum``, ``mean``, ``max``,
        ``attention`` or ``set2set``.
    norm
        ``none`` (chemprop), ``batch`` or ``layer`` on the atom states, before the ReLU.

    D-MPNN has no ``residual`` option: the :math:`h^0` term in every update is its skip
    connection.
    """

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 300,
        num_layers: int = 3,
        dropout: float = 0.0,
        readout: ReadoutKind = "norm",
        norm: NormKind = "none",
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers (chemprop's depth) must be >= 1, got {num_layers}")
        super().__init__(readout, hidden_dim)
        self.num_layers = num_layers
        self.W_i = nn.Linear(in_node_dim + in_edge_dim, hidden_dim, bias=False)
        self.conv = DMPNNConv(hidden_dim)
        self.W_o = nn.Linear(in_node_dim + hidden_dim, hidden_dim)
        self.norm = make_norm(norm, hidden_dim)
        self.dropout = make_dropout(dropout)

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        x, src, dst, num_nodes = batch.x, batch.src, batch.dst, batch.num_nodes
        rev, found = reverse_edges(src, dst, num_nodes)
        keep = found.unsqueeze(-1).to(x.dtype)
        h0 = torch.relu(self.W_i(torch.cat([gather(x, src), batch.edge_attr], dim=-1)))
        h = h0
        for _ in range(self.num_layers - 1):
            h = self.dropout(self.conv(h, h0, src, dst, rev, keep, num_nodes))
        m = scatter_sum(h, dst, num_nodes)
        node = self.W_o(torch.cat([x, m], dim=-1))
        node = self.dropout(torch.relu(apply_norm(self.norm, node, batch.node_mask)))
        return self.output(node, batch)
