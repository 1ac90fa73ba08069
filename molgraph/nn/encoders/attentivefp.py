"""Attentive FP, Xiong et al., J. Med. Chem. 2020.

"Pushing the Boundaries of Molecular Representation for Drug Discovery with the Graph
Attention Mechanism". Atom states are refined by graph attention followed by a GRU
(the first layer's attention also reads the bond features); the molecule is a virtual
super node that attends over its atoms, again with a GRU, for a few time steps.

The layer structure follows PyTorch Geometric's ``AttentiveFP`` (``GATEConv`` for the
first layer, one-head ``AttentiveGATConv`` without self-loops and LeakyReLU slope 0.01 for the
others and for the super node), written on molgraph's shared primitives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.base import make_dropout
from molgraph.nn.output import EncoderOutput
from molgraph.nn.scatter import gather, scatter_sum, segment_softmax

#: LeakyReLU slope of every attention score (the paper's and PyG's choice).
NEGATIVE_SLOPE = 0.01


class GATEConv(nn.Module):
    r"""Attentive FP's first layer: graph attention whose neighbour term reads the bond.

    .. math::
        n_{ji} = \mathrm{LeakyReLU}(W_1 [h_j \,\|\, e_{ji}]), \quad
        \alpha_{ji} = \mathrm{softmax}_{j \to i}\big(
            \mathrm{LeakyReLU}(a_l^\top n_{ji} + a_r^\top h_i)\big), \quad
        c_i = \sum_{j \to i} \alpha_{ji}\, W_2 n_{ji} + b

    (the score is the paper's :math:`\mathrm{LeakyReLU}(W [h_i \| n_{ji}])` split into its
    two halves). Dropout acts on the attention weights :math:`\alpha`. A node without
    incoming edges gets :math:`c_i = b`.

    Shapes
    ------
    h: ``[N, d]``, src, dst: ``[E]``, edge_attr: ``[E, d_e]`` → ``[N, d]``
    """

    def __init__(self, dim: int, edge_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.W_1 = nn.Linear(dim + edge_dim, dim, bias=False)
        self.W_2 = nn.Linear(dim, dim, bias=False)
        self.att_l = nn.Parameter(torch.empty(dim))
        self.att_r = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.dropout = nn.Dropout(dropout)
        bound = (6.0 / (dim + 1)) ** 0.5  # Glorot for a [1, dim] vector, as PyG
        nn.init.uniform_(self.att_l, -bound, bound)
        nn.init.uniform_(self.att_r, -bound, bound)

    def neighbour(self, h: Tensor, src: Tensor, edge_attr: Tensor) -> Tensor:
        """:math:`n_{ji}`, the neighbour's state merged with the bond's features."""
        merged = self.W_1(torch.cat([gather(h, src), edge_attr], dim=-1))
        return F.leaky_relu(merged, NEGATIVE_SLOPE)

    def attention(self, n: Tensor, h: Tensor, dst: Tensor) -> Tensor:
        r""":math:`\alpha_{ji}`, ``[E, 1]``, softmax over the edges entering each node."""
        score = F.leaky_relu(n @ self.att_l + gather(h @ self.att_r, dst), NEGATIVE_SLOPE)
        return self.dropout(segment_softmax(score.unsqueeze(-1), dst, h.shape[0]))

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor) -> Tensor:
        n = self.neighbour(h, src, edge_attr)
        alpha = self.attention(n, h, dst)
        return scatter_sum(alpha * self.W_2(n), dst, h.shape[0]) + self.bias


class AttentiveGATConv(nn.Module):
    r"""One-head graph attention (Veličković et al., ICLR 2018), Attentive FP's flavour.

    .. math::
        \alpha_{ji} = \mathrm{softmax}_{j \to i}\big(
            \mathrm{LeakyReLU}(a_s^\top W s_j + a_t^\top W t_i)\big), \quad
        c_i = \sum_{j \to i} \alpha_{ji}\, W s_j + b

    No self-loops, LeakyReLU slope 0.01, dropout on :math:`\alpha`. Sources and targets
    may be different sets sharing :math:`W` (atoms → molecule super nodes); for atom
    layers both are the atom states.

    Shapes
    ------
    h_src: ``[N_s, d]``, h_dst: ``[N_t, d]``, src, dst: ``[E]`` → ``[N_t, d]``
    """

    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.W = nn.Linear(dim, dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(dim))
        self.att_dst = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.dropout = nn.Dropout(dropout)
        bound = (6.0 / (dim + 1)) ** 0.5
        nn.init.uniform_(self.att_src, -bound, bound)
        nn.init.uniform_(self.att_dst, -bound, bound)

    def forward(self, h_src: Tensor, h_dst: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        num_dst = h_dst.shape[0]
        w_src, w_dst = self.W(h_src), self.W(h_dst)
        score = gather(w_src @ self.att_src, src) + gather(w_dst @ self.att_dst, dst)
        score = F.leaky_relu(score, NEGATIVE_SLOPE).unsqueeze(-1)
        alpha = self.dropout(segment_softmax(score, dst, num_dst))
        return scatter_sum(alpha * gather(w_src, src), dst, num_dst) + self.bias


class AttentiveFPEncoder(nn.Module):
    r"""Attentive FP over a GraphBatch: attentive atom layers, then a super-node readout.

    .. math::
        h^0_i &= \mathrm{LeakyReLU}(W_{in} x_i) \\
        h^1_i &= \mathrm{ReLU}\big(\mathrm{GRU}(\mathrm{ELU}(\mathrm{GATE}(h^0, e)_i),
                 h^0_i)\big) \\
        h^{l+1}_i &= \mathrm{ReLU}\big(\mathrm{GRU}_l(\mathrm{ELU}(\mathrm{GAT}_l(h^l)_i),
                 h^l_i)\big), \quad l = 1 \dots L - 1 \\
        g^0 &= \mathrm{ReLU}\Big(\sum_{i \in G} h^L_i\Big), \quad
        g^{t+1} = \mathrm{ReLU}\big(\mathrm{GRU}_m(\mathrm{ELU}(
                 \mathrm{GAT}_m(h^L \to g^t)), g^t)\big)

    with :class:`GATEConv`, :class:`AttentiveGATConv` (the molecule's attention runs from each
    atom to its own graph's super node), dropout after each ELU. Node output
    :math:`h^L`, graph output :math:`g^T`.

    PyG's model ends with dropout and a linear layer on :math:`g^T`: that is the
    prediction head's job here, so the encoder returns :math:`g^T` itself.

    Parameters
    ----------
    in_node_dim, in_edge_dim
        Input widths, taken from the featurizer.
    hidden_dim
        Width of atom and molecule states (paper: 200).
    num_layers
        Atom layers :math:`L`, the first being the GATE layer. At least 1.
    num_timesteps
        Super-node refinement steps :math:`T`.
    dropout
        Dropout on attention weights and after each attention layer.

    There is no ``readout`` argument: the super-node attention *is* Attentive FP's
    readout (it is trained with the model; a generic pooling would drop half of the
    architecture). There are no ``norm`` or ``residual`` options either: the GRU
    updates are the model's gated residual connections, and the paper normalises
    nothing.
    """

    requires_positions = False

    def __init__(
        self,
        in_node_dim: int,
        in_edge_dim: int,
        hidden_dim: int = 200,
        num_layers: int = 2,
        num_timesteps: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1 (the GATE layer), got {num_layers}")
        self.out_dim = hidden_dim
        self.num_timesteps = num_timesteps
        self.node_proj = nn.Linear(in_node_dim, hidden_dim)
        self.gate_conv = GATEConv(hidden_dim, in_edge_dim, dropout)
        self.gate_gru = nn.GRUCell(hidden_dim, hidden_dim)
        self.atom_convs = nn.ModuleList(
            AttentiveGATConv(hidden_dim, dropout) for _ in range(num_layers - 1)
        )
        self.atom_grus = nn.ModuleList(
            nn.GRUCell(hidden_dim, hidden_dim) for _ in range(num_layers - 1)
        )
        self.mol_conv = AttentiveGATConv(hidden_dim, dropout)
        self.mol_gru = nn.GRUCell(hidden_dim, hidden_dim)
        self.dropout = make_dropout(dropout)

    def atom_embedding(self, batch: GraphBatch) -> Tensor:
        """Atom states :math:`h^L`, ``[N, hidden_dim]``."""
        src, dst = batch.src, batch.dst
        h = F.leaky_relu(self.node_proj(batch.x))
        c = self.dropout(F.elu(self.gate_conv(h, src, dst, batch.edge_attr)))
        h = torch.relu(self.gate_gru(c, h))
        for conv, gru in zip(self.atom_convs, self.atom_grus, strict=True):
            c = self.dropout(F.elu(conv(h, h, src, dst)))
            h = torch.relu(gru(c, h))
        return h

    def molecule_embedding(self, h: Tensor, graph: Tensor, num_graphs: int) -> Tensor:
        """Super-node states :math:`g^T`, ``[G, hidden_dim]``; ``graph`` is ``[N]``."""
        atoms = torch.arange(h.shape[0], device=h.device)
        g = torch.relu(scatter_sum(h, graph, num_graphs))
        for _ in range(self.num_timesteps):
            c = self.dropout(F.elu(self.mol_conv(h, g, atoms, graph)))
            g = torch.relu(self.mol_gru(c, g))
        return g

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        h = self.atom_embedding(batch)
        return EncoderOutput(
            node=h, graph=self.molecule_embedding(h, batch.batch, batch.num_graphs)
        )
