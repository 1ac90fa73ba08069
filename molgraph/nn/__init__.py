"""Neural network layers, written on the shared primitives of :mod:`molgraph.nn.scatter`."""

from molgraph.nn.encoders import (
    AttentiveFPEncoder,
    DMPNNEncoder,
    EGNNEncoder,
    GATEncoder,
    GCNEncoder,
    GINEncoder,
    GVPEncoder,
    MPNNEncoder,
    PaiNNEncoder,
    PretrainGINEncoder,
)
from molgraph.nn.mlp import MLP
from molgraph.nn.output import Encoder, EncoderOutput
from molgraph.nn.readout import Readout

__all__ = [
    "MLP",
    "AttentiveFPEncoder",
    "DMPNNEncoder",
    "EGNNEncoder",
    "Encoder",
    "EncoderOutput",
    "GATEncoder",
    "GCNEncoder",
    "GINEncoder",
    "GVPEncoder",
    "MPNNEncoder",
    "PaiNNEncoder",
    "PretrainGINEncoder",
    "Readout",
]
