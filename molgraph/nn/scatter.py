"""Message-passing primitives on index tensors, shared by every encoder.

Plain torch ops (``index_select``, ``index_add_``, ``scatter_reduce_``), so models run on
CPU and CUDA with a stock PyTorch build and need no DGL kernels. ``dim_size`` is always
passed by the caller: output shapes never depend on tensor values, so nothing forces a
GPU sync.
"""

from __future__ import annotations

from torch import Tensor


def gather(x: Tensor, index: Tensor) -> Tensor:
    """Rows of ``x`` at ``index``: ``[N, ...]``, ``[E]`` → ``[E, ...]``."""
    return x.index_select(0, index)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Sum rows of ``src`` ``[E, ...]`` into ``dim_size`` groups given by ``index`` ``[E]``."""
    out = src.new_zeros((dim_size, *src.shape[1:]))
    return out.index_add_(0, index, src)


def count(index: Tensor, dim_size: int, like: Tensor) -> Tensor:
    """Items per group, ``[dim_size]``, in ``like``'s dtype and device."""
    ones = like.new_ones(index.shape[0])
    return like.new_zeros(dim_size).index_add_(0, index, ones)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Mean of each group; empty groups give 0."""
    total = scatter_sum(src, index, dim_size)
    n = count(index, dim_size, src).clamp_(min=1)
    return total / n.view(-1, *([1] * (src.dim() - 1)))


def scatter_max(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Element-wise max of each group; empty groups give 0."""
    expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    out = src.new_zeros((dim_size, *src.shape[1:]))
    return out.scatter_reduce_(0, expanded, src, reduce="amax", include_self=False)


def segment_softmax(scores: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Softmax of ``scores`` ``[E, ...]`` within each group of ``index`` (numerically safe)."""
    shift = gather(scatter_max(scores, index, dim_size), index)
    weights = (scores - shift.detach()).exp()
    return weights / gather(scatter_sum(weights, index, dim_size), index).clamp_min(1e-16)
