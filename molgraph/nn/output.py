"""What every encoder is and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

from molgraph.batch import GraphBatch


@dataclass(frozen=True)
class EncoderOutput:
    """Shapes: node ``[N, d]``, graph ``[G, d]``, pos ``[N, 3]`` (equivariant encoders)."""

    node: Tensor
    graph: Tensor
    pos: Tensor | None = None


@runtime_checkable
class Encoder(Protocol):
    """The contract of a graph encoder, as the training run and the heads read it.

    Attributes
    ----------
    out_dim
        Width of ``EncoderOutput.graph``, the head's input width.
    requires_positions
        True where the encoder reads ``batch.pos``: a training run then refuses a featurizer
        without coordinates, and a batch without them fails with a clear error.

    Calling it on a GraphBatch of ``N`` nodes and ``G`` graphs gives an
    :class:`EncoderOutput` with ``graph`` ``[G, out_dim]``.
    """

    out_dim: int
    requires_positions: bool

    def __call__(self, batch: GraphBatch) -> EncoderOutput: ...
