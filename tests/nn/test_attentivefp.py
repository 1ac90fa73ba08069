"""AttentiveFPEncoder: attention layers by loops, edgeless graphs by hand, dropout, depth.

Shared encoder properties: test_encoder_properties.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import permute_batch_edges, small_encoder
from torch import Tensor

from molgraph.batch import GraphBatch
from molgraph.featurize import MoleculeFeaturizer
from molgraph.nn.encoders.attentivefp import AttentiveFPEncoder, AttentiveGATConv, GATEConv
from molgraph.packed import PackedGraphs

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN = 32


def _biases_off_zero(encoder: AttentiveFPEncoder) -> None:
    for name, p in encoder.named_parameters():
        if name.endswith("bias") and not name.startswith(("node_proj", "gate_gru")):
            p.normal_(0.0, 0.1)


def make_encoder(
    batch: GraphBatch, num_layers: int = 3, dropout: float = 0.2
) -> AttentiveFPEncoder:
    """A float64 encoder in eval mode, biases moved off zero so that they are tested."""
    return small_encoder(
        AttentiveFPEncoder,
        batch,
        warmup=0,
        prepare=_biases_off_zero,
        hidden_dim=HIDDEN,
        num_layers=num_layers,
        num_timesteps=2,
        dropout=dropout,
    )


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


def test_encoder_equals_loop_reference(batch_2d: GraphBatch, packed_2d: PackedGraphs) -> None:
    # phenol, the salt (edgeless) and a single atom, edges in shuffled order
    small = packed_2d.batch([10, 9, 8, 2]).with_dtype(torch.float64)
    perm = torch.randperm(small.num_edges, generator=torch.Generator().manual_seed(2))
    small = permute_batch_edges(small, perm)
    encoder = make_encoder(batch_2d)
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


@pytest.mark.parametrize("smiles", [["C"], ["[Na+].[Cl-]"], ["C", "[Xe]", "CCO"]])
def test_single_node_and_edgeless_graphs(batch_2d: GraphBatch, smiles: list[str]) -> None:
    encoder = make_encoder(batch_2d, num_layers=1)
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


def test_dropout_acts_in_training_only(batch_2d: GraphBatch) -> None:
    encoder = make_encoder(batch_2d, dropout=0.5)
    with torch.no_grad():
        assert torch.equal(encoder(batch_2d).graph, encoder(batch_2d).graph)
        encoder.train()
        torch.manual_seed(1)
        first = encoder(batch_2d).graph
        second = encoder(batch_2d).graph
    assert (first - second).abs().max() > 1e-3


def test_depth_counts_the_gate_layer(batch_2d: GraphBatch) -> None:
    encoder = make_encoder(batch_2d)
    assert len(encoder.atom_convs) == 2  # num_layers = 3: the GATE layer and two GAT layers


def test_invalid_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="num_layers"):
        AttentiveFPEncoder(10, 4, num_layers=0)
