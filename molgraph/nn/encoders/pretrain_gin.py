"""The GIN of Hu et al., ICLR 2020 ("Strategies for Pre-training GNNs"), as published.

This is the network of their pre-trained checkpoints (DGL-LifeSci's ``gin_supervised_*``),
operation for operation, so those weights load into it (see
:mod:`molgraph.pretrained.dgllife`). It differs from :class:`GINEncoder` (GINE): messages
are not passed through a ReLU, every node also receives a self-loop message with its own
learned edge embedding, inputs are embedded without bias, there is no residual, and the
node states of all layers can be combined (jumping knowledge).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.base import StackedEncoder
from molgraph.nn.mlp import MLP
from molgraph.nn.norm import NormKind
from molgraph.nn.output import EncoderOutput
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import gather, scatter_sum

JumpingKnowledge = Literal["last", "sum", "max", "concat"]


class PretrainGINConv(nn.Module):
    r"""One GIN layer of Hu et al. (2020).

    .. math::
        h_i' = \mathrm{MLP}\Big(h_i + s + \sum_{j \to i} \big(h_j + W_e e_{ji}\big)\Big)

    where :math:`s` is the learned embedding of the self-loop bond type and
    :math:`W_e e_{ji}` (no bias) sums the embeddings of the bond's categories when
    :math:`e_{ji}` is their one-hot encoding.

    Shapes
    ------
    h: ``[N, d]``, src, dst: ``[E]``, edge_attr: ``[E, d_e]`` → ``[N, d]``
    """

    def __init__(self, dim: int, edge_dim: int) -> None:
        super().__init__()
        self.edge_proj = nn.Linear(edge_dim, dim, bias=False)
        self.self_loop = nn.Parameter(torch.zeros(dim))
        self.mlp = MLP(dim, 2 * dim, dim, num_layers=2)
        nn.init.xavier_uniform_(self.edge_proj.weight)
        nn.init.normal_(self.self_loop, std=0.1)

    def message(self, h: Tensor, src: Tensor, edge_attr: Tensor) -> Tensor:
        return gather(h, src) + self.edge_proj(edge_attr)

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor) -> Tensor:
        aggregated = scatter_sum(self.message(h, src, edge_attr), dst, h.shape[0])
        return self.mlp(aggregated + (h + self.self_loop))


class PretrainGINEncoder(StackedEncoder):
    r"""Hu et al.'s GIN over a GraphBatch: input embedding, GIN layers each followed by
    normalisation, ReLU (not after the last) and dropout, jumping knowledge, readout.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input widths, taken from the featurizer (``pretrain``: 123 and 7).
    hidden_dim, num_layers, dropout
        Width (the checkpoints' 300), depth (5) and dropout after each layer.
    jk
        How the node states of the input embedding and of every layer are combined:
        ``last`` (the checkpoints' choice), ``sum``, ``max`` or ``concat`` (width
        ``hidden_dim * (num_layers + 1)``).
    readout
        ``mean`` (DGL-LifeSci's ``GINPredictor`` default), ``sum``, ``max``, ``attention``
        or ``set2set``.
    norm
        ``batch`` (the checkpoints'), ``layer`` or ``none``.
    """

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 300,
        num_layers: int = 5,
        dropout: float = 0.0,
        jk: JumpingKnowledge = "last",
        readout: ReadoutKind = "mean",
        norm: NormKind = "batch",
    ) -> None:
        if jk not in ("last", "sum", "max", "concat"):
            raise ValueError(f"unknown jk {jk!r}; choose last, sum, max or concat")
        super().__init__(readout, hidden_dim * (num_layers + 1) if jk == "concat" else hidden_dim)
        self.jk = jk
        self.node_proj = nn.Linear(in_node_dim, hidden_dim, bias=False)
        nn.init.xavier_uniform_(self.node_proj.weight)
        layers = (PretrainGINConv(hidden_dim, in_edge_dim) for _ in range(num_layers))
        self.add_layers(layers, hidden_dim, norm, dropout)
        self.residual = [False] * num_layers

    def embed_nodes(self, batch: GraphBatch) -> Tensor:
        return self.node_proj(batch.x)

    def jump(self, states: list[Tensor]) -> Tensor:
        """Jumping knowledge: the node states of the embedding and of every layer,
        ``L + 1`` of ``[N, d]``, combined as ``jk`` says."""
        if self.jk == "concat":
            return torch.cat(states, dim=-1)
        if self.jk == "sum":
            return torch.stack(states).sum(0)
        if self.jk == "max":
            return torch.stack(states).max(0).values
        return states[-1]

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        h = self.embed_nodes(batch)
        states = [h]
        for i in range(len(self.layers)):
            h = self.finish(i, h, self.layer(i, h, batch), batch)
            states.append(h)
        return self.output(self.jump(states), batch)
