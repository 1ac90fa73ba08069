"""A plain multilayer perceptron."""

from __future__ import annotations

import itertools

from torch import nn


class MLP(nn.Sequential):
    """``num_layers`` linear layers with ReLU and dropout between them.

    Shapes
    ------
    ``[..., in_dim]`` → ``[..., out_dim]``
    """

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2, dropout: float = 0.0
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            if i > 0:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
            layers.append(nn.Linear(a, b))
        super().__init__(*layers)
