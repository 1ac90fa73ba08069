"""GVP-GNN: geometric vector perceptrons, Jing, Eismann, Suriana, Townshend & Dror, ICLR 2021
("Learning from Protein Structure with Geometric Vector Perceptrons"), with the vector
gating of Jing et al. 2021 ("Equivariant Graph Neural Networks for 3D Macromolecular
Structure"), after the authors' code (github.com/drorlab/gvp-pytorch) as used by LM-GVP
(Wang et al., Sci. Rep. 2022).

Nodes and edges carry a tuple (scalars ``s [n, S]``, vectors ``V [n, C, 3]``): vector
channels first, xyz last, as in the reference code. Scalars are invariant and vectors
equivariant under rotations *and reflections* (vectors are only combined linearly and
through their norms; no cross product appears in the model), so a mirror image gives the
same scalar output: the model tells enantiomers apart only through its input features.

Input features, per edge ``j → i``: scalars = Gaussian RBF of :math:`\\lVert x_i - x_j
\\rVert` (:func:`molgraph.geometry.rbf`) concatenated with the input edge features; one
vector = the unit edge direction :math:`(x_i - x_j) / \\lVert x_i - x_j \\rVert`. Per node:
scalars = the input node features; vectors = ``in_node_vector_dim`` given channels
(``batch.node_vectors``: the protein featurizer's 3 residue vectors; molecules have none)
plus, with ``node_vectors="neighbour_mean"``, the unit vector from the atom to the mean
position of its neighbours (zero for an isolated atom), or nothing with
``node_vectors="none"``.
Message passing runs over the batch's edges (bonds for molecules); no radius graph is
built here.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.geometry import edge_vectors, rbf, safe_norm, unit
from molgraph.nn.encoders.base import GraphEncoder
from molgraph.nn.norm import NormKind, apply_norm, make_norm
from molgraph.nn.output import EncoderOutput
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import gather, scatter_mean

NodeVectors = Literal["none", "neighbour_mean"]
Features = tuple[Tensor, Tensor]  # (scalars [n, S], vectors [n, C, 3])


class GVP(nn.Module):
    r"""Geometric vector perceptron (Algorithm 1 of the paper).

    .. math::
        V_h &= W_h V, \qquad V_\mu = W_\mu V_h \\
        s' &= \sigma\big(W_m [\, s \,\|\, \lVert V_h \rVert_2 \,] + b\big) \\
        V' &= \sigma^+\big(\lVert V_\mu \rVert_2\big) \odot V_\mu
              \quad \text{or, with vector gating,} \quad
              V' = \sigma^+\big(W_g\, \sigma^+(s'_{\mathrm{pre}}) + b_g\big) \odot V_\mu

    :math:`W_h, W_\mu` mix vector channels (no bias, so equivariant); norms are over xyz
    (:func:`molgraph.geometry.safe_norm`: exact, where the reference code clamps the
    squared norm at 1e-8). :math:`\sigma` is ReLU and :math:`\sigma^+` the sigmoid, or
    none (``activations=False``, for a last layer; the gate then reads
    :math:`s'_{\mathrm{pre}}` directly), as in the reference code. Hidden vector channels
    ``h = max(C_in, C_out)``. With no input vector channels the output vectors are zero;
    with no output vector channels only scalars are computed (and zero-channel vectors
    returned).

    Shapes
    ------
    s: ``[n, S_in]``, V: ``[n, C_in, 3]`` → s': ``[n, S_out]``, V': ``[n, C_out, 3]``
    """

    def __init__(
        self,
        in_dims: tuple[int, int],
        out_dims: tuple[int, int],
        activations: bool = True,
        vector_gate: bool = False,
    ) -> None:
        super().__init__()
        (self.si, self.vi), (self.so, self.vo) = in_dims, out_dims
        self.activations, self.vector_gate = activations, vector_gate
        if self.vi:
            self.h_dim = max(self.vi, self.vo)
            self.wh = nn.Linear(self.vi, self.h_dim, bias=False)
            self.ws = nn.Linear(self.h_dim + self.si, self.so)
            if self.vo:
                self.wv = nn.Linear(self.h_dim, self.vo, bias=False)
                if vector_gate:
                    self.wsv = nn.Linear(self.so, self.vo)
        else:
            self.ws = nn.Linear(self.si, self.so)

    def forward(self, s: Tensor, v: Tensor) -> Features:
        if self.vi:
            vh = self.wh(v.transpose(-1, -2))  # [n, 3, h]
            s = self.ws(torch.cat([s, safe_norm(vh, dim=-2)], dim=-1))
            if self.vo:
                v = self.wv(vh).transpose(-1, -2)  # [n, C_out, 3]
                if self.vector_gate:
                    gate = self.wsv(torch.sigmoid(s) if self.activations else s)
                    v = v * torch.sigmoid(gate).unsqueeze(-1)
                elif self.activations:
                    v = v * torch.sigmoid(safe_norm(v, dim=-1, keepdim=True))
        else:
            s = self.ws(s)
        if not self.vo or not self.vi:
            v = s.new_zeros(s.shape[0], self.vo, 3)
        if self.activations:
            s = torch.relu(s)
        return s, v


class GVPLayerNorm(nn.Module):
    r"""Layer norm of a (scalars, vectors) tuple, as in the reference code.

    Scalars go through ``norm`` (:func:`molgraph.nn.norm.make_norm`'s ``layer`` in the
    paper; ``batch`` or ``none`` also accepted). Vectors are divided by their root mean
    square norm over channels, :math:`V / \sqrt{\frac{1}{C}\sum_c \lVert V_c \rVert^2}`
    (an invariant scale, so equivariance is kept), unless ``kind`` is ``none``; the mean
    square is clamped at ``1e-8`` like the reference code's, so zero vectors stay zero.

    Shapes
    ------
    s: ``[n, S]``, V: ``[n, C, 3]``, mask: ``[n]`` bool or None → same shapes
    """

    def __init__(self, dims: tuple[int, int], kind: NormKind = "layer") -> None:
        super().__init__()
        self.scalar_norm = make_norm(kind, dims[0])
        self.vector_norm = kind != "none" and dims[1] > 0

    def forward(self, s: Tensor, v: Tensor, mask: Tensor | None = None) -> Features:
        s = apply_norm(self.scalar_norm, s, mask)
        if self.vector_norm:
            mean_square = v.square().sum(-1).mean(-1, keepdim=True).clamp_min(1e-8)
            v = v / mean_square.sqrt().unsqueeze(-1)
        return s, v


class VectorDropout(nn.Module):
    """Drops whole vector channels (all three components together, so equivariance is
    kept) with probability ``p``, rescaling the rest by ``1 / (1 - p)``.

    Shapes
    ------
    V: ``[n, C, 3]`` → same shape
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, v: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return v
        keep = torch.bernoulli(v.new_full(v.shape[:-1], 1 - self.p)).unsqueeze(-1)
        return v * keep / (1 - self.p)


