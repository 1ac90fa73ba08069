"""Geometry shared by featurizers and encoders: edge vectors, safe norms, radial bases.

A leaf module (torch only). Conventions:

- Coordinates are in Å; an edge ``j → i`` is ``src = j``, ``dst = i`` (messages flow from
  ``src`` to ``dst``), and its vector is :math:`x_i - x_j` (from the sender to the
  receiver), as in EGNN's :math:`x_i - x_j`.
- Distances enter models through a radial basis on a *fixed* range, never normalised by a
  per-graph maximum, so a model transfers across molecule and protein sizes.
- Every function is safe at zero length (coincident points, the self-loop edges of padded
  batches): values are finite and gradients are finite, never NaN.
- No function's output shape depends on tensor values, so all of them can run inside a
  captured CUDA graph.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def safe_norm(vec: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    r"""Euclidean norm along ``dim`` whose gradient at the zero vector is 0, not NaN.

    The value is exact (0 for the zero vector). :math:`\sqrt{\cdot}` has an infinite
    derivative at 0, so the square root is taken of 1 where the squared norm is 0 and
    the result replaced by 0 there (both branches of the ``where`` are finite).

    Shapes
    ------
    vec: ``[..., 3, ...]`` → the same shape without ``dim`` (or with size 1 there when
    ``keepdim``)
    """
    squared = vec.square().sum(dim=dim, keepdim=keepdim)
    positive = squared > 0
    return torch.where(positive, torch.where(positive, squared, 1.0).sqrt(), 0.0)


def unit(vec: Tensor, eps: float = 1e-8, dim: int = -1) -> Tensor:
    r"""``vec`` scaled to unit length along ``dim``; vectors shorter than ``eps`` are
    divided by ``eps`` instead (so the zero vector stays zero, with a finite gradient).

    .. math::
        \hat v = \frac{v}{\max(\lVert v \rVert, \epsilon)}

    Shapes
    ------
    vec: ``[..., 3, ...]`` → same shape
    """
    return vec / safe_norm(vec, dim=dim, keepdim=True).clamp_min(eps)


def edge_vectors(pos: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
    r"""Vector and length of every edge ``j → i`` (``src = j``, ``dst = i``).

    .. math::
        r_{ij} = x_i - x_j, \qquad d_{ij} = \lVert r_{ij} \rVert

    The length is :func:`safe_norm`'s: exact, and with a zero (not NaN) gradient for a
    zero-length edge such as a padding self-loop.

    Shapes
    ------
    pos: ``[N, 3]``, src, dst: ``[E]`` → vec ``[E, 3]``, dist ``[E]``
    """
    vec = pos.index_select(0, dst) - pos.index_select(0, src)
    return vec, safe_norm(vec, dim=-1)


def rbf(
    distances: Tensor,
    d_min: float = 0.0,
    d_max: float = 20.0,
    num: int = 16,
    width: float | None = None,
) -> Tensor:
    r"""Gaussian radial basis on the fixed range ``[d_min, d_max]`` (Å).

    .. math::
        \mathrm{rbf}_k(d) = \exp\!\Big(-\Big(\frac{d - \mu_k}{\sigma}\Big)^2\Big), \quad
        \mu_k = d_{\min} + k \frac{d_{\max} - d_{\min}}{K - 1}, \; k = 0 \ldots K - 1

    with :math:`\sigma` = ``width``, by default :math:`(d_{\max} - d_{\min}) / K` (the
    choice of the GVP code, Jing et al. 2021, whose defaults these are: 16 centres on
    0-20 Å). Distances outside the range are not clipped: their features decay smoothly.

    Shapes
    ------
    distances: ``[...]`` → ``[..., num]``
    """
    if num < 2:
        raise ValueError(f"rbf needs at least 2 centres, got num={num}")
    if not d_max > d_min:
        raise ValueError(f"rbf needs d_max > d_min, got {d_min}..{d_max}")
    sigma = (d_max - d_min) / num if width is None else width
    centres = torch.linspace(d_min, d_max, num, dtype=distances.dtype, device=distances.device)
    return torch.exp(-(((distances.unsqueeze(-1) - centres) / sigma) ** 2))


def sinc_rbf(distances: Tensor, cutoff: float, num: int = 20) -> Tensor:
    r"""Sine radial basis of PaiNN and DimeNet, on ``(0, cutoff]`` (Å).

    .. math::
        \mathrm{rbf}_n(d) = \frac{\sin(n \pi d / c)}{d}, \quad n = 1 \ldots K

    At :math:`d = 0` the limit :math:`n \pi / c` is returned (and its gradient is finite),
    so zero-length edges are safe.

    Shapes
    ------
    distances: ``[...]`` → ``[..., num]``
    """
    n = torch.arange(1, num + 1, dtype=distances.dtype, device=distances.device)
    frequencies = n * (math.pi / cutoff)
    d = distances.unsqueeze(-1)
    positive = d > 0
    safe_d = torch.where(positive, d, 1.0)
    return torch.where(positive, torch.sin(frequencies * safe_d) / safe_d, frequencies)


def cosine_cutoff(distances: Tensor, cutoff: float) -> Tensor:
    r"""Behler's cosine cutoff: smooth, 1 at 0, 0 (with zero slope) at and beyond ``cutoff``.

    .. math::
        f_c(d) = \tfrac{1}{2}\big(\cos(\pi d / c) + 1\big) \text{ for } d < c, \quad
        0 \text{ otherwise}

    Shapes
    ------
    distances: ``[...]`` → ``[...]``
    """
    inside = distances < cutoff
    return torch.where(inside, 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0), 0.0)
