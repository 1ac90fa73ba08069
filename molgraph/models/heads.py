"""Prediction heads: graph embedding → one output per task."""

from __future__ import annotations

from molgraph.nn.mlp import MLP


class MLPHead(MLP):
    """``[G, in_dim]`` → ``[G, out_dim]``; ``in_dim`` from the encoder, ``out_dim`` = tasks."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 300,
        num_layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim, hidden_dim, out_dim, num_layers, dropout)