class GVPConvLayer(nn.Module):
    r"""GVP graph convolution with a residual feed-forward block (the reference code's
    ``GVPConvLayer``; equations 3-5 of the paper).

    .. math::
        h_{j \to i} &= g\big( (s_j, V_j) \,\|\, (s_{ji}, V_{ji}) \,\|\, (s_i, V_i) \big) \\
        h_i &\leftarrow \mathrm{LayerNorm}\Big(h_i + \mathrm{Dropout}\big(
            \tfrac{1}{|\mathcal N(i)|} \textstyle\sum_{j \to i} h_{j \to i}\big)\Big) \\
        h_i &\leftarrow \mathrm{LayerNorm}\big(h_i + \mathrm{Dropout}(f(h_i))\big)

    where :math:`g` is ``num_message`` GVPs (the last without activations) and :math:`f`
    is ``num_feedforward`` GVPs through a hidden width of (4 S, 2 C); ``\|`` concatenates
    scalars with scalars and vector channels with vector channels. A node without
    incoming edges receives a zero message.

    Shapes
    ------
    s: ``[N, S]``, V: ``[N, C, 3]``, src, dst: ``[E]``, edge_s: ``[E, S_e]``,
    edge_v: ``[E, C_e, 3]``, mask: ``[N]`` bool or None → s ``[N, S]``, V ``[N, C, 3]``
    """

    def __init__(
        self,
        node_dims: tuple[int, int],
        edge_dims: tuple[int, int],
        num_message: int = 3,
        num_feedforward: int = 2,
        dropout: float = 0.1,
        vector_gate: bool = False,
        norm: NormKind = "layer",
    ) -> None:
        super().__init__()
        if num_message < 1 or num_feedforward < 1:
            raise ValueError("GVPConvLayer needs at least one message and one feed-forward GVP")
        (s, v), (se, ve) = node_dims, edge_dims
        self.message_func = _gvp_stack(
            (2 * s + se, 2 * v + ve), node_dims, node_dims, num_message, vector_gate
        )
        hidden = (4 * s, 2 * v)
        self.ff_func = _gvp_stack(node_dims, hidden, node_dims, num_feedforward, vector_gate)
        self.norms = nn.ModuleList(GVPLayerNorm(node_dims, norm) for _ in range(2))
        self.scalar_dropout = nn.ModuleList(nn.Dropout(dropout) for _ in range(2))
        self.vector_dropout = nn.ModuleList(VectorDropout(dropout) for _ in range(2))

    def message(
        self, s: Tensor, v: Tensor, src: Tensor, dst: Tensor, edge_s: Tensor, edge_v: Tensor
    ) -> Features:
        """Messages :math:`h_{j \\to i}`: ``[E, S]``, ``[E, C, 3]``."""
        ms = torch.cat([gather(s, src), edge_s, gather(s, dst)], dim=-1)
        mv = torch.cat([gather(v, src), edge_v, gather(v, dst)], dim=-2)
        return _run(self.message_func, ms, mv)

    def _residual(self, k: int, s: Tensor, v: Tensor, ds: Tensor, dv: Tensor, mask) -> Features:
        s = s + self.scalar_dropout[k](ds)
        v = v + self.vector_dropout[k](dv)
        return self.norms[k](s, v, mask)

    def forward(
        self,
        s: Tensor,
        v: Tensor,
        src: Tensor,
        dst: Tensor,
        edge_s: Tensor,
        edge_v: Tensor,
        mask: Tensor | None = None,
    ) -> Features:
        ms, mv = self.message(s, v, src, dst, edge_s, edge_v)
        n = s.shape[0]
        s, v = self._residual(0, s, v, scatter_mean(ms, dst, n), scatter_mean(mv, dst, n), mask)
        ds, dv = _run(self.ff_func, s, v)
        return self._residual(1, s, v, ds, dv, mask)


