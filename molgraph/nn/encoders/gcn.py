r"""Graph convolutional network (GCN), Kipf & Welling, ICLR 2017.

"Semi-Supervised Classification with Graph Convolutional Networks" (arXiv:1609.02907):
each layer averages the neighbourhood (self included) with the symmetric normalisation
:math:`\hat D^{-1/2} \hat A \hat D^{-1/2}`, :math:`\hat A = A + I`, then applies one
linear map. The paper's model has no edge features, and neither does this one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.base import StackedEncoder
from molgraph.nn.norm import NormKind
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import count, gather, scatter_sum


def gcn_norm(dst: Tensor, num_nodes: int, like: Tensor) -> Tensor:
    r"""Inverse square roots of the self-loop-augmented degrees.

    .. math::
        \hat d_i^{-1/2} = \Big(1 + \sum_{j \to i} 1\Big)^{-1/2}

    The degree counts the edges arriving at each node (each bond of a molecule is two
    directed edges, so this is the number of bonds) plus the added self-loop, so it is
    never zero and isolated nodes keep their own state.

    Shapes
    ------
    dst: ``[E]`` → ``[N]`` in ``like``'s dtype and device
    """
    return (count(dst, num_nodes, like) + 1).rsqrt()


class GCNConv(nn.Module):
    r"""One graph convolution (Kipf & Welling, 2017, eq. 2).

    .. math::
        H' = \hat D^{-1/2} (A + I) \hat D^{-1/2} H W + b, \qquad
        h_i' = \sum_{j \in \mathcal{N}(i) \cup \{i\}}
               \frac{1}{\sqrt{\hat d_i \hat d_j}} W^\top h_j + b

    with :math:`\hat d_i = 1 + \deg(i)`. The nonlinearity of the paper's
    :math:`\sigma(\cdot)` is left to the encoder.

    Shapes
    ------
    h: ``[N, d_in]``, src, dst: ``[E]`` → ``[N, d_out]``
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None

    def propagate(self, hw: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        r""":math:`\hat D^{-1/2} (A + I) \hat D^{-1/2}` applied to ``hw`` ``[N, d]``."""
        num_nodes = hw.shape[0]
        norm = gcn_norm(dst, num_nodes, hw).unsqueeze(1)
        scaled = hw * norm  # D^-1/2 H W: the source side of the normalisation
        # neighbours plus the self-loop, then the destination side
        return norm * (scatter_sum(gather(scaled, src), dst, num_nodes) + scaled)

    def forward(self, h: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        out = self.propagate(self.weight(h), src, dst)
        return out if self.bias is None else out + self.bias


class GCNEncoder(StackedEncoder):
    """Stack of GCN layers over a GraphBatch, with normalisation, residuals and a readout.

    The first layer reads the input features directly (as in the paper, no embedding
    layer); with ``residual=False``, ``norm="none"`` and ``dropout=0`` the node states are
    exactly the paper's model, ReLU between layers and none after the last.

    Parameters
    ----------
    in_node_dim
        Input node width, taken from the featurizer.
    in_edge_dim
        Input edge width; accepted so every encoder builds from the same arguments, and
        ignored: GCN's propagation rule has no edge features.
    hidden_dim, num_layers, dropout
        Width, depth and dropout after each layer.
    readout
        ``sum``, ``mean``, ``max``, ``attention`` (gated) or ``set2set``.
    residual
        Add each layer's input to its output (layers 2 onwards, where widths match; also
        the first when ``in_node_dim == hidden_dim``).
    norm
        ``batch``, ``layer`` or ``none`` after each layer.
    """

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 300,
        num_layers: int = 5,
        dropout: float = 0.0,
        readout: ReadoutKind = "mean",
        residual: bool = True,
        norm: NormKind = "batch",
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        del in_edge_dim  # GCN has no edge features (see the docstring)
        super().__init__(readout, hidden_dim)
        widths = [in_node_dim] + [hidden_dim] * num_layers
        layers = (GCNConv(widths[i], hidden_dim) for i in range(num_layers))
        self.add_layers(layers, hidden_dim, norm, dropout)
        self.residual = [residual and widths[i] == hidden_dim for i in range(num_layers)]

    def layer(self, i: int, h: Tensor, batch: GraphBatch) -> Tensor:
        return self.layers[i](h, batch.src, batch.dst)
