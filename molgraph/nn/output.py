"""What every encoder returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class EncoderOutput:
    """Shapes: node ``[N, d]``, graph ``[G, d]``, pos ``[N, 3]`` (equivariant encoders)."""

    node: Tensor
    graph: Tensor
    pos: Tensor | None = None
