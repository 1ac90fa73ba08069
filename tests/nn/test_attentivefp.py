"""AttentiveFPEncoder: attention layers by loops, permutations, batching, overfitting."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
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
from molgraph.nn.encoders.attentivefp import AttentiveFPEncoder, AttentiveGATConv, GATEConv
from molgraph.packed import PackedGraphs, Padding

HIDDEN = 32
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
    batch: GraphBatch, num_layers: int = 3, dropout: float = 0.2
) -> AttentiveFPEncoder:
    """A float64 encoder in eval mode, biases moved off zero so that they are tested."""
    torch.manual_seed(0)
    encoder = AttentiveFPEncoder(
        batch.x.shape[1],
        batch.edge_attr.shape[1],
        hidden_dim=HIDDEN,
        num_layers=num_layers,
        num_timesteps=2,
        dropout=dropout,
    ).double()
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if name.endswith("bias") and not name.startswith(("node_proj", "gate_gru")):
                p.normal_(0.0, 0.1)
    return encoder.eval()


def softmax_loop(scores: list[Tensor]) -> list[Tensor]:
    if not scores:  # an atom without bonds
        return []
    top = max(float(s) for s in scores)
    weights = [torch.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def gate_reference(conv: GATEConv, h: Tensor, batch: GraphBatch) -> Tensor:
    """GATEConv by loops: for each atom, its incoming bonds, their scores and a softmax."""
    edges = list(zip(batch.src.tolist(), batch.dst.tolist(), strict=True))
    out = []
    for i in range(h.shape[0]):
        incoming = [e for e, (_, d) in enumerate(edges) if d == i]
        n = {
            e: F.leaky_relu(conv.W_1.weight @ torch.cat([h[edges[e][0]], batch.edge_attr[e]]))
            for e in incoming
        }
        scores = [
            F.leaky_relu(conv.att_l @ n[e] + conv.att_r @ h[i], negative_slope=0.01)
            for e in incoming
        ]
        c = conv.bias.clone()
        for e, a in zip(incoming, softmax_loop(scores), strict=True):
            c = c + a * (conv.W_2.weight @ n[e])
        out.append(c)
    return torch.stack(out)


def gat_reference(
    conv: AttentiveGATConv, h_src: Tensor, h_dst: Tensor, src: Tensor, dst: Tensor
) -> Tensor:
    """AttentiveGATConv by loops over targets and their sources."""
    edges = list(zip(src.tolist(), dst.tolist(), strict=True))
    W = conv.W.weight
    out = []
    for i in range(h_dst.shape[0]):
        sources = [j for j, d in edges if d == i]
        scores = [
            F.leaky_relu(conv.att_src @ (W @ h_src[j]) + conv.att_dst @ (W @ h_dst[i]), 0.01)
            for j in sources
        ]
        c = conv.bias.clone()
        for j, a in zip(sources, softmax_loop(scores), strict=True):
            c = c + a * (W @ h_src[j])
        out.append(c)
    return torch.stack(out)


def encoder_reference(encoder: AttentiveFPEncoder, batch: GraphBatch) -> tuple[Tensor, Tensor]:
    """The whole encoder with the attention layers computed by loops (eval mode)."""
    h = F.leaky_relu(encoder.node_proj(batch.x))
    h = torch.relu(encoder.gate_gru(F.elu(gate_reference(encoder.gate_conv, h, batch)), h))
    for conv, gru in zip(encoder.atom_convs, encoder.atom_grus, strict=True):
        h = torch.relu(gru(F.elu(gat_reference(conv, h, h, batch.src, batch.dst)), h))
    g = torch.relu(torch.stack([h[batch.batch == k].sum(0) for k in range(batch.num_graphs)]))
    atoms = torch.arange(batch.num_nodes)
    for _ in range(encoder.num_timesteps):
        c = F.elu(gat_reference(encoder.mol_conv, h, g, atoms, batch.batch))
        g = torch.relu(encoder.mol_gru(c, g))
    return h, g


# --- the equations, by loops ------------------------------------------------------------


def test_encoder_equals_loop_reference(batch: GraphBatch, packed: PackedGraphs) -> None:
    # phenol, the salt (edgeless) and a single atom, edges in shuffled order
    small = packed.batch([10, 9, 8, 2]).with_dtype(torch.float64)
    perm = torch.randperm(small.num_edges, generator=torch.Generator().manual_seed(2))
    small = permute_batch_edges(small, perm)
    encoder = make_encoder(batch)
    with torch.no_grad():
        out = encoder(small)
        node, graph = encoder_reference(encoder, small)
    torch.testing.assert_close(out.node, node, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph, graph, rtol=0, atol=1e-12)
    assert bool((out.graph != 0).any())


def test_attention_weights_on_ethanol() -> None:
    # C1 has two incoming bonds (from C0 and O2), C0 and O2 one each: weights 1 there
    small = MoleculeFeaturizer().packed(["CCO"]).batch([0]).with_dtype(torch.float64)
    encoder = make_encoder(small)
    conv = encoder.gate_conv
    with torch.no_grad():
        h = F.leaky_relu(encoder.node_proj(small.x))
        alpha = conv.attention(conv.neighbour(h, small.src, small.edge_attr), h, small.dst)
    by_target = {d: [] for d in range(3)}
    for e, d in enumerate(small.dst.tolist()):
        by_target[d].append(float(alpha[e, 0]))
    assert by_target[0] == [1.0] and by_target[2] == [1.0]
    assert len(by_target[1]) == 2 and abs(sum(by_target[1]) - 1.0) < 1e-12
    assert min(by_target[1]) > 0.0 and abs(by_target[1][0] - by_target[1][1]) > 1e-6


# --- permutations and batching ----------------------------------------------------------


def test_node_permutation_leaves_graph_output(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    with torch.no_grad():
        reference = encoder(batch)
        for seed in range(3):
            perm = within_graph_permutation(batch, seed)
            assert not torch.equal(perm, torch.arange(batch.num_nodes))
            permuted = encoder(permute_batch_nodes(batch, perm))
            torch.testing.assert_close(permuted.graph, reference.graph, rtol=0, atol=1e-10)
            torch.testing.assert_close(permuted.node, reference.node[perm], rtol=0, atol=1e-10)


def test_node_permutation_across_graphs(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        permuted = permute_batch_nodes(batch, perm)
        assert_invariant(lambda b: encoder(b).graph, batch, permuted, atol=1e-10)
        torch.testing.assert_close(
            encoder(permuted).node, encoder(batch).node[perm], rtol=0, atol=1e-10
        )


def test_edge_permutation_leaves_outputs(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            perm = torch.randperm(batch.num_edges, generator=generator)
            permuted = permute_batch_edges(batch, perm)
            assert_invariant(lambda b: encoder(b).graph, batch, permuted, atol=1e-10)
            assert_invariant(lambda b: encoder(b).node, batch, permuted, atol=1e-10)


def test_graph_alone_equals_graph_in_batch(packed: PackedGraphs, batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    with torch.no_grad():
        together = encoder(batch)
        starts = torch.cumsum(packed.node_counts, 0) - packed.node_counts
        for k in (0, 5, 8, 9, 10):  # includes the single atom (8) and the salt (9)
            alone = encoder(packed.batch([k]).with_dtype(torch.float64))
            nodes = slice(int(starts[k]), int(starts[k] + packed.node_counts[k]))
            torch.testing.assert_close(alone.graph[0], together.graph[k], rtol=0, atol=1e-10)
            torch.testing.assert_close(alone.node, together.node[nodes], rtol=0, atol=1e-10)


@pytest.mark.parametrize("smiles", [["C"], ["[Na+].[Cl-]"], ["C", "[Xe]", "CCO"]])
def test_single_node_and_edgeless_graphs(batch: GraphBatch, smiles: list[str]) -> None:
    encoder = make_encoder(batch, num_layers=1)
    small = MoleculeFeaturizer().packed(smiles).batch(range(len(smiles)))
    small = small.with_dtype(torch.float64)
    with torch.no_grad():
        out = encoder(small)
        # no bonds: the GATE layer gives its bias alone, and the GRU reads that
        h = F.leaky_relu(encoder.node_proj(small.x[:1]))
        c = F.elu(encoder.gate_conv.bias).expand(1, -1)
        h = torch.relu(encoder.gate_gru(c, h))
    assert out.node.shape == (small.num_nodes, HIDDEN)
    assert out.graph.shape == (len(smiles), HIDDEN)
    torch.testing.assert_close(out.node[:1], h, rtol=0, atol=1e-12)
    assert bool(torch.isfinite(out.graph).all()) and bool((out.graph != 0).any())


def test_output_shapes(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    with torch.no_grad():
        out = encoder(batch)
    assert encoder.out_dim == HIDDEN
    assert out.node.shape == (batch.num_nodes, HIDDEN)
    assert out.graph.shape == (batch.num_graphs, HIDDEN) == (11, HIDDEN)
    assert out.node.dtype == out.graph.dtype == torch.float64
    assert out.pos is None
    assert AttentiveFPEncoder.requires_positions is False
    assert len(encoder.atom_convs) == 2  # num_layers = 3: the GATE layer and two GAT layers


def test_padded_batch_matches_plain_batch_in_training(packed: PackedGraphs) -> None:
    torch.manual_seed(0)
    encoder = AttentiveFPEncoder(packed.node_dim, packed.edge_dim, hidden_dim=HIDDEN)
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
    assert bool(torch.isfinite(out_padded.graph).all())  # empty padding graphs too


def test_dropout_acts_in_training_only(batch: GraphBatch) -> None:
    encoder = make_encoder(batch, dropout=0.5)
    with torch.no_grad():
        assert torch.equal(encoder(batch).graph, encoder(batch).graph)
        encoder.train()
        torch.manual_seed(1)
        first = encoder(batch).graph
        second = encoder(batch).graph
    assert (first - second).abs().max() > 1e-3


def test_invalid_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="num_layers"):
        AttentiveFPEncoder(10, 4, num_layers=0)


def test_overfits_32_esol_molecules(esol: pd.DataFrame) -> None:
    frame = esol.iloc[:32]
    packed = MoleculeFeaturizer().packed(frame["smiles"].tolist())
    y = torch.tensor(frame[ESOL_TARGET].to_numpy(), dtype=torch.float32).view(-1, 1)
    y = (y - y.mean()) / y.std()
    batch = packed.batch(range(32), y)
    torch.manual_seed(0)
    encoder = AttentiveFPEncoder(packed.node_dim, packed.edge_dim, hidden_dim=64)
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
    cfg = OmegaConf.load(config_dir() / "encoder" / "attentivefp.yaml")
    featurizer = MoleculeFeaturizer()
    encoder = build(cfg, in_node_dim=featurizer.node_dim, in_edge_dim=featurizer.edge_dim)
    assert isinstance(encoder, AttentiveFPEncoder)
    # the paper's width, PyG's example depth
    assert encoder.out_dim == 200 and len(encoder.atom_convs) == 1 and encoder.num_timesteps == 2
    assert encoder.node_proj.in_features == featurizer.node_dim
    out = encoder.eval()(featurizer.packed(["CCO", "C"]).batch([0, 1]))
    assert out.graph.shape == (2, 200)
