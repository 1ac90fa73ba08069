r"""GATv2: dynamic graph attention, Brody, Alon & Yahav, ICLR 2022.

"How Attentive are Graph Attention Networks?" (arXiv:2105.14491) moves GAT's attention
vector outside the nonlinearity, :math:`a^\top \mathrm{LeakyReLU}(W [h_i \| h_j])`, so the
ranking of neighbours can depend on the receiving node ("dynamic" attention). Edge
features enter the attention logits as in PyTorch Geometric's ``GATv2Conv(edge_dim=...)``:
a projection :math:`W_e e_{ji}` is added inside the LeakyReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgraph.nn.encoders.base import StackedEncoder
from molgraph.nn.norm import NormKind
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import gather, scatter_mean, scatter_sum, segment_softmax


def add_self_loops(
    src: Tensor, dst: Tensor, edge_attr: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Append one loop ``i → i`` per node, after the ``E`` given edges.

    A loop's features are the mean of the features of the edges arriving at its node
    (PyTorch Geometric's ``fill_value="mean"``), zeros for an isolated node. Loops already
    present are kept (molecular graphs have none; padding edges are loops on a padding
    node), so shapes never depend on the data.

    Shapes
    ------
    src, dst: ``[E]``, edge_attr: ``[E, d_e]`` → ``[E + N]``, ``[E + N]``, ``[E + N, d_e]``
    """
    loops = torch.arange(num_nodes, device=src.device, dtype=src.dtype)
    loop_attr = scatter_mean(edge_attr, dst, num_nodes)
    return (
        torch.cat([src, loops]),
        torch.cat([dst, loops]),
        torch.cat([edge_attr, loop_attr]),
    )


class GATv2Conv(nn.Module):
    r"""One multi-head GATv2 layer with edge features and self-loops.

    For each head :math:`k` (of :math:`K`) and each edge :math:`j \to i`, self-loops
    included:

    .. math::
        e_{ij}^k = a_k^\top \mathrm{LeakyReLU}_{0.2}\big(W_s^k h_j + W_t^k h_i
                   + W_e^k e_{ji}\big), \qquad
        \alpha_{ij}^k = \frac{\exp e_{ij}^k}{\sum_{l \in \mathcal{N}(i) \cup \{i\}}
                        \exp e_{il}^k},

    .. math::
        h_i' = \big\Vert_{k=1}^{K} \sum_{j \in \mathcal{N}(i) \cup \{i\}}
               \alpha_{ij}^k \, W_s^k h_j \; + \; b

    :math:`W [h_i \| h_j \| W_e e]` of the paper is written as the sum of the separate
    projections :math:`W_t h_i + W_s h_j + W_e e` (the same map). Heads are concatenated,
    each of width ``out_dim // heads``. The message is :math:`W_s h_j` as in the paper
    and in PyTorch Geometric; ``edge_messages=True`` adds the edge term,
    :math:`\alpha_{ij}^k (W_s^k h_j + W_e^k e_{ji})`. Self-loop edge features are the
    mean of the node's incoming edge features (:func:`add_self_loops`).

    Parameters
    ----------
    in_dim, out_dim
        Node widths; ``out_dim`` must be divisible by ``heads``.
    edge_dim
        Edge feature width.
    heads
        Number of attention heads.
    negative_slope
        Slope of the LeakyReLU for negative inputs (0.2 in the paper).
    attention_dropout
        Dropout on the normalised attention weights (training only).
    edge_messages
        Add the projected edge features to the messages, not only to the logits.

    Shapes
    ------
    h: ``[N, in_dim]``, src, dst: ``[E]``, edge_attr: ``[E, edge_dim]`` → ``[N, out_dim]``;
    attention weights (:meth:`forward_with_attention`): ``[E + N, heads]``, rows ``E + i``
    for the self-loop of node ``i``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        edge_dim: int,
        heads: int = 4,
        negative_slope: float = 0.2,
        attention_dropout: float = 0.0,
        edge_messages: bool = False,
    ) -> None:
        super().__init__()
        if heads < 1 or out_dim % heads != 0:
            raise ValueError(
                f"GATv2Conv: out_dim ({out_dim}) must be a multiple of heads ({heads}): "
                "heads are concatenated, each of width out_dim // heads"
            )
        self.heads, self.head_dim = heads, out_dim // heads
        self.negative_slope = negative_slope
        self.edge_messages = edge_messages
        self.lin_src = nn.Linear(in_dim, out_dim)
        self.lin_dst = nn.Linear(in_dim, out_dim)
        self.lin_edge = nn.Linear(edge_dim, out_dim, bias=False)
        self.att = nn.Parameter(torch.empty(1, heads, self.head_dim))
        nn.init.xavier_uniform_(self.att)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.attention_dropout = nn.Dropout(attention_dropout)

    def attention(self, x_src: Tensor, x_dst: Tensor, x_edge: Tensor) -> Tensor:
        r"""Logits :math:`e_{ij}^k`: ``[E', K, C]`` gathered projections → ``[E', K]``."""
        z = F.leaky_relu(x_src + x_dst + x_edge, self.negative_slope)
        return (z * self.att).sum(-1)

    def forward_with_attention(
        self, h: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The layer's output and its attention weights (see Shapes)."""
        num_nodes = h.shape[0]
        src, dst, edge_attr = add_self_loops(src, dst, edge_attr, num_nodes)
        shape = (-1, self.heads, self.head_dim)
        x_src = gather(self.lin_src(h).view(shape), src)
        x_dst = gather(self.lin_dst(h).view(shape), dst)
        x_edge = self.lin_edge(edge_attr).view(shape)
        alpha = segment_softmax(self.attention(x_src, x_dst, x_edge), dst, num_nodes)
        message = x_src + x_edge if self.edge_messages else x_src
        weighted = self.attention_dropout(alpha).unsqueeze(-1) * message
        out = scatter_sum(weighted, dst, num_nodes).reshape(num_nodes, -1)
        return out + self.bias, alpha

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor) -> Tensor:
        return self.forward_with_attention(h, src, dst, edge_attr)[0]


