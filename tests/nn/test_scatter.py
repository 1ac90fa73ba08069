"""Scatter primitives and segment softmax against plain loops (float64, seeded data)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from molgraph.nn.scatter import (
    count,
    gather,
    scatter_max,
    scatter_mean,
    scatter_sum,
    segment_softmax,
)

NUM_GROUPS = 7
EMPTY = (2, 6)  # groups that receive no item


def data(seed: int, shape: tuple[int, ...] = (4,)) -> tuple[Tensor, Tensor]:
    """40 items of ``shape`` spread over groups 0-6, none in groups 2 and 6, unsorted."""
    generator = torch.Generator().manual_seed(seed)
    groups = torch.tensor([g for g in range(NUM_GROUPS) if g not in EMPTY])
    index = groups[torch.randint(len(groups), (40,), generator=generator)]
    src = torch.randn((40, *shape), generator=generator, dtype=torch.float64) * 3
    return src, index


def naive(src: Tensor, index: Tensor, reduce: str) -> Tensor:
    out = torch.zeros((NUM_GROUPS, *src.shape[1:]), dtype=src.dtype)
    for g in range(NUM_GROUPS):
        rows = [src[i] for i in range(len(index)) if index[i] == g]
        if not rows:
            continue  # empty group: 0
        stacked = torch.stack(rows)
        if reduce == "sum":
            out[g] = stacked.sum(0)
        elif reduce == "mean":
            out[g] = stacked.sum(0) / len(rows)
        else:
            out[g] = stacked.max(0).values
    return out


@pytest.mark.parametrize(
    ("reduce", "fn"), [("sum", scatter_sum), ("mean", scatter_mean), ("max", scatter_max)]
)
@pytest.mark.parametrize("shape", [(), (4,), (3, 2)])
@pytest.mark.parametrize("seed", [0, 1])
def test_scatter_against_loop(reduce: str, fn, shape: tuple[int, ...], seed: int) -> None:
    src, index = data(seed, shape)
    out = fn(src, index, NUM_GROUPS)
    assert out.shape == (NUM_GROUPS, *shape) and out.dtype == torch.float64
    torch.testing.assert_close(out, naive(src, index, reduce), rtol=0, atol=1e-12)
    for g in EMPTY:
        assert bool((out[g] == 0).all())


def test_scatter_max_of_negative_values_is_not_clipped_at_zero() -> None:
    # the zeros an empty group gets must not leak into groups that have items
    src = torch.tensor([[-3.0], [-1.0], [-2.0]], dtype=torch.float64)
    out = scatter_max(src, torch.tensor([0, 0, 2]), 3)
    assert out.view(-1).tolist() == [-1.0, 0.0, -2.0]


def test_count_and_gather() -> None:
    src, index = data(0)
    counts = count(index, NUM_GROUPS, src)
    expected = [sum(int(i) == g for i in index) for g in range(NUM_GROUPS)]
    assert counts.tolist() == expected and counts.dtype == torch.float64
    assert counts[list(EMPTY)].tolist() == [0.0, 0.0]
    torch.testing.assert_close(gather(src, index), src.new_tensor(src[index].tolist()))


@pytest.mark.parametrize("shape", [(), (4,)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segment_softmax_against_loop(shape: tuple[int, ...], seed: int) -> None:
    scores, index = data(seed, shape)
    weights = segment_softmax(scores, index, NUM_GROUPS)
    expected = torch.empty_like(scores)
    for g in range(NUM_GROUPS):
        members = [i for i in range(len(index)) if index[i] == g]
        if members:
            expected[members] = torch.softmax(scores[members], dim=0)
    torch.testing.assert_close(weights, expected, rtol=0, atol=1e-12)
    sums = scatter_sum(weights, index, NUM_GROUPS)
    for g in range(NUM_GROUPS):
        target = 0.0 if g in EMPTY else 1.0
        torch.testing.assert_close(sums[g], torch.full_like(sums[g], target), rtol=0, atol=1e-12)


def test_segment_softmax_is_shift_safe() -> None:
    # scores far beyond exp's range: the per-group max shift keeps them finite
    scores = torch.tensor([1000.0, 1001.0, -1000.0, -1002.0], dtype=torch.float64)
    weights = segment_softmax(scores, torch.tensor([0, 0, 1, 1]), 2)
    assert bool(torch.isfinite(weights).all())
    e = torch.exp(torch.tensor(-1.0, dtype=torch.float64))
    expected = torch.stack([e / (1 + e), 1 / (1 + e), 1 / (1 + e**2), e**2 / (1 + e**2)])
    torch.testing.assert_close(weights, expected, rtol=0, atol=1e-15)


def test_gradients_flow_to_sources() -> None:
    src, index = data(3)
    src.requires_grad_(True)
    scatter_sum(src, index, NUM_GROUPS).sum().backward()
    torch.testing.assert_close(src.grad, torch.ones_like(src))
