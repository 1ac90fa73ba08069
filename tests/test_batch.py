"""PackedGraphs and GraphBatch: slicing equals collate, offsets, labels, save/load, devices."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molgraph.arrays import GraphArrays
from molgraph.batch import NODE_FIELD_NAMES, OPTIONAL_NODE_FIELDS, GraphBatch, collate
from molgraph.featurize import MoleculeFeaturizer
from molgraph.packed import PackedGraphs, Padding

BATCH_TENSORS = ("x", "src", "dst", "edge_attr", "batch")


@pytest.fixture(scope="module")
def featurizer() -> MoleculeFeaturizer:
    return MoleculeFeaturizer()


@pytest.fixture(scope="module")
def smiles(esol: pd.DataFrame) -> list[str]:
    return esol["smiles"].iloc[:20].tolist()


@pytest.fixture(scope="module")
def packed(featurizer: MoleculeFeaturizer, smiles: list[str]) -> PackedGraphs:
    return featurizer.packed(smiles)


@pytest.fixture(scope="module")
def shuffled() -> list[int]:
    # a seeded shuffle of 12 of the 20 molecules, one of them twice
    order = torch.randperm(20, generator=torch.Generator().manual_seed(0))[:12].tolist()
    return [*order, order[0]]


def assert_same_batch(actual: GraphBatch, expected: GraphBatch) -> None:
    assert actual.num_graphs == expected.num_graphs
    for name in BATCH_TENSORS:
        a, e = getattr(actual, name), getattr(expected, name)
        assert a.dtype == e.dtype, name
        torch.testing.assert_close(a, e, rtol=0, atol=0, msg=name)


def test_packed_batch_equals_collate(
    packed: PackedGraphs, featurizer: MoleculeFeaturizer, smiles: list[str], shuffled: list[int]
) -> None:
    sliced = packed.batch(shuffled)
    collated = collate([featurizer(smiles[i]) for i in shuffled])
    assert_same_batch(sliced, collated)
    assert sliced.src.dtype == torch.int64 and sliced.batch.dtype == torch.int64
    assert sliced.num_graphs == 13
    assert sliced.pos is None and collated.pos is None


def test_offsets_after_collate(
    featurizer: MoleculeFeaturizer, smiles: list[str], shuffled: list[int]
) -> None:
    graphs = [featurizer(smiles[i]) for i in shuffled]
    batch = collate(graphs)
    node_counts = [g.num_nodes() for g in graphs]
    edge_counts = [g.num_edges() for g in graphs]
    starts = np.cumsum([0, *node_counts])
    edge_starts = np.cumsum([0, *edge_counts])
    assert batch.num_nodes == starts[-1] and batch.num_edges == edge_starts[-1]
    assert batch.batch.tolist() == np.repeat(np.arange(len(graphs)), node_counts).tolist()
    for k, g in enumerate(graphs):
        edges = slice(edge_starts[k], edge_starts[k + 1])
        src, dst = batch.src[edges], batch.dst[edges]
        # every endpoint of graph k lies in graph k's node range ...
        assert bool(((src >= starts[k]) & (src < starts[k + 1])).all()), k
        assert bool(((dst >= starts[k]) & (dst < starts[k + 1])).all()), k
        # ... and is the graph's own local index shifted by the nodes before it
        local_src, local_dst = g.edges()
        assert (src - starts[k]).tolist() == local_src.tolist()
        assert (dst - starts[k]).tolist() == local_dst.tolist()
        torch.testing.assert_close(batch.x[starts[k] : starts[k + 1]], g.ndata["x"])


def test_labels_nan_becomes_masked_zero(packed: PackedGraphs, featurizer, smiles) -> None:
    y = torch.arange(40, dtype=torch.float32).view(20, 2) / 10
    y[3, 0] = y[5, 1] = y[7] = float("nan")
    indices = [7, 3, 0, 5]
    batch = packed.batch(indices, y)
    assert batch.y_mask.tolist() == [[False, False], [False, True], [True, True], [True, False]]
    expected = torch.tensor([[0.0, 0.0], [0.0, 0.7], [0.0, 0.1], [1.0, 0.0]])
    torch.testing.assert_close(batch.y, expected)
    assert not torch.isnan(batch.y).any()
    # collate handles labels the same way
    collated = collate([featurizer(smiles[i]) for i in indices], y[indices])
    torch.testing.assert_close(collated.y, batch.y)
    assert torch.equal(collated.y_mask, batch.y_mask)
    assert bool(torch.isnan(y[7]).all())  # the caller's labels keep their NaN


def test_save_load_round_trip(packed: PackedGraphs, tmp_path: Path) -> None:
    y = torch.linspace(-1, 1, 20).view(20, 1)
    y[4] = float("nan")
    path = tmp_path / "graphs.bin"
    packed.save(path, {"y": y, "row_ids": torch.arange(20) * 3})
    loaded, labels = PackedGraphs.load(path)
    assert len(loaded) == 20
    for name in ("x", "src", "dst", "edge_attr", "node_counts", "edge_counts"):
        a, e = getattr(loaded, name), getattr(packed, name)
        assert a.dtype == e.dtype, name
        torch.testing.assert_close(a, e, rtol=0, atol=0, msg=name)
    assert loaded.pos is None
    assert sorted(labels) == ["row_ids", "y"]  # the counts are not handed back as labels
    torch.testing.assert_close(labels["y"], y, equal_nan=True)
    assert labels["row_ids"].tolist() == list(range(0, 60, 3))


def test_save_load_keeps_positions(tmp_path: Path) -> None:
    packed = MoleculeFeaturizer(conformer=True).packed(["CCO", "C", "c1ccccc1O"])
    packed.save(tmp_path / "g.bin")
    loaded, labels = PackedGraphs.load(tmp_path / "g.bin")
    assert labels == {}
    torch.testing.assert_close(loaded.pos, packed.pos, rtol=0, atol=0)
    assert loaded.node_counts.tolist() == [3, 1, 7]


def test_subset_then_graph_equals_featurizer(
    packed: PackedGraphs, featurizer: MoleculeFeaturizer, smiles: list[str], shuffled: list[int]
) -> None:
    part = packed.subset(shuffled)
    assert len(part) == len(shuffled)
    assert part.node_counts.tolist() == [packed.node_counts[i].item() for i in shuffled]
    for position, i in enumerate(shuffled):
        g, expected = part.graph(position), featurizer(smiles[i])
        assert (g.num_nodes(), g.num_edges()) == (expected.num_nodes(), expected.num_edges())
        torch.testing.assert_close(g.ndata["x"], expected.ndata["x"], rtol=0, atol=0)
        torch.testing.assert_close(g.edata["e"], expected.edata["e"], rtol=0, atol=0)
        for a, e in zip(g.edges(), expected.edges(), strict=True):
            assert a.tolist() == e.tolist()


def test_concat_equals_packing_everything(featurizer, smiles, packed: PackedGraphs) -> None:
    joined = PackedGraphs.concat([featurizer.packed(smiles[:7]), featurizer.packed(smiles[7:])])
    for name in ("x", "src", "dst", "edge_attr", "node_counts", "edge_counts", "node_offsets"):
        torch.testing.assert_close(getattr(joined, name), getattr(packed, name), rtol=0, atol=0)


def test_zero_edge_and_single_node_graphs(featurizer: MoleculeFeaturizer) -> None:
    smiles = ["C", "[Na+]", "CCO"]
    packed = featurizer.packed(smiles)
    sliced = packed.batch([0, 1, 2])
    collated = collate([featurizer(s) for s in smiles])
    assert_same_batch(sliced, collated)
    assert (sliced.num_nodes, sliced.num_edges, sliced.num_graphs) == (5, 4, 3)
    assert sliced.batch.tolist() == [0, 1, 2, 2, 2]
    # ethanol's bonds C0-C1 and C1-O2, shifted past the two one-atom graphs
    assert sliced.src.tolist() == [2, 3, 3, 4]
    assert sliced.dst.tolist() == [3, 2, 4, 3]
    assert sliced.edge_attr.shape == (4, 14)

    # reversed, so the edgeless graphs come last
    reverse = packed.batch([2, 1, 0])
    assert reverse.batch.tolist() == [0, 0, 0, 1, 2]
    assert reverse.src.tolist() == [0, 1, 1, 2]


def test_batch_without_any_edge(featurizer: MoleculeFeaturizer) -> None:
    smiles = ["C", "[Na+].[Cl-]", "[Xe]"]
    sliced = featurizer.packed(smiles).batch([0, 1, 2])
    collated = collate([featurizer(s) for s in smiles])
    assert_same_batch(sliced, collated)
    assert sliced.src.shape == (0,) and sliced.dst.shape == (0,)
    assert sliced.edge_attr.shape == (0, 14)
    assert sliced.batch.tolist() == [0, 1, 1, 2]


def test_with_dtype_casts_only_floats(packed: PackedGraphs) -> None:
    y = torch.ones(20, 1)
    batch = packed.batch([0, 1], y).with_dtype(torch.float64)
    assert (batch.x.dtype, batch.edge_attr.dtype, batch.y.dtype) == (torch.float64,) * 3
    assert (batch.src.dtype, batch.batch.dtype, batch.y_mask.dtype) == (
        torch.int64,
        torch.int64,
        torch.bool,
    )
    torch.testing.assert_close(batch.x, packed.batch([0, 1]).x.double(), rtol=0, atol=0)


def test_to_cpu_keeps_values(packed: PackedGraphs) -> None:
    batch = packed.batch([3, 1, 4], torch.ones(20, 1))
    moved = batch.to("cpu")
    assert_same_batch(moved, batch)
    assert torch.equal(moved.y, batch.y) and torch.equal(moved.y_mask, batch.y_mask)
    assert moved.num_graphs == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs a CUDA device")
def test_pin_memory_keeps_values(packed: PackedGraphs) -> None:
    batch = packed.batch([3, 1, 4], torch.ones(20, 1))
    pinned = batch.pin_memory()
    assert pinned.x.is_pinned() and pinned.src.is_pinned() and pinned.y.is_pinned()
    assert_same_batch(pinned, batch)
    on_gpu = pinned.to("cuda", non_blocking=True)
    assert_same_batch(on_gpu.to("cpu"), batch)


def test_node_vectors_survive_batch_padding_save_load_and_feed_gvp(tmp_path: Path) -> None:
    from dataclasses import replace

    from molgraph.graphs import NODE_VECTORS, dgl
    from molgraph.nn import GVPEncoder
    from molgraph.packed import Padding

    base = MoleculeFeaturizer(conformer=True).packed(["CCO", "C", "c1ccccc1O"])
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(base.x.shape[0], 3, 3, generator=generator)
    packed = replace(base, node_vectors=vectors)
    arrays = packed.to_arrays()
    assert arrays["node_vectors"].shape == (11, 3, 3)
    assert torch.equal(PackedGraphs.from_arrays(arrays).node_vectors, vectors)

    batch = packed.batch([2, 0])
    expected = torch.cat([vectors[4:], vectors[:3]])
    assert torch.equal(batch.node_vectors, expected)
    padded = packed.batch([2, 0], padding=Padding(graphs=4, node_multiple=16))
    assert padded.node_vectors.shape == (16, 3, 3)
    assert torch.equal(padded.node_vectors[:10], expected)
    assert not padded.node_vectors[10:].any()  # padding nodes carry zero vectors
    assert padded.with_dtype(torch.float64).node_vectors.dtype == torch.float64

    assert torch.equal(packed.subset([1, 2]).node_vectors, vectors[3:])
    assert torch.equal(PackedGraphs.concat([packed, packed]).node_vectors[11:], vectors)
    with pytest.raises(ValueError, match="without node vectors"):
        PackedGraphs.concat([packed, base])
    packed.save(tmp_path / "g.bin")
    loaded, _ = PackedGraphs.load(tmp_path / "g.bin")
    assert torch.equal(loaded.node_vectors, vectors)
    graphs = dgl.unbatch(packed.to_dgl())
    assert graphs[2].ndata[NODE_VECTORS].shape == (7, 3, 3)
    assert torch.equal(collate(graphs[::-1]).node_vectors[:7], vectors[4:])

    encoder = GVPEncoder(packed.node_dim, packed.edge_dim, in_node_vector_dim=3)
    out = encoder(padded)
    assert torch.isfinite(out.graph).all()


def _optional(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record) if f.init and f.name in NODE_FIELD_NAMES)


def test_optional_node_fields_are_the_declared_ones() -> None:
    # PackedGraphs, GraphArrays: every field with a None default is an optional node field
    defaults_none = tuple(f.name for f in fields(PackedGraphs) if f.init and f.default is None)
    assert defaults_none == NODE_FIELD_NAMES
    arrays_defaults_none = tuple(f.name for f in fields(GraphArrays) if f.default is None)
    assert arrays_defaults_none == NODE_FIELD_NAMES
    assert _optional(GraphBatch) == NODE_FIELD_NAMES == GraphBatch.node_field_names


def test_every_optional_node_field_is_gathered_padded_subset_and_concatenated(
    packed: PackedGraphs,
) -> None:
    generator = torch.Generator().manual_seed(0)
    n = packed.x.shape[0]
    trailing = {"pos": (3,), "node_vectors": (2, 3), "node_embeddings": (5,)}
    extra = {
        f.name: torch.randn(n, *trailing[f.name], generator=generator) for f in OPTIONAL_NODE_FIELDS
    }
    full = replace(packed, **extra)
    alone = [full.subset([i]) for i in (3, 0)]
    padding = Padding(graphs=4, node_multiple=64)
    batch = full.batch([3, 0], padding=padding)
    for name, tensor in extra.items():
        expected = torch.cat([getattr(a, name) for a in alone])
        assert torch.equal(getattr(full.batch([3, 0]), name), expected)
        assert torch.equal(getattr(batch, name)[: len(expected)], expected)
        assert not getattr(batch, name)[len(expected) :].any()
        assert getattr(batch, name).shape == (64, *trailing[name])
        assert torch.equal(getattr(PackedGraphs.concat(alone), name), expected)
        assert torch.equal(getattr(full.to("cpu"), name), tensor)
    with pytest.raises(ValueError, match="with and without node embeddings"):
        PackedGraphs.concat([full.subset([0]), replace(full.subset([1]), node_embeddings=None)])
    # DGL graphs carry the fields that have an ndata key, and only those
    back = PackedGraphs.from_dgl(full.to_dgl())
    for f in OPTIONAL_NODE_FIELDS:
        assert (getattr(back, f.name) is None) == (f.ndata is None)
    assert torch.equal(GraphBatch.from_dgl(full.to_dgl()).node_vectors, extra["node_vectors"])
