"""Neural network layers, written on the shared primitives of :mod:`molgraph.nn.scatter`."""

from molgraph.nn.encoders import GINEncoder
from molgraph.nn.mlp import MLP
from molgraph.nn.output import EncoderOutput
from molgraph.nn.readout import Readout

__all__ = ["MLP", "EncoderOutput", "GINEncoder", "Readout"]
