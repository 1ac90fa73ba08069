"""DMPNNEncoder: reverse edges, a hand-computed update, a loop reference, isolated atoms.

Shared encoder properties: test_encoder_properties.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import permute_batch_edges, small_encoder
from torch import Tensor

from molgraph.batch import GraphBatch
from molgraph.featurize import MoleculeFeaturizer
from molgraph.nn.encoders.dmpnn import DMPNNEncoder, reverse_edges

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN = 32


def make_encoder(batch: GraphBatch, num_layers: int = 3) -> DMPNNEncoder:
    """A float64 encoder (mean readout, no norm) in eval mode."""
    return small_encoder(
        DMPNNEncoder,
        batch,
        hidden_dim=HIDDEN,
        num_layers=num_layers,
        dropout=0.2,
        readout="mean",
        norm="none",
    )


def shuffled_edges(batch: GraphBatch, seed: int) -> GraphBatch:
    perm = torch.randperm(batch.num_edges, generator=torch.Generator().manual_seed(seed))
    return permute_batch_edges(batch, perm)


def loop_reference(encoder: DMPNNEncoder, batch: GraphBatch) -> tuple[Tensor, Tensor]:
    """D-MPNN with explicit Python loops over atoms and directed bonds (mean readout).

    The neighbour sets are read off the edge list, never through a reverse-edge index:
    ``m_vw`` sums ``h_kv`` over every edge ``k → v`` whose ``k`` is not ``w``.
    """
    W_i, W_m = encoder.W_i.weight, encoder.conv.W_m.weight
    W_o, b_o = encoder.W_o.weight, encoder.W_o.bias
    edges = list(zip(batch.src.tolist(), batch.dst.tolist(), strict=True))
    h0 = [
        torch.relu(W_i @ torch.cat([batch.x[v], batch.edge_attr[e]]))
        for e, (v, _) in enumerate(edges)
    ]
    h = list(h0)
    for _ in range(encoder.num_layers - 1):
        new = []
        for e, (v, w) in enumerate(edges):
            m = torch.zeros(HIDDEN, dtype=torch.float64)
            for f, (k, into) in enumerate(edges):
                if into == v and k != w:
                    m = m + h[f]
            new.append(torch.relu(h0[e] + W_m @ m))
        h = new
    nodes = []
    for v in range(batch.num_nodes):
        m = torch.zeros(HIDDEN, dtype=torch.float64)
        for f, (_, into) in enumerate(edges):
            if into == v:
                m = m + h[f]
        nodes.append(torch.relu(W_o @ torch.cat([batch.x[v], m]) + b_o))
    node = torch.stack(nodes)
    graphs = [node[batch.batch == g].mean(0) for g in range(batch.num_graphs)]
    return node, torch.stack(graphs)


# --- reverse edges -------------------------------------------------------------------


def test_reverse_edges_of_a_featurizer_batch_pair_bonds(batch_2d: GraphBatch) -> None:
    # the featurizer stores bond k as edges 2k (begin → end) and 2k + 1 (end → begin)
    rev, found = reverse_edges(batch_2d.src, batch_2d.dst, batch_2d.num_nodes)
    assert batch_2d.num_edges > 100 and bool(found.all())
    assert torch.equal(rev, torch.arange(batch_2d.num_edges) ^ 1)


def test_reverse_edges_in_shuffled_edge_order(batch_2d: GraphBatch) -> None:
    shuffled = shuffled_edges(batch_2d, seed=3)
    rev, found = reverse_edges(shuffled.src, shuffled.dst, shuffled.num_nodes)
    assert bool(found.all())
    assert not torch.equal(rev, torch.arange(batch_2d.num_edges) ^ 1)  # pairing is gone
    assert torch.equal(shuffled.src[rev], shuffled.dst)
    assert torch.equal(shuffled.dst[rev], shuffled.src)
    assert torch.equal(rev[rev], torch.arange(batch_2d.num_edges))
    assert bool((rev != torch.arange(batch_2d.num_edges)).all())  # no edge is its own reverse


def test_reverse_edges_of_directed_and_empty_graphs() -> None:
    # 0 ⇄ 1, 1 → 2 (no 2 → 1), 3 → 3 (a loop, as padding edges are)
    src, dst = torch.tensor([1, 1, 0, 3]), torch.tensor([2, 0, 1, 3])
    rev, found = reverse_edges(src, dst, 4)
    assert found.tolist() == [False, True, True, True]
    assert rev.tolist() == [0, 2, 1, 3]
    empty = torch.zeros(0, dtype=torch.long)
    rev, found = reverse_edges(empty, empty, 3)
    assert rev.shape == found.shape == (0,)


# --- the update rule, by hand ---------------------------------------------------------


def test_one_update_on_ethanol_by_hand() -> None:
    small = MoleculeFeaturizer().packed(["CCO"]).batch([0]).with_dtype(torch.float64)
    # C0-C1 is bond 0 (edges 0: 0→1, 1: 1→0), C1-O2 bond 1 (edges 2: 1→2, 3: 2→1)
    assert small.src.tolist() == [0, 1, 1, 2] and small.dst.tolist() == [1, 0, 2, 1]
    encoder = make_encoder(small, num_layers=2)  # h^0 and one update
    W_i, W_m = encoder.W_i.weight, encoder.conv.W_m.weight
    W_o, b_o = encoder.W_o.weight, encoder.W_o.bias
    x, e = small.x, small.edge_attr
    with torch.no_grad():
        h0 = [torch.relu(W_i @ torch.cat([x[v], e[k]])) for k, v in enumerate([0, 1, 1, 2])]
        # N(v) \ w: 0→1 gets nothing (C0 has no other neighbour), 1→0 gets 2→1,
        # 1→2 gets 0→1, 2→1 gets nothing; the reverse bond is always left out
        zero = torch.zeros(HIDDEN, dtype=torch.float64)
        m = [zero, h0[3], h0[0], zero]
        h1 = [torch.relu(h0[k] + W_m @ m[k]) for k in range(4)]
        atom_m = [h1[1], h1[0] + h1[3], h1[2]]  # bonds entering each atom
        node = torch.stack([torch.relu(W_o @ torch.cat([x[v], atom_m[v]]) + b_o) for v in range(3)])
        rev, found = reverse_edges(small.src, small.dst, 3)
        keep = found.unsqueeze(-1).double()
        h0_t = torch.stack(h0)
        message = encoder.conv.message(h0_t, small.src, small.dst, rev, keep, 3)
        out = encoder(small)
    torch.testing.assert_close(message, torch.stack(m), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.node, node, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph[0], node.mean(0), rtol=0, atol=1e-12)
    assert bool((message[1] != 0).any()) and bool((out.node != 0).any())


@pytest.mark.parametrize("shuffle", [False, True])
def test_encoder_equals_loop_reference(batch_2d: GraphBatch, packed_2d, shuffle: bool) -> None:
    # three graphs, including the salt (edgeless), in featurizer or shuffled edge order
    small = packed_2d.batch([1, 9, 10]).with_dtype(torch.float64)
    small = shuffled_edges(small, seed=4) if shuffle else small
    encoder = make_encoder(batch_2d, num_layers=3)
    with torch.no_grad():
        out = encoder(small)
        node, graph = loop_reference(encoder, small)
    torch.testing.assert_close(out.node, node, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph, graph, rtol=0, atol=1e-12)


def test_directed_edge_without_reverse_excludes_nothing(batch_2d: GraphBatch, packed_2d) -> None:
    # drop phenol's edge 1 (the way back along bond 0): edge 0 then has no reverse, and
    # nothing is subtracted from its message
    small = packed_2d.batch([10]).with_dtype(torch.float64)  # phenol
    keep = torch.arange(small.num_edges) != 1
    directed = replace(
        small, src=small.src[keep], dst=small.dst[keep], edge_attr=small.edge_attr[keep]
    )
    encoder = make_encoder(batch_2d, num_layers=3)
    with torch.no_grad():
        out = encoder(directed)
        node, graph = loop_reference(encoder, directed)
        undirected = encoder(small)
    torch.testing.assert_close(out.node, node, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph, graph, rtol=0, atol=1e-12)
    assert (out.graph - undirected.graph).abs().max() > 1e-6


# --- permutations and batching ----------------------------------------------------------


@pytest.mark.parametrize(
    ("smiles", "isolated_atoms", "first_graph_atoms"),
    [(["C"], 1, 1), (["[Na+].[Cl-]"], 2, 2), (["C", "[Xe]", "CCO"], 2, 1)],
)
def test_single_node_and_edgeless_graphs(
    batch_2d: GraphBatch, smiles: list[str], isolated_atoms: int, first_graph_atoms: int
) -> None:
    encoder = make_encoder(batch_2d)
    small = MoleculeFeaturizer().packed(smiles).batch(range(len(smiles)))
    small = small.with_dtype(torch.float64)
    with torch.no_grad():
        out = encoder(small)
        # an atom without bonds: h_v = ReLU(W_o [x_v || 0])
        isolated = torch.relu(encoder.W_o(torch.cat([small.x, torch.zeros_like(out.node)], -1)))
    atoms, first = isolated_atoms, first_graph_atoms
    assert out.node.shape == (small.num_nodes, HIDDEN)
    assert out.graph.shape == (len(smiles), HIDDEN)
    torch.testing.assert_close(out.node[:atoms], isolated[:atoms], rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph[0], out.node[:first].mean(0), rtol=0, atol=1e-12)
    assert bool(torch.isfinite(out.node).all()) and bool((out.node[:atoms] > 0).any())


def test_invalid_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        DMPNNEncoder(10, 4, num_layers=0)


def test_default_readout_is_chemprops_sum_over_100(batch_2d: GraphBatch) -> None:
    encoder = small_encoder(DMPNNEncoder, batch_2d, hidden_dim=HIDDEN)
    normed = encoder(batch_2d).graph
    encoder.readout.kind = "sum"
    summed = encoder(batch_2d).graph
    assert summed.abs().max() > 1
    torch.testing.assert_close(normed, summed / 100)
