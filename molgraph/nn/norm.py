"""Normalisation layers that ignore padding nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

NormKind = Literal["batch", "layer", "none"]


class MaskedBatchNorm1d(nn.BatchNorm1d):
    r"""Batch normalisation whose batch statistics use only the rows where ``mask`` is True.

    .. math::
        \mu = \frac{\sum_i m_i h_i}{\sum_i m_i}, \quad
        \sigma^2 = \frac{\sum_i m_i (h_i - \mu)^2}{\sum_i m_i}, \quad
        h_i' = \gamma \frac{h_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    Without a mask (or in eval mode) it is :class:`torch.nn.BatchNorm1d`. Running
    statistics are updated as there (unbiased variance, ``momentum``, which must be a
    number), with tensor ops only, so the layer can run inside a captured CUDA graph.

    Shapes
    ------
    h: ``[N, d]``, mask: ``[N]`` bool → ``[N, d]``
    """

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None or not self.training:
            return super().forward(h)
        # few, large kernels (this runs inside CUDA graphs, where kernel count is the cost)
        weighted = h * mask.to(h.dtype).unsqueeze(1)
        count = mask.sum().to(h.dtype).clamp_min(2.0)
        mean = weighted.sum(0) / count
        var = ((weighted * h).sum(0) / count - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * count / (count - 1), self.momentum)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = -mean * scale
        if self.affine:
            shift = shift + self.bias
        return torch.addcmul(shift, h, scale)


def make_norm(kind: NormKind, dim: int) -> nn.Module:
    """``batch`` (masked batch norm), ``layer`` or ``none``."""
    if kind == "batch":
        return MaskedBatchNorm1d(dim)
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose batch, layer or none")


def make_norms(kind: NormKind, dim: int, num: int) -> nn.ModuleList:
    """``num`` independent :func:`make_norm` modules, one per layer."""
    return nn.ModuleList(make_norm(kind, dim) for _ in range(num))


def apply_norm(norm: nn.Module, h: Tensor, mask: Tensor | None) -> Tensor:
    """Call ``norm`` with the padding mask where it takes one."""
    return norm(h, mask) if isinstance(norm, MaskedBatchNorm1d) else norm(h)


def finish_layer(
    h: Tensor,
    update: Tensor,
    norm: nn.Module,
    node_mask: Tensor | None,
    dropout: nn.Module,
    activation: Callable[[Tensor], Tensor] | None,
    residual: bool,
) -> Tensor:
    """What follows a message-passing layer in the stacked encoders: normalisation
    (padding-aware), the activation (None after the last layer), dropout, residual."""
    update = apply_norm(norm, update, node_mask)
    if activation is not None:
        update = activation(update)
    update = dropout(update)
    return h + update if residual else update
