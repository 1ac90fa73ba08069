"""EGNN: E(n)-equivariant graph neural network, Satorras, Hoogeboom & Welling, ICML 2021
("E(n) Equivariant Graph Neural Networks"), after the authors' reference code
(github.com/vgsatorras/egnn, ``egnn_clean.py``).

Node states are invariant to rotations, reflections and translations of the input
coordinates; the updated coordinates are equivariant (they rotate, reflect and translate
with the input). A mirror image is therefore seen as the same molecule: the model tells
enantiomers apart only through its input features (e.g. RDKit's chiral tags).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.geometry import edge_vectors, unit
from molgraph.nn.encoders.base import StackedEncoder
from molgraph.nn.norm import NormKind
from molgraph.nn.output import EncoderOutput
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import gather, scatter_mean, scatter_sum

CoordsAggregation = Literal["mean", "sum"]


class EGNNLayer(nn.Module):
    r"""One equivariant graph convolutional layer (E-GCL), equations (3)-(6) of the paper.

    For every edge :math:`j \to i` and node :math:`i`:

    .. math::
        m_{ij} &= \phi_e\big(h_i, h_j, \lVert x_i - x_j \rVert^2, e_{ij}\big) \\
        x_i' &= x_i + C_i \sum_{j \to i} (x_i - x_j)\, \phi_x(m_{ij}) \\
        m_i &= \sum_{j \to i} m_{ij} \\
        h_i' &= \phi_h(h_i, m_i)

    :math:`\phi_e` and :math:`\phi_h` are two-layer MLPs with SiLU, :math:`\phi_x` a
    two-layer MLP to one number whose last layer starts near zero (Xavier gain 0.001, as
    in the reference code) so coordinates move little at first. With ``attention``,
    :math:`m_{ij}` is multiplied by a gate :math:`\sigma(w^\top m_{ij})`.

    :math:`C_i` is ``coords_agg``'s: ``mean`` gives :math:`1 / \deg(i)` (0 for an isolated
    node), the reference code's default; on the paper's fully connected graphs this is the
    paper's :math:`1/(M - 1)`. ``sum`` gives 1.

    Stability options of the reference code: ``tanh`` bounds :math:`\phi_x` to
    :math:`(-r, r)`, :math:`r` = ``coords_range`` (a Tanh ends ``egnn_clean.py``'s
    :math:`\phi_x`; the scale :math:`r` is the EDM code's, Hoogeboom et al. 2022);
    ``normalize`` uses the unit vector :math:`(x_i - x_j) / \lVert x_i - x_j \rVert` in
    the coordinate update (its norm is not detached, unlike the reference code's). The
    element-wise ``clamp(-100, 100)`` of the update in the repository's older
    ``models/gcl.py`` is left out: it is not rotation equivariant once it acts.

    The layer returns :math:`h'` without a residual; the encoder adds it.

    Shapes
    ------
    h: ``[N, d]``, pos: ``[N, 3]``, src, dst: ``[E]``, edge_attr: ``[E, d_e]`` →
    h': ``[N, d]``, pos': ``[N, 3]``
    """

    def __init__(
        self,
        dim: int,
        edge_dim: int,
        attention: bool = False,
        coords_agg: CoordsAggregation = "mean",
        tanh: bool = False,
        coords_range: float = 15.0,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if coords_agg not in ("mean", "sum"):
            raise ValueError(f"unknown coords_agg {coords_agg!r}; choose mean or sum")
        self.coords_agg, self.tanh, self.coords_range = coords_agg, tanh, coords_range
        self.normalize = normalize
        self.edge_mlp = nn.Sequential(
            nn.Linear(2 * dim + 1 + edge_dim, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU()
        )
        self.attention = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid()) if attention else None
        last = nn.Linear(dim, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.coord_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), last)
        self.node_mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def edge_model(
        self, h_i: Tensor, h_j: Tensor, squared_distance: Tensor, edge_attr: Tensor
    ) -> Tensor:
        """Messages :math:`m_{ij}` ``[E, d]`` (equation 3)."""
        m = self.edge_mlp(torch.cat([h_i, h_j, squared_distance.unsqueeze(-1), edge_attr], -1))
        if self.attention is not None:
            m = m * self.attention(m)
        return m

    def coord_model(self, pos: Tensor, diff: Tensor, m: Tensor, dst: Tensor) -> Tensor:
        """Updated coordinates ``[N, 3]`` (equation 4); ``diff`` is :math:`x_i - x_j`."""
        weight = self.coord_mlp(m)
        if self.tanh:
            weight = torch.tanh(weight) * self.coords_range
        if self.normalize:
            diff = unit(diff)
        reduce = scatter_mean if self.coords_agg == "mean" else scatter_sum
        return pos + reduce(diff * weight, dst, pos.shape[0])

    def node_model(self, h: Tensor, m: Tensor, dst: Tensor) -> Tensor:
        """Updated node states ``[N, d]`` (equations 5 and 6)."""
        return self.node_mlp(torch.cat([h, scatter_sum(m, dst, h.shape[0])], -1))

    def forward(
        self, h: Tensor, pos: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor
    ) -> tuple[Tensor, Tensor]:
        diff, dist = edge_vectors(pos, src, dst)
        m = self.edge_model(gather(h, dst), gather(h, src), dist.square(), edge_attr)
        return self.node_model(h, m, dst), self.coord_model(pos, diff, m, dst)


class EGNNEncoder(StackedEncoder):
    """Stack of EGNN layers over a GraphBatch with coordinates.

    Message passing runs over the batch's edges (for molecules from molgraph's
    featurizer: the bonds); no radius or fully connected graph is built here.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input widths, taken from the featurizer.
    hidden_dim, num_layers, dropout
        Width, depth and dropout on each layer's node update.
    readout
        ``sum``, ``mean``, ``max``, ``attention`` (gated) or ``set2set``.
    residual
        Add each layer's input node states to its output (the reference code's default).
    norm
        ``batch``, ``layer`` or ``none`` on each layer's node update (invariant features,
        so any normalisation keeps the symmetry).
    attention, coords_agg, tanh, coords_range, normalize
        Passed to every :class:`EGNNLayer`.

    Returns an :class:`EncoderOutput` whose ``node`` and ``graph`` are E(3)-invariant and
    whose ``pos`` (``[N, 3]``, Å) holds the last layer's equivariant coordinates.
    """

    requires_positions = True

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 128,
        num_layers: int = 4,
        dropout: float = 0.0,
        readout: ReadoutKind = "sum",
        residual: bool = True,
        norm: NormKind = "none",
        attention: bool = False,
        coords_agg: CoordsAggregation = "mean",
        tanh: bool = False,
        coords_range: float = 15.0,
        normalize: bool = False,
    ) -> None:
        super().__init__(readout, hidden_dim)
        self.residual = [residual] * num_layers
        self.node_proj = nn.Linear(in_node_dim, hidden_dim)
        layers = (
            EGNNLayer(hidden_dim, in_edge_dim, attention, coords_agg, tanh, coords_range, normalize)
            for _ in range(num_layers)
        )
        self.add_layers(layers, hidden_dim, norm, dropout, activation=None)

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        # the shared loop, with the coordinates each layer moves carried along
        pos = batch.positions(type(self).__name__)
        h = self.node_proj(batch.x)
        for i, layer in enumerate(self.layers):
            update, pos = layer(h, pos, batch.src, batch.dst, batch.edge_attr)
            h = self.finish(i, h, update, batch)
        return self.output(h, batch, pos)