def _gvp_stack(
    in_dims: tuple[int, int],
    hidden_dims: tuple[int, int],
    out_dims: tuple[int, int],
    num: int,
    vector_gate: bool,
) -> nn.ModuleList:
    """``num`` GVPs ``in → hidden → … → out``; the last one without activations."""
    if num == 1:
        return nn.ModuleList([GVP(in_dims, out_dims, activations=False, vector_gate=vector_gate)])
    dims = [in_dims] + [hidden_dims] * (num - 1) + [out_dims]
    return nn.ModuleList(
        GVP(a, b, activations=k < num - 1, vector_gate=vector_gate)
        for k, (a, b) in enumerate(itertools.pairwise(dims))
    )


def _run(gvps: nn.ModuleList, s: Tensor, v: Tensor) -> Features:
    for gvp in gvps:
        s, v = gvp(s, v)
    return s, v


class GVPEncoder(GraphEncoder):
    """GVP-GNN over a GraphBatch with coordinates (the reference code's ``MQAModel``
    encoder, as LM-GVP uses it): input GVPs for nodes and edges, ``num_layers``
    :class:`GVPConvLayer`, and an output GVP to scalars, pooled by the readout.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input scalar widths, taken from the featurizer.
    hidden_dim, hidden_vector_dim
        Node scalar and vector channels (the paper: 100 and 16).
    edge_hidden_dim, edge_vector_dim
        Edge scalar and vector channels after the input GVP (the paper: 32 and 1).
    num_layers, dropout
        Number of :class:`GVPConvLayer` (the paper: 3) and their dropout (the paper: 0.1).
    readout
        ``mean`` (the reference code's), ``sum``, ``max``, ``attention`` or ``set2set``.
    norm
        ``layer`` (the paper's), ``batch`` or ``none`` for the scalar channels of every
        tuple norm (see :class:`GVPLayerNorm`). GVP-GNN is residual by construction, so
        there is no residual option.
    vector_gate
        Vector gating (Jing et al. 2021) instead of the norm-based vector nonlinearity.
    num_rbf, rbf_max
        Gaussian RBF of the edge length: ``num_rbf`` centres on 0-``rbf_max`` Å (the
        paper's proteins: 16 on 0-20 Å).
    node_vectors
        Vector channels derived for each node from the geometry: ``neighbour_mean`` (unit
        vector to the mean of the neighbours' positions) or ``none``.
    in_node_vector_dim
        Given node vector channels, read from ``batch.node_vectors`` ``[N, C, 3]`` (the
        protein featurizer gives 3; molecules have none). A batch without them fails with
        a clear error when this is > 0.
    num_message, num_feedforward
        GVPs in each message function and feed-forward block (the paper: 3 and 2).
    """

    requires_positions = True

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 100,
        hidden_vector_dim: int = 16,
        edge_hidden_dim: int = 32,
        edge_vector_dim: int = 1,
        num_layers: int = 3,
        dropout: float = 0.1,
        readout: ReadoutKind = "mean",
        norm: NormKind = "layer",
        vector_gate: bool = False,
        num_rbf: int = 16,
        rbf_max: float = 20.0,
        node_vectors: NodeVectors = "neighbour_mean",
        in_node_vector_dim: int = 0,
        num_message: int = 3,
        num_feedforward: int = 2,
    ) -> None:
        if node_vectors not in ("none", "neighbour_mean"):
            raise ValueError(
                f"unknown node_vectors {node_vectors!r}; choose none or neighbour_mean"
            )
        super().__init__(readout, hidden_dim)
        self.num_rbf, self.rbf_max = num_rbf, rbf_max
        self.node_vectors, self.in_node_vector_dim = node_vectors, in_node_vector_dim
        node_in = (in_node_dim, in_node_vector_dim + (node_vectors == "neighbour_mean"))
        edge_in = (num_rbf + in_edge_dim, 1)
        node_h, edge_h = (hidden_dim, hidden_vector_dim), (edge_hidden_dim, edge_vector_dim)
        self.node_in_norm = GVPLayerNorm(node_in, norm)
        self.node_in = GVP(node_in, node_h, activations=False, vector_gate=vector_gate)
        self.edge_in_norm = GVPLayerNorm(edge_in, norm)
        self.edge_in = GVP(edge_in, edge_h, activations=False, vector_gate=vector_gate)
        self.layers = nn.ModuleList(
            GVPConvLayer(node_h, edge_h, num_message, num_feedforward, dropout, vector_gate, norm)
            for _ in range(num_layers)
        )
        self.out_norm = GVPLayerNorm(node_h, norm)
        self.out = GVP(node_h, (hidden_dim, 0), vector_gate=vector_gate)

    def input_vectors(self, batch: GraphBatch, edge_vec: Tensor) -> Tensor:
        """Node input vector channels ``[N, C_in, 3]``: given ones, then derived ones.

        ``edge_vec`` ``[E, 3]`` holds :math:`x_i - x_j` for every edge ``j → i``.
        """
        channels = []
        if self.in_node_vector_dim:
            given = getattr(batch, "node_vectors", None)
            if given is None:
                raise ValueError(
                    f"{type(self).__name__} was built with in_node_vector_dim="
                    f"{self.in_node_vector_dim}, but this batch has no node vector features"
                )
            channels.append(given)
        if self.node_vectors == "neighbour_mean":
            # mean_j (x_j - x_i) = (mean of the neighbours' positions) - x_i
            towards = scatter_mean(-edge_vec, batch.dst, batch.num_nodes)
            channels.append(unit(towards).unsqueeze(1))
        if not channels:
            return edge_vec.new_zeros(batch.num_nodes, 0, 3)
        return torch.cat(channels, dim=1)

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        pos = batch.positions(type(self).__name__)
        mask = batch.node_mask
        vec, dist = edge_vectors(pos, batch.src, batch.dst)
        edge_s = torch.cat([rbf(dist, 0.0, self.rbf_max, self.num_rbf), batch.edge_attr], -1)
        # padding edges are self-loops on the last (padding) node: masked like it
        edge_mask = None if mask is None else gather(mask, batch.dst)
        edge_s, edge_v = self.edge_in(*self.edge_in_norm(edge_s, unit(vec).unsqueeze(1), edge_mask))
        s, v = self.node_in(*self.node_in_norm(batch.x, self.input_vectors(batch, vec), mask))
        for layer in self.layers:
            s, v = layer(s, v, batch.src, batch.dst, edge_s, edge_v, mask)
        s, _ = self.out(*self.out_norm(s, v, mask))
        return self.output(s, batch)
