"""Graph encoders: GraphBatch → EncoderOutput. One file per encoder.

Standard: GIN/GINE (:mod:`gin`), Hu et al.'s pre-training GIN (:mod:`pretrain_gin`), GCN,
GATv2, MPNN (edge network + GRU), D-MPNN, AttentiveFP. E(3)-equivariant, over node coordinates: EGNN, PaiNN, GVP-GNN.
What they share (readout, the stacked layer loop, norms, dropout) lives in :mod:`base`.
"""

from molgraph.nn.encoders.attentivefp import AttentiveFPEncoder, AttentiveGATConv, GATEConv
from molgraph.nn.encoders.base import GraphEncoder, StackedEncoder
from molgraph.nn.encoders.dmpnn import DMPNNConv, DMPNNEncoder, reverse_edges
from molgraph.nn.encoders.egnn import EGNNEncoder, EGNNLayer
from molgraph.nn.encoders.gat import GATEncoder, GATv2Conv
from molgraph.nn.encoders.gcn import GCNConv, GCNEncoder
from molgraph.nn.encoders.gin import GINEConv, GINEncoder
from molgraph.nn.encoders.gvp import GVP, GVPConvLayer, GVPEncoder
from molgraph.nn.encoders.mpnn import MPNNEncoder, NNConv
from molgraph.nn.encoders.painn import PaiNNEncoder, PaiNNMessage, PaiNNUpdate
from molgraph.nn.encoders.pretrain_gin import PretrainGINConv, PretrainGINEncoder

__all__ = [
    "GVP",
    "AttentiveFPEncoder",
    "AttentiveGATConv",
    "DMPNNConv",
    "DMPNNEncoder",
    "EGNNEncoder",
    "EGNNLayer",
    "GATEConv",
    "GATEncoder",
    "GATv2Conv",
    "GCNConv",
    "GCNEncoder",
    "GINEConv",
    "GINEncoder",
    "GVPConvLayer",
    "GVPEncoder",
    "GraphEncoder",
    "MPNNEncoder",
    "NNConv",
    "PaiNNEncoder",
    "PaiNNMessage",
    "PaiNNUpdate",
    "PretrainGINConv",
    "PretrainGINEncoder",
    "StackedEncoder",
    "reverse_edges",
]
