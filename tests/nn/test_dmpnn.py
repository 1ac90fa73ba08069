"""DMPNNEncoder: reverse edges, a hand-computed update, permutations, batching, overfitting."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import torch
from helpers import (
    ESOL_TARGET,
    assert_invariant,
    permute_batch_edges,
    permute_batch_nodes,
    within_graph_permutation,
)
from omegaconf import OmegaConf
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.builder import build, config_dir
from molgraph.featurize import MoleculeFeaturizer
from molgraph.nn.encoders.dmpnn import DMPNNEncoder, reverse_edges
from molgraph.packed import PackedGraphs, Padding

HIDDEN = 32
READOUTS = ("sum", "mean", "max", "attention", "set2set")
NORMS = ("batch", "layer", "none")
# a few ESOL molecules plus a single atom, a salt (two edgeless one-atom graphs in one)
# and an aromatic ring
EXTRA = ["C", "[Na+].[Cl-]", "c1ccccc1O"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny graphs: one thread avoids spin-waiting OpenMP threads on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def packed(esol: pd.DataFrame) -> PackedGraphs:
    return MoleculeFeaturizer().packed([*esol["smiles"].iloc[:8], *EXTRA])


@pytest.fixture(scope="module")
def batch(packed: PackedGraphs) -> GraphBatch:
    return packed.batch(range(len(packed))).with_dtype(torch.float64)


def make_encoder(
    batch: GraphBatch, readout: str = "mean", norm: str = "none", num_layers: int = 3
) -> DMPNNEncoder:
    """A float64 encoder in eval mode (batch-norm statistics moved off their defaults)."""
    torch.manual_seed(0)
    encoder = DMPNNEncoder(
        batch.x.shape[1],
        batch.edge_attr.shape[1],
        hidden_dim=HIDDEN,
        num_layers=num_layers,
        dropout=0.2,
        readout=readout,
        norm=norm,
    ).double()
    with torch.no_grad():
        for _ in range(3):
            encoder(batch)
    return encoder.eval()


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


def test_reverse_edges_of_a_featurizer_batch_pair_bonds(batch: GraphBatch) -> None:
    # the featurizer stores bond k as edges 2k (begin → end) and 2k + 1 (end → begin)
    rev, found = reverse_edges(batch.src, batch.dst, batch.num_nodes)
    assert batch.num_edges > 100 and bool(found.all())
    assert torch.equal(rev, torch.arange(batch.num_edges) ^ 1)


def test_reverse_edges_in_shuffled_edge_order(batch: GraphBatch) -> None:
    shuffled = shuffled_edges(batch, seed=3)
    rev, found = reverse_edges(shuffled.src, shuffled.dst, shuffled.num_nodes)
    assert bool(found.all())
    assert not torch.equal(rev, torch.arange(batch.num_edges) ^ 1)  # pairing is gone
    assert torch.equal(shuffled.src[rev], shuffled.dst)
    assert torch.equal(shuffled.dst[rev], shuffled.src)
    assert torch.equal(rev[rev], torch.arange(batch.num_edges))
    assert bool((rev != torch.arange(batch.num_edges)).all())  # no edge is its own reverse


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
def test_encoder_equals_loop_reference(batch: GraphBatch, packed, shuffle: bool) -> None:
    # three graphs, including the salt (edgeless), in featurizer or shuffled edge order
    small = packed.batch([1, 9, 10]).with_dtype(torch.float64)
    small = shuffled_edges(small, seed=4) if shuffle else small
    encoder = make_encoder(batch, num_layers=3)
    with torch.no_grad():
        out = encoder(small)
        node, graph = loop_reference(encoder, small)
    torch.testing.assert_close(out.node, node, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph, graph, rtol=0, atol=1e-12)


def test_directed_edge_without_reverse_excludes_nothing(batch: GraphBatch, packed) -> None:
    # drop phenol's edge 1 (the way back along bond 0): edge 0 then has no reverse, and
    # nothing is subtracted from its message
    small = packed.batch([10]).with_dtype(torch.float64)  # phenol
    keep = torch.arange(small.num_edges) != 1
    directed = replace(
        small, src=small.src[keep], dst=small.dst[keep], edge_attr=small.edge_attr[keep]
    )
    encoder = make_encoder(batch, num_layers=3)
    with torch.no_grad():
        out = encoder(directed)
        node, graph = loop_reference(encoder, directed)
        undirected = encoder(small)
    torch.testing.assert_close(out.node, node, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph, graph, rtol=0, atol=1e-12)
    assert (out.graph - undirected.graph).abs().max() > 1e-6


# --- permutations and batching ----------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("readout", READOUTS)
def test_node_permutation_leaves_graph_output(batch: GraphBatch, readout: str, norm: str) -> None:
    encoder = make_encoder(batch, readout, norm)
    with torch.no_grad():
        for seed in range(2):
            perm = within_graph_permutation(batch, seed)
            assert not torch.equal(perm, torch.arange(batch.num_nodes))
            permuted = permute_batch_nodes(batch, perm)
            assert_invariant(lambda b: encoder(b).graph, batch, permuted, atol=1e-10)
            torch.testing.assert_close(
                encoder(permuted).node, encoder(batch).node[perm], rtol=0, atol=1e-10
            )


@pytest.mark.parametrize("readout", READOUTS)
def test_node_permutation_across_graphs(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout)
    perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        permuted = permute_batch_nodes(batch, perm)
        assert_invariant(lambda b: encoder(b).graph, batch, permuted, atol=1e-10)
        torch.testing.assert_close(
            encoder(permuted).node, encoder(batch).node[perm], rtol=0, atol=1e-10
        )


@pytest.mark.parametrize("readout", READOUTS)
def test_edge_permutation_leaves_outputs(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout)
    with torch.no_grad():
        for seed in range(3):
            permuted = shuffled_edges(batch, seed)
            assert_invariant(lambda b: encoder(b).graph, batch, permuted, atol=1e-10)
            assert_invariant(lambda b: encoder(b).node, batch, permuted, atol=1e-10)


@pytest.mark.parametrize("readout", READOUTS)
def test_graph_alone_equals_graph_in_batch(
    packed: PackedGraphs, batch: GraphBatch, readout: str
) -> None:
    encoder = make_encoder(batch, readout, norm="batch")
    with torch.no_grad():
        together = encoder(batch)
        starts = torch.cumsum(packed.node_counts, 0) - packed.node_counts
        for k in (0, 5, 8, 9, 10):  # includes the single atom (8) and the salt (9)
            alone = encoder(packed.batch([k]).with_dtype(torch.float64))
            nodes = slice(int(starts[k]), int(starts[k] + packed.node_counts[k]))
            torch.testing.assert_close(alone.graph[0], together.graph[k], rtol=0, atol=1e-10)
            torch.testing.assert_close(alone.node, together.node[nodes], rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("smiles", "isolated_atoms", "first_graph_atoms"),
    [(["C"], 1, 1), (["[Na+].[Cl-]"], 2, 2), (["C", "[Xe]", "CCO"], 2, 1)],
)
def test_single_node_and_edgeless_graphs(
    batch: GraphBatch, smiles: list[str], isolated_atoms: int, first_graph_atoms: int
) -> None:
    encoder = make_encoder(batch)
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


@pytest.mark.parametrize("readout", READOUTS)
def test_output_shapes(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout)
    with torch.no_grad():
        out = encoder(batch)
    width = 2 * HIDDEN if readout == "set2set" else HIDDEN
    assert encoder.out_dim == width
    assert out.node.shape == (batch.num_nodes, HIDDEN)
    assert out.graph.shape == (batch.num_graphs, width) == (11, width)
    assert out.node.dtype == out.graph.dtype == torch.float64
    assert out.pos is None
    assert DMPNNEncoder.requires_positions is False


def test_padded_batch_matches_plain_batch_in_training(packed: PackedGraphs) -> None:
    torch.manual_seed(0)
    encoder = DMPNNEncoder(packed.node_dim, packed.edge_dim, hidden_dim=HIDDEN, norm="batch")
    encoder.double().train()
    indices = [0, 3, 8, 9, 10, 4]
    plain = packed.batch(indices).with_dtype(torch.float64)
    padded = packed.batch(indices, padding=Padding(graphs=9, node_multiple=64))
    padded = padded.with_dtype(torch.float64)
    assert padded.num_nodes > plain.num_nodes and padded.num_edges > plain.num_edges
    out_plain, out_padded = encoder(plain), encoder(padded)
    torch.testing.assert_close(
        out_padded.graph[: len(indices)], out_plain.graph, rtol=0, atol=1e-10
    )
    torch.testing.assert_close(
        out_padded.node[: plain.num_nodes], out_plain.node, rtol=0, atol=1e-10
    )


def test_invalid_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        DMPNNEncoder(10, 4, num_layers=0)


def test_overfits_32_esol_molecules(esol: pd.DataFrame) -> None:
    frame = esol.iloc[:32]
    packed = MoleculeFeaturizer().packed(frame["smiles"].tolist())
    y = torch.tensor(frame[ESOL_TARGET].to_numpy(), dtype=torch.float32).view(-1, 1)
    y = (y - y.mean()) / y.std()
    batch = packed.batch(range(32), y)
    torch.manual_seed(0)
    encoder = DMPNNEncoder(packed.node_dim, packed.edge_dim, hidden_dim=64)
    head = nn.Linear(encoder.out_dim, 1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(head(encoder(batch).graph), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if loss.item() < 0.05:
            break
    assert losses[0] > 0.5  # starts far from the (standardised) targets
    assert losses[-1] < 0.05, f"training MSE after {len(losses)} steps: {losses[-1]:.4f}"


def test_config_builds_the_encoder() -> None:
    cfg = OmegaConf.load(config_dir() / "encoder" / "dmpnn.yaml")
    featurizer = MoleculeFeaturizer()
    encoder = build(cfg, in_node_dim=featurizer.node_dim, in_edge_dim=featurizer.edge_dim)
    assert isinstance(encoder, DMPNNEncoder)
    # chemprop's defaults
    assert encoder.out_dim == 300 and encoder.num_layers == 3
    assert encoder.readout.kind == "mean" and isinstance(encoder.dropout, nn.Identity)
    assert encoder.W_i.in_features == featurizer.node_dim + featurizer.edge_dim
    out = encoder.eval()(featurizer.packed(["CCO", "C"]).batch([0, 1]))
    assert out.graph.shape == (2, 300)