class GATEncoder(StackedEncoder):
    """Stack of GATv2 layers over a GraphBatch, with normalisation, residuals and a readout.

    The first layer reads the input features directly; ELU between layers (as in the GAT
    papers), none after the last.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input widths, taken from the featurizer.
    hidden_dim, num_layers, dropout
        Width (divisible by ``heads``), depth and dropout after each layer.
    readout
        ``sum``, ``mean``, ``max``, ``attention`` (gated) or ``set2set``.
    residual
        Add each layer's input to its output (layers 2 onwards, where widths match; also
        the first when ``in_node_dim == hidden_dim``).
    norm
        ``batch``, ``layer`` or ``none`` after each layer.
    heads
        Attention heads per layer, concatenated (``hidden_dim // heads`` wide each).
    attention_dropout
        Dropout on the attention weights.
    edge_messages
        Add the projected edge features to the messages as well as to the attention
        logits (see :class:`GATv2Conv`).
    """

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 256,
        num_layers: int = 5,
        dropout: float = 0.0,
        readout: ReadoutKind = "mean",
        residual: bool = True,
        norm: NormKind = "batch",
        heads: int = 4,
        attention_dropout: float = 0.0,
        edge_messages: bool = False,
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if heads < 1 or hidden_dim % heads != 0:
            raise ValueError(
                f"GATEncoder: hidden_dim ({hidden_dim}) must be a multiple of heads ({heads})"
            )
        super().__init__(readout, hidden_dim)
        widths = [in_node_dim] + [hidden_dim] * num_layers
        layers = (
            GATv2Conv(
                widths[i],
                hidden_dim,
                in_edge_dim,
                heads=heads,
                attention_dropout=attention_dropout,
                edge_messages=edge_messages,
            )
            for i in range(num_layers)
        )
        self.add_layers(layers, hidden_dim, norm, dropout, activation=F.elu)
        self.residual = [residual and widths[i] == hidden_dim for i in range(num_layers)]
