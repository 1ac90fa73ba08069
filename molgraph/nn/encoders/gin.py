"""GIN with edge features (GINE), Hu et al., ICLR 2020 ("Strategies for Pre-training GNNs")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.base import StackedEncoder
from molgraph.nn.mlp import MLP
from molgraph.nn.norm import NormKind
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import gather, scatter_sum


class GINEConv(nn.Module):
    r"""One GINE layer.

    .. math::
        h_i' = \mathrm{MLP}\Big((1 + \epsilon)\, h_i
               + \sum_{j \to i} \mathrm{ReLU}\big(h_j + W_e e_{ji}\big)\Big)

    with a learnable :math:`\epsilon` (initialised at 0).

    Shapes
    ------
    h: ``[N, d]``, src, dst: ``[E]``, edge_attr: ``[E, d_e]`` → ``[N, d]``
    """

    def __init__(self, dim: int, edge_dim: int) -> None:
        super().__init__()
        self.edge_proj = nn.Linear(edge_dim, dim)
        self.mlp = MLP(dim, 2 * dim, dim, num_layers=2)
        self.eps = nn.Parameter(torch.zeros(1))

    def message(self, h: Tensor, src: Tensor, edge_attr: Tensor) -> Tensor:
        return torch.relu(gather(h, src) + self.edge_proj(edge_attr))

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor) -> Tensor:
        aggregated = scatter_sum(self.message(h, src, edge_attr), dst, h.shape[0])
        return self.mlp(torch.addcmul(aggregated, h, 1 + self.eps))


class GINEncoder(StackedEncoder):
    r"""Stack of GINE layers over a GraphBatch, with normalisation, residuals and a readout.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input widths, taken from the featurizer.
    hidden_dim, num_layers, dropout
        Width, depth and dropout after each layer.
    readout
        ``sum`` (GIN's choice: keeps graph size information), ``mean``, ``max``,
        ``attention`` (gated) or ``set2set``.
    residual
        Add each layer's input to its output.
    norm
        ``batch``, ``layer`` or ``none`` after each layer.
    virtual_node
        Add a virtual node per graph, connected to every node (GIN+VN of the OGB
        baselines, after Gilmer et al. 2017): before each layer its state is added to
        every node; after each layer but the last it is updated as
        :math:`v \leftarrow v + \mathrm{MLP}(v + \sum_{i \in G} h_i)`.
    """

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 300,
        num_layers: int = 5,
        dropout: float = 0.0,
        readout: ReadoutKind = "sum",
        residual: bool = True,
        norm: NormKind = "batch",
        virtual_node: bool = False,
    ) -> None:
        super().__init__(readout, hidden_dim)
        self.residual = [residual] * num_layers
        self.node_proj = nn.Linear(in_node_dim, hidden_dim)
        layers = (GINEConv(hidden_dim, in_edge_dim) for _ in range(num_layers))
        self.add_layers(layers, hidden_dim, norm, dropout)
        self.virtual_node: nn.Parameter | None = None
        if virtual_node:
            self.virtual_node = nn.Parameter(torch.zeros(hidden_dim))
            self.virtual_mlps = nn.ModuleList(
                MLP(hidden_dim, 2 * hidden_dim, hidden_dim) for _ in range(num_layers - 1)
            )

    def embed_nodes(self, batch: GraphBatch) -> Tensor:
        return self.node_proj(batch.x)

    def run_layers(self, h: Tensor, batch: GraphBatch) -> Tensor:
        """The shared loop, with the virtual node's state carried through it if any."""
        if self.virtual_node is None:
            return super().run_layers(h, batch)
        virtual = self.virtual_node.expand(batch.num_graphs, -1)
        for i in range(len(self.layers)):
            h = h + gather(virtual, batch.batch)
            update = self.layer(i, h, batch)
            if i < len(self.layers) - 1:
                pooled = scatter_sum(h, batch.batch, batch.num_graphs) + virtual
                virtual = virtual + self.dropout(self.virtual_mlps[i](pooled))
            h = self.finish(i, h, update, batch)
        return h
