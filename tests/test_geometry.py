"""molgraph.geometry: radial bases on a fixed range, edge vectors, norms safe at zero; the
numpy side (dihedrals, local frames, quaternions, neighbour search)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import random_rotation

from molgraph.geometry import (
    cosine_cutoff,
    dihedrals,
    edge_vectors,
    local_frames,
    neighbour_pairs,
    norms,
    rbf,
    rotation_quaternions,
    safe_norm,
    sinc_rbf,
    unit,
    unit_vectors,
)

F64 = torch.float64


def test_rbf_shape_centres_and_width() -> None:
    d = torch.linspace(0.0, 12.0, 7, dtype=F64)
    out = rbf(d, d_min=0.0, d_max=12.0, num=4)
    assert out.shape == (7, 4) and out.dtype == F64
    # centres 0, 4, 8, 12; default width (d_max - d_min) / num = 3
    centres = torch.tensor([0.0, 4.0, 8.0, 12.0], dtype=F64)
    at_centres = rbf(centres, d_min=0.0, d_max=12.0, num=4)
    torch.testing.assert_close(torch.diagonal(at_centres), torch.ones(4, dtype=F64))
    one_width_off = rbf(torch.tensor([7.0], dtype=F64), 0.0, 12.0, 4)  # 1 width below 8 Å
    expected = torch.exp(-torch.tensor([7.0, 3.0, 1.0, 5.0], dtype=F64).div(3.0).square())
    torch.testing.assert_close(one_width_off[0], expected, rtol=0, atol=1e-15)
    assert one_width_off[0, 2] == pytest.approx(math.exp(-1 / 9), abs=1e-15)
    # an explicit width
    narrow = rbf(torch.tensor([5.0], dtype=F64), 0.0, 12.0, 4, width=1.0)
    assert narrow[0, 1] == pytest.approx(math.exp(-1.0), abs=1e-15)


def test_rbf_range_and_nearest_centre() -> None:
    d = torch.linspace(0.0, 30.0, 301, dtype=F64)
    out = rbf(d)  # defaults: 16 centres on 0-20 Å (GVP's)
    assert out.shape == (301, 16)
    assert bool((out > 0).all()) and bool((out <= 1).all())
    centres = torch.linspace(0.0, 20.0, 16, dtype=F64)
    inside = d <= 20.0
    nearest = (d[inside, None] - centres).abs().argmin(-1)
    assert torch.equal(out[inside].argmax(-1), nearest)
    # beyond the range, features decay smoothly to zero (no clipping to the last centre)
    assert out[-1].max() < 1e-20 and out[-1, -1] < out[200, -1]


def test_rbf_has_a_fixed_range_not_a_per_batch_one() -> None:
    # STYLE: never normalised by a per-graph maximum: a distance's features do not depend
    # on what else is in the tensor
    short = torch.tensor([1.5], dtype=F64)
    with_long = torch.tensor([1.5, 40.0], dtype=F64)
    assert torch.equal(rbf(short)[0], rbf(with_long)[0])
    assert rbf(torch.zeros(2, 3, dtype=F64), num=5).shape == (2, 3, 5)  # any leading shape


def test_rbf_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError, match="at least 2 centres"):
        rbf(torch.ones(3), num=1)
    with pytest.raises(ValueError, match="d_max > d_min"):
        rbf(torch.ones(3), d_min=5.0, d_max=5.0)


def test_edge_vectors_on_a_hand_example() -> None:
    pos = torch.tensor([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [1.0, 1.0, 1.0]], dtype=F64)
    src = torch.tensor([0, 1, 2, 0, 2])
    dst = torch.tensor([1, 0, 0, 0, 1])
    vec, dist = edge_vectors(pos, src, dst)
    # edge j -> i (src j, dst i) has vector x_i - x_j
    expected = torch.tensor(
        [[3.0, 4.0, 0.0], [-3.0, -4.0, 0.0], [-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [2, 3, -1]],
        dtype=F64,
    )
    assert torch.equal(vec, expected)
    torch.testing.assert_close(
        dist, torch.tensor([5.0, 5.0, math.sqrt(3), 0.0, math.sqrt(14)], dtype=F64)
    )
    assert dist[3] == 0.0  # exact at zero length (no epsilon added)


def test_edge_vectors_rotate_and_distances_are_invariant() -> None:
    generator = torch.Generator().manual_seed(0)
    pos = torch.randn(6, 3, generator=generator, dtype=F64)
    src, dst = torch.tensor([0, 1, 2, 3, 4, 5, 0]), torch.tensor([1, 2, 3, 4, 5, 0, 3])
    rotation, shift = random_rotation(3), torch.tensor([1.0, -2.0, 5.0], dtype=F64)
    vec, dist = edge_vectors(pos, src, dst)
    vec_moved, dist_moved = edge_vectors(pos @ rotation.T + shift, src, dst)
    torch.testing.assert_close(vec_moved, vec @ rotation.T, rtol=0, atol=1e-14)
    torch.testing.assert_close(dist_moved, dist, rtol=0, atol=1e-14)
    torch.testing.assert_close(dist, torch.linalg.vector_norm(vec, dim=-1), rtol=0, atol=1e-15)


def test_no_nan_gradient_at_zero_distance() -> None:
    # a self-loop (the padding edges of padded batches) and two coincident atoms
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [1.0, 2.0, 2.0]], dtype=F64)
    pos.requires_grad_(True)
    src, dst = torch.tensor([0, 1, 1, 2]), torch.tensor([0, 2, 0, 0])
    vec, dist = edge_vectors(pos, src, dst)
    assert dist[0] == 0.0 and dist[1] == 0.0 and dist[2] == 3.0
    total = (
        dist.sum()
        + rbf(dist, 0.0, 5.0, 8).sum()
        + sinc_rbf(dist, 5.0, 6).sum()
        + cosine_cutoff(dist, 5.0).sum()
        + unit(vec).sum()
    )
    (grad,) = torch.autograd.grad(total, pos, retain_graph=True)
    assert bool(torch.isfinite(grad).all())
    # the zero-length edges contribute nothing to d(dist)/d(pos); the 3 Å edge does
    (grad_dist,) = torch.autograd.grad(dist[:2].sum(), pos, retain_graph=True)
    assert torch.equal(grad_dist, torch.zeros_like(pos))
    (grad_dist,) = torch.autograd.grad(dist[2], pos)
    torch.testing.assert_close(grad_dist[0], -torch.tensor([1.0, 2.0, 2.0], dtype=F64) / 3)


def test_safe_norm_is_exact_and_differentiable_away_from_zero() -> None:
    generator = torch.Generator().manual_seed(1)
    v = torch.randn(5, 4, 3, generator=generator, dtype=F64)
    torch.testing.assert_close(
        safe_norm(v), torch.linalg.vector_norm(v, dim=-1), rtol=0, atol=1e-15
    )
    assert safe_norm(v, dim=1, keepdim=True).shape == (5, 1, 3)
    assert torch.autograd.gradcheck(safe_norm, (v.requires_grad_(True),))


def test_unit_vectors() -> None:
    generator = torch.Generator().manual_seed(2)
    v = torch.cat([torch.randn(4, 3, generator=generator, dtype=F64), torch.zeros(1, 3, dtype=F64)])
    u = unit(v)
    torch.testing.assert_close(
        torch.linalg.vector_norm(u[:4], dim=-1), torch.ones(4, dtype=F64), rtol=0, atol=1e-15
    )
    assert torch.equal(u[4], torch.zeros(3, dtype=F64))  # the zero vector stays zero
    rotation = random_rotation(4)
    torch.testing.assert_close(unit(v @ rotation.T), u @ rotation.T, rtol=0, atol=1e-15)
    # channels first, xyz in the middle: dim selects the axis
    w = v.T.unsqueeze(0)  # [1, 3, 5]
    torch.testing.assert_close(unit(w, dim=1)[0].T, u, rtol=0, atol=0)


def test_sinc_rbf_values_and_zero_limit() -> None:
    d = torch.tensor([0.0, 1e-7, 1.0, 2.5], dtype=F64)
    out = sinc_rbf(d, cutoff=5.0, num=3)
    assert out.shape == (4, 3)
    n = torch.arange(1, 4, dtype=F64)
    torch.testing.assert_close(out[2], torch.sin(n * math.pi / 5.0), rtol=0, atol=1e-15)
    torch.testing.assert_close(out[3], torch.sin(n * math.pi / 2.0) / 2.5, rtol=0, atol=1e-15)
    torch.testing.assert_close(out[0], n * math.pi / 5.0, rtol=0, atol=1e-15)  # the limit
    torch.testing.assert_close(out[1], out[0], rtol=0, atol=1e-12)  # continuous at 0


def test_cosine_cutoff() -> None:
    d = torch.tensor([0.0, 1.25, 2.5, 4.999, 5.0, 7.0], dtype=F64)
    out = cosine_cutoff(d, cutoff=5.0)
    assert out[0] == 1.0 and out[2] == pytest.approx(0.5, abs=1e-15)
    assert out[1] == pytest.approx(0.5 * (math.cos(math.pi / 4) + 1), abs=1e-15)
    assert 0 < out[3] < 1e-6 and out[4] == 0.0 and out[5] == 0.0
    assert bool((out[:-1] >= out[1:]).all())  # non-increasing


# --- numpy functions ---------------------------------------------------------------------


def _points(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=5.0, size=(n, 3))


def _rotation_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        1,
    )


def test_unit_vectors_are_zero_for_zero_and_nan() -> None:
    v = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [np.nan, 1.0, 0.0], [1e-9, 0.0, 0.0]])
    np.testing.assert_array_equal(unit_vectors(v), [[0.6, 0.8, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert norms(v)[0] == 5.0 and np.isnan(norms(v)[2])


def test_dihedral_of_known_angles_and_undefined_cases() -> None:
    p0, p1, p2 = np.array([[1.0, 0, 0]]), np.array([[0.0, 0, 0]]), np.array([[0.0, 0, 1]])
    for degrees in (-120.0, -30.0, 0.0, 90.0, 180.0):
        t = np.radians(degrees)
        p3 = np.array([[np.cos(t), np.sin(t), 1.0]])
        np.testing.assert_allclose(dihedrals(p0, p1, p2, p3)[0], [np.sin(t), np.cos(t)], atol=1e-12)
    collinear = dihedrals(p0, p1, p0 * 2, p0 * 3)
    assert np.isnan(collinear).all()


def test_frames_orthonormal_right_handed_and_equivariant() -> None:
    n, ca, c = _points(8, 0), _points(8, 1), _points(8, 2)
    frames, valid = local_frames(n, ca, c)
    assert valid.all()
    np.testing.assert_allclose(
        frames.transpose(0, 2, 1) @ frames, np.broadcast_to(np.eye(3), (8, 3, 3)), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(frames), 1.0, atol=1e-12)
    rotation = random_rotation(3).numpy()
    moved, _ = local_frames(n @ rotation.T + 1.0, ca @ rotation.T + 1.0, c @ rotation.T + 1.0)
    np.testing.assert_allclose(moved, rotation @ frames, atol=1e-12)
    missing = n.copy()
    missing[0] = np.nan
    frames, valid = local_frames(missing, ca, c)
    assert not valid[0] and valid[1:].all() and not frames[0].any()


def test_quaternions_give_back_their_rotations_with_w_non_negative() -> None:
    rotations = np.stack([random_rotation(seed).numpy() for seed in range(32)])
    # the four branches of Shepperd's method: identity and half-turns about x, y, z
    rotations = np.concatenate(
        [
            rotations,
            np.eye(3)[None],
            np.diag([1.0, -1, -1])[None],
            np.diag([-1.0, 1, -1])[None],
            np.diag([-1.0, -1, 1])[None],
        ]
    )
    q = rotation_quaternions(rotations)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    assert (q[:, 0] >= 0).all()
    np.testing.assert_allclose(_rotation_matrix(q), rotations, atol=1e-12)


@pytest.mark.parametrize(("k", "radius"), [(5, None), (30, None), (None, 6.0)])
def test_neighbour_pairs_equal_brute_force_across_blocks(k, radius) -> None:
    points = _points(23, 4)
    src, dst = neighbour_pairs(points, k=k, radius=radius, block=4)
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    if k is None:
        expected = {(j, i) for i, j in zip(*np.nonzero(d <= radius), strict=True)}
    else:
        expected = {(int(j), i) for i in range(23) for j in np.argsort(d[i])[: min(k, 22)]}
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == expected
    assert len(src) == len(expected) and src.dtype == dst.dtype == np.int64


def test_neighbour_pairs_needs_one_rule_and_handles_tiny_inputs() -> None:
    with pytest.raises(ValueError, match="exactly one of k and radius"):
        neighbour_pairs(_points(3, 0), k=2, radius=1.0)
    src, dst = neighbour_pairs(_points(1, 0), k=3)
    assert src.shape == dst.shape == (0,)
