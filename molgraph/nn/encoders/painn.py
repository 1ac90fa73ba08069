"""PaiNN: polarizable atom interaction neural network, Schütt, Unke & Gastegger, ICML 2021
("Equivariant message passing for the prediction of tensorial properties and molecular
spectra").

Every node carries scalar features :math:`s_i \\in \\mathbb{R}^F` and vector features
:math:`\\vec v_i \\in \\mathbb{R}^{3 \\times F}`. Scalars are invariant and vectors
equivariant under rotations *and reflections* (vectors are built from edge directions and
combined linearly; there is no cross product), so a mirror image gives the same scalar
output: the model tells enantiomers apart only through its input features (e.g. RDKit's
chiral tags).

PaiNN operates on the edges it is given. For molecules from molgraph's featurizer these
are the bonds: no radius graph is built here, and the cosine cutoff only weights the given
edges (with bond lengths of 1-2 Å and a 5 Å cutoff every bond contributes).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.geometry import cosine_cutoff, edge_vectors, safe_norm, sinc_rbf, unit
from molgraph.nn.encoders.base import GraphEncoder, make_dropout
from molgraph.nn.norm import NormKind, apply_norm, make_norms
from molgraph.nn.output import EncoderOutput
from molgraph.nn.readout import ReadoutKind
from molgraph.nn.scatter import gather, scatter_sum


class PaiNNMessage(nn.Module):
    r"""PaiNN's message block (equations 7 and 8 and Figure 2b of the paper).

    .. math::
        \Delta s_i^m &= \sum_{j \to i} \phi_s(s_j) \circ \mathcal{W}_s(\lVert r_{ij} \rVert) \\
        \Delta \vec v_i^m &= \sum_{j \to i} \vec v_j \circ \phi_{vv}(s_j) \circ
            \mathcal{W}_{vv}(\lVert r_{ij} \rVert)
            + \phi_{vs}(s_j) \circ \mathcal{W}_{vs}(\lVert r_{ij} \rVert)
            \frac{\vec r_{ij}}{\lVert r_{ij} \rVert}

    :math:`\phi = (\phi_s, \phi_{vv}, \phi_{vs})` is Linear → SiLU → Linear to
    :math:`3F`; :math:`\mathcal{W}` is a linear map of the radial basis of
    :math:`\lVert r_{ij} \rVert` (``radial`` below) to :math:`3F`, times the cosine cutoff.
    :math:`\vec r_{ij} = x_i - x_j` (:func:`molgraph.geometry.edge_vectors`); the sign
    convention is absorbed by the learned :math:`\phi_{vs}`.

    With ``edge_dim > 0`` the filter also reads the edge features (bond type for
    molecules): :math:`\mathcal{W}(r_{ij}, e_{ij}) = W [\mathrm{rbf}(r_{ij}) \,\|\, e_{ij}]
    \, f_c(r_{ij})`, an extension of the paper (``edge_dim = 0`` is the paper's).

    Shapes
    ------
    s: ``[N, F]``, v: ``[N, 3, F]``, src, dst: ``[E]``, radial: ``[E, K + edge_dim]``,
    cutoff: ``[E]``, direction: ``[E, 3]`` (unit) → Δs ``[N, F]``, Δv ``[N, 3, F]``
    """

    def __init__(self, dim: int, num_radial: int, edge_dim: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.phi = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, 3 * dim))
        self.filter = nn.Linear(num_radial + edge_dim, 3 * dim)

    def forward(
        self,
        s: Tensor,
        v: Tensor,
        src: Tensor,
        dst: Tensor,
        radial: Tensor,
        cutoff: Tensor,
        direction: Tensor,
    ) -> tuple[Tensor, Tensor]:
        x = gather(self.phi(s), src) * (self.filter(radial) * cutoff.unsqueeze(-1))
        ds, dvv, dvs = x.split(self.dim, dim=-1)
        dv = gather(v, src) * dvv.unsqueeze(1) + dvs.unsqueeze(1) * direction.unsqueeze(-1)
        n = s.shape[0]
        return scatter_sum(ds, dst, n), scatter_sum(dv, dst, n)


class PaiNNUpdate(nn.Module):
    r"""PaiNN's update block (equations 9-11 and Figure 2c of the paper).

    .. math::
        \Delta \vec v_i^u &= a_{vv}(s_i, \lVert \mathbf V \vec v_i \rVert) \, \mathbf U \vec v_i \\
        \Delta s_i^u &= a_{ss}(s_i, \lVert \mathbf V \vec v_i \rVert)
            + a_{sv}(s_i, \lVert \mathbf V \vec v_i \rVert)
              \, \langle \mathbf U \vec v_i, \mathbf V \vec v_i \rangle

    :math:`\mathbf U, \mathbf V` are linear maps over the feature channels without bias
    (equivariant); :math:`a = (a_{vv}, a_{sv}, a_{ss})` is Linear(2F → F) → SiLU → Linear
    to :math:`3F`. Norms and scalar products are over the 3 spatial components; the norm
    is :func:`molgraph.geometry.safe_norm` (the initial vectors are zero).

    Shapes
    ------
    s: ``[N, F]``, v: ``[N, 3, F]`` → Δs ``[N, F]``, Δv ``[N, 3, F]``
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.U = nn.Linear(dim, dim, bias=False)
        self.V = nn.Linear(dim, dim, bias=False)
        self.a = nn.Sequential(nn.Linear(2 * dim, dim), nn.SiLU(), nn.Linear(dim, 3 * dim))

    def forward(self, s: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        uv, vv = self.U(v), self.V(v)
        a = self.a(torch.cat([s, safe_norm(vv, dim=1)], dim=-1))
        a_vv, a_sv, a_ss = a.split(self.dim, dim=-1)
        ds = a_ss + a_sv * (uv * vv).sum(dim=1)
        return ds, a_vv.unsqueeze(1) * uv


class PaiNNEncoder(GraphEncoder):
    """PaiNN over a GraphBatch with coordinates: ``num_layers`` message + update blocks.

    Scalar features start from a linear embedding of the node features, vector features
    at zero (as in the paper, where the input is the atom type). Node output is the final
    scalar features; the graph output is their readout.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input widths, taken from the featurizer.
    hidden_dim, num_layers
        Feature channels :math:`F` and the number of message + update block pairs (the
        paper: 128 and 3).
    dropout
        Dropout on the scalar updates (vector updates are not dropped).
    readout
        ``sum`` (the paper's), ``mean``, ``max``, ``attention`` (gated) or ``set2set``.
    norm
        ``batch``, ``layer`` or ``none`` (the paper's) on the scalar features after each
        block pair; invariant features, so the symmetry is kept. PaiNN is residual by
        construction (:math:`s \\leftarrow s + \\Delta s`), so there is no residual option.
    num_radial, cutoff
        Size of the sine radial basis and the cosine cutoff in Å (the paper: 20 and 5 Å).
    use_edge_attr
        Let the filters read the input edge features too (an extension; the paper's PaiNN
        sees only distances).
    """

    requires_positions = True

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 128,
        num_layers: int = 3,
        dropout: float = 0.0,
        readout: ReadoutKind = "sum",
        norm: NormKind = "none",
        num_radial: int = 20,
        cutoff: float = 5.0,
        use_edge_attr: bool = False,
    ) -> None:
        super().__init__(readout, hidden_dim)
        self.hidden_dim, self.num_radial, self.cutoff = hidden_dim, num_radial, cutoff
        self.use_edge_attr = use_edge_attr
        edge_dim = in_edge_dim if use_edge_attr else 0
        self.embedding = nn.Linear(in_node_dim, hidden_dim)
        self.messages = nn.ModuleList(
            PaiNNMessage(hidden_dim, num_radial, edge_dim) for _ in range(num_layers)
        )
        self.updates = nn.ModuleList(PaiNNUpdate(hidden_dim) for _ in range(num_layers))
        self.norms = make_norms(norm, hidden_dim, num_layers)
        self.dropout = make_dropout(dropout)

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        pos = batch.positions(type(self).__name__)
        vec, dist = edge_vectors(pos, batch.src, batch.dst)
        radial = sinc_rbf(dist, self.cutoff, self.num_radial)
        if self.use_edge_attr:
            radial = torch.cat([radial, batch.edge_attr], dim=-1)
        cutoff, direction = cosine_cutoff(dist, self.cutoff), unit(vec)
        s = self.embedding(batch.x)
        v = s.new_zeros(s.shape[0], 3, self.hidden_dim)
        for message, update, norm in zip(self.messages, self.updates, self.norms, strict=True):
            ds, dv = message(s, v, batch.src, batch.dst, radial, cutoff, direction)
            s, v = s + self.dropout(ds), v + dv
            ds, dv = update(s, v)
            s, v = s + self.dropout(ds), v + dv
            s = apply_norm(norm, s, batch.node_mask)
        return self.output(s, batch)
