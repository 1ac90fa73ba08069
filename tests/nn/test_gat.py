"""GATEncoder: attention against a loop, permutation invariance, batches, padding, fitting."""

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
from torch import nn

from molgraph.batch import GraphBatch
from molgraph.builder import build, config_dir
from molgraph.featurize import MoleculeFeaturizer
from molgraph.nn.encoders.gat import GATEncoder, GATv2Conv, add_self_loops
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
    batch: GraphBatch, readout: str = "sum", norm: str = "batch", **kwargs
) -> GATEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    torch.manual_seed(0)
    encoder = GATEncoder(
        batch.x.shape[1],
        batch.edge_attr.shape[1],
        hidden_dim=HIDDEN,
        num_layers=3,
        dropout=0.2,
        readout=readout,
        norm=norm,
        **kwargs,
    ).double()
    with torch.no_grad():  # a few training-mode passes move the running mean and variance
        for _ in range(3):
            encoder(batch)
    return encoder.eval()


def tiny_graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A triangle 0-1-2 with a tail 2-3 (both directions) and an isolated node 4.

    Features ``[5, 3]``, src, dst ``[8]`` in a scrambled order, edge features ``[8, 2]``
    that differ between the two directions of a bond.
    """
    bonds = [(0, 1), (1, 2), (0, 2), (2, 3)]
    src = torch.tensor([a for a, b in bonds] + [b for a, b in bonds])
    dst = torch.tensor([b for a, b in bonds] + [a for a, b in bonds])
    order = torch.tensor([5, 0, 7, 2, 4, 1, 6, 3])
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    edge_attr = torch.randn(8, 2, generator=generator, dtype=torch.float64)
    return x, src[order], dst[order], edge_attr


def loop_gatv2(conv: GATv2Conv, h, src, dst, edge_attr) -> torch.Tensor:
    """GATv2 by its formula: one destination, one head, one neighbour at a time."""
    heads, width = conv.heads, conv.head_dim
    out = torch.zeros(h.shape[0], heads * width, dtype=h.dtype)
    for i in range(h.shape[0]):
        incoming = [
            (int(j), edge_attr[e]) for e, (j, t) in enumerate(zip(src, dst, strict=True)) if t == i
        ]
        loop_attr = (
            torch.stack([a for _, a in incoming]).mean(0)
            if incoming
            else torch.zeros(edge_attr.shape[1], dtype=h.dtype)
        )
        neighbours = [*incoming, (i, loop_attr)]
        for k in range(heads):
            rows = slice(k * width, (k + 1) * width)
            w_s, b_s = conv.lin_src.weight[rows], conv.lin_src.bias[rows]
            w_t, b_t = conv.lin_dst.weight[rows], conv.lin_dst.bias[rows]
            w_e = conv.lin_edge.weight[rows]
            scores, messages = [], []
            for j, a in neighbours:
                z = (w_s @ h[j] + b_s) + (w_t @ h[i] + b_t) + w_e @ a
                scores.append(conv.att[0, k] @ nn.functional.leaky_relu(z, 0.2))
                message = w_s @ h[j] + b_s
                messages.append(message + w_e @ a if conv.edge_messages else message)
            alpha = torch.softmax(torch.stack(scores), 0)
            out[i, rows] = (alpha.unsqueeze(1) * torch.stack(messages)).sum(0)
    return out + conv.bias


@pytest.mark.parametrize("edge_messages", [False, True])
def test_gatv2_conv_equals_loop_formula(edge_messages: bool) -> None:
    x, src, dst, edge_attr = tiny_graph()
    torch.manual_seed(0)
    conv = GATv2Conv(3, 6, edge_dim=2, heads=3, edge_messages=edge_messages).double()
    with torch.no_grad():
        conv.bias.normal_()
        out = conv(x, src, dst, edge_attr)
        expected = loop_gatv2(conv, x, src, dst, edge_attr)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    # the isolated node attends only to itself: W_s h_4 + b_s (+ W_e 0) + b
    lone = conv.lin_src(x[4]) + conv.bias
    torch.testing.assert_close(out[4], lone.detach(), rtol=0, atol=1e-12)


def test_self_loops_carry_mean_incoming_edge_features() -> None:
    _, src, dst, edge_attr = tiny_graph()
    src2, dst2, attr2 = add_self_loops(src, dst, edge_attr, 5)
    assert torch.equal(src2[:8], src) and torch.equal(dst2[:8], dst)
    assert torch.equal(src2[8:], torch.arange(5)) and torch.equal(dst2[8:], torch.arange(5))
    into_2 = edge_attr[dst == 2]  # node 2 has three neighbours
    assert into_2.shape[0] == 3
    torch.testing.assert_close(attr2[8 + 2], into_2.mean(0), rtol=0, atol=1e-15)
    assert torch.equal(attr2[8 + 4], torch.zeros(2, dtype=torch.float64))  # isolated node


def test_attention_weights_sum_to_one_per_destination_and_head(batch: GraphBatch) -> None:
    torch.manual_seed(0)
    conv = GATv2Conv(batch.x.shape[1], HIDDEN, batch.edge_attr.shape[1], heads=4).double()
    with torch.no_grad():
        _, alpha = conv.forward_with_attention(batch.x, batch.src, batch.dst, batch.edge_attr)
    n, e = batch.num_nodes, batch.num_edges
    assert alpha.shape == (e + n, 4)
    assert bool((alpha > 0).all())
    dst = torch.cat([batch.dst, torch.arange(n)])
    totals = torch.zeros(n, 4, dtype=torch.float64).index_add_(0, dst, alpha)
    torch.testing.assert_close(totals, torch.ones(n, 4, dtype=torch.float64), rtol=0, atol=1e-12)
    # nodes without neighbours (the single atom, the two ions) put all weight on themselves
    isolated = torch.bincount(batch.dst, minlength=n) == 0
    assert int(isolated.sum()) == 3
    torch.testing.assert_close(alpha[e:][isolated], torch.ones(3, 4, dtype=torch.float64))
    # and the weights are not uniform: the attention looks at its inputs
    assert float(alpha[:e].std()) > 1e-2


def test_heads_must_divide_hidden_dim() -> None:
    with pytest.raises(ValueError, match=r"hidden_dim \(30\) must be a multiple of heads \(4\)"):
        GATEncoder(10, 3, hidden_dim=30, heads=4)
    with pytest.raises(ValueError, match="multiple of heads"):
        GATv2Conv(10, 30, 3, heads=4)
    assert GATEncoder(10, 3, hidden_dim=32, heads=4).layers[0].head_dim == 8


def test_edge_features_change_the_output(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    other = replace(batch, edge_attr=torch.randn_like(batch.edge_attr))
    with torch.no_grad():
        difference = (encoder(other).graph - encoder(batch).graph).abs()
    # graphs with bonds change; the single atom (8) and the salt (9) have no edges
    assert bool((difference[[0, 1, 2, 3, 4, 5, 6, 7, 10]].amax(1) > 1e-6).all())
    torch.testing.assert_close(difference[[8, 9]], torch.zeros_like(difference[[8, 9]]))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("readout", READOUTS)
def test_node_permutation_leaves_graph_output(batch: GraphBatch, readout: str, norm: str) -> None:
    encoder = make_encoder(batch, readout, norm)
    with torch.no_grad():
        reference = encoder(batch)
        for seed in range(2):
            perm = within_graph_permutation(batch, seed)
            assert not torch.equal(perm, torch.arange(batch.num_nodes))
            out = encoder(permute_batch_nodes(batch, perm))
            torch.testing.assert_close(out.graph, reference.graph, rtol=0, atol=1e-10)
            # node states follow their nodes
            torch.testing.assert_close(out.node, reference.node[perm], rtol=0, atol=1e-10)


@pytest.mark.parametrize("readout", READOUTS)
def test_node_permutation_across_graphs(batch: GraphBatch, readout: str) -> None:
    # a permutation mixing graphs: graph membership travels with the node via batch.batch
    encoder = make_encoder(batch, readout)
    perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out, reference = encoder(permute_batch_nodes(batch, perm)), encoder(batch)
    torch.testing.assert_close(out.graph, reference.graph, rtol=0, atol=1e-10)
    torch.testing.assert_close(out.node, reference.node[perm], rtol=0, atol=1e-10)


@pytest.mark.parametrize("edge_messages", [False, True])
@pytest.mark.parametrize("readout", ("sum", "set2set"))
def test_edge_permutation_leaves_outputs(
    batch: GraphBatch, readout: str, edge_messages: bool
) -> None:
    encoder = make_encoder(batch, readout, edge_messages=edge_messages)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            perm = torch.randperm(batch.num_edges, generator=generator)
            permuted = permute_batch_edges(batch, perm)
            assert_invariant(lambda b: encoder(b).graph, batch, permuted, atol=1e-10)
            assert_invariant(lambda b: encoder(b).node, batch, permuted, atol=1e-10)


@pytest.mark.parametrize("readout", ("sum", "set2set"))
def test_graph_alone_equals_graph_in_batch(
    packed: PackedGraphs, batch: GraphBatch, readout: str
) -> None:
    encoder = make_encoder(batch, readout)
    with torch.no_grad():
        together = encoder(batch)
        starts = torch.cumsum(packed.node_counts, 0) - packed.node_counts
        for k in (0, 5, 8, 9, 10):  # includes the single atom (8) and the salt (9)
            alone = encoder(packed.batch([k]).with_dtype(torch.float64))
            nodes = slice(int(starts[k]), int(starts[k] + packed.node_counts[k]))
            torch.testing.assert_close(alone.graph[0], together.graph[k], rtol=0, atol=1e-10)
            torch.testing.assert_close(alone.node, together.node[nodes], rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("smiles", "untouched"), [(["C"], 0), (["[Na+].[Cl-]"], 1), (["C", "[Xe]", "CCO"], 2)]
)
def test_single_node_and_edgeless_graphs(
    batch: GraphBatch, smiles: list[str], untouched: int
) -> None:
    encoder = make_encoder(batch)
    small = MoleculeFeaturizer().packed(smiles).batch(range(len(smiles)))
    small = small.with_dtype(torch.float64)
    with torch.no_grad():
        out = encoder(small)
        # change the last atom: nodes it has no path to (the first `untouched`) keep their state
        x = small.x.clone()
        x[-1] = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(0))
        changed = encoder(replace(small, x=x))
    assert out.node.shape == (small.num_nodes, HIDDEN)
    assert out.graph.shape == (len(smiles), HIDDEN)
    assert bool(torch.isfinite(out.node).all()) and bool(torch.isfinite(out.graph).all())
    # an edgeless graph's sum readout is the sum of its nodes' states
    first = small.batch == 0
    torch.testing.assert_close(out.graph[0], out.node[first].sum(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(changed.node[:untouched], out.node[:untouched], rtol=0, atol=0)
    assert (changed.node[-1] - out.node[-1]).abs().max() > 1e-3


@pytest.mark.parametrize("readout", READOUTS)
def test_output_shapes(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout)
    with torch.no_grad():
        out = encoder(batch)
    width = 2 * HIDDEN if readout == "set2set" else HIDDEN  # Set2Set concatenates [q, r]
    assert encoder.out_dim == width
    assert out.node.shape == (batch.num_nodes, HIDDEN)
    assert out.graph.shape == (batch.num_graphs, width) == (11, width)
    assert out.node.dtype == out.graph.dtype == torch.float64
    assert out.pos is None
    assert GATEncoder.requires_positions is False


@pytest.mark.parametrize("norm", NORMS)
def test_padded_batch_matches_plain_batch_in_training(packed: PackedGraphs, norm: str) -> None:
    torch.manual_seed(0)
    encoder = GATEncoder(
        packed.node_dim, packed.edge_dim, hidden_dim=HIDDEN, num_layers=3, norm=norm
    )
    encoder = encoder.double().train()  # no dropout: the two passes must see the same masks
    indices = [0, 3, 8, 9, 10, 5]
    plain = packed.batch(indices).with_dtype(torch.float64)
    padded = packed.batch(indices, padding=Padding(graphs=8, node_multiple=64, edge_multiple=64))
    padded = padded.with_dtype(torch.float64)
    assert padded.num_nodes > plain.num_nodes and padded.num_edges > plain.num_edges
    out_plain, out_padded = encoder(plain), encoder(padded)
    torch.testing.assert_close(
        out_padded.graph[: len(indices)], out_plain.graph, rtol=0, atol=1e-10
    )
    torch.testing.assert_close(
        out_padded.node[: plain.num_nodes], out_plain.node, rtol=0, atol=1e-10
    )


def test_overfits_32_esol_molecules(esol: pd.DataFrame) -> None:
    frame = esol.iloc[:32]
    packed = MoleculeFeaturizer().packed(frame["smiles"].tolist())
    y = torch.tensor(frame[ESOL_TARGET].to_numpy(), dtype=torch.float32).view(-1, 1)
    y = (y - y.mean()) / y.std()
    batch = packed.batch(range(32), y)
    torch.manual_seed(0)
    encoder = GATEncoder(packed.node_dim, packed.edge_dim, hidden_dim=64, num_layers=3)
    head = nn.Linear(encoder.out_dim, 1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(head(encoder(batch).graph), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.5  # starts far from the (standardised) targets
    first = next((step for step, value in enumerate(losses) if value < 0.05), None)
    assert first is not None, f"training MSE after 300 steps: {losses[-1]:.4f}"
    # and the fit holds in eval mode, with batch norm's running statistics
    encoder.eval()
    with torch.no_grad():
        mse = nn.functional.mse_loss(head(encoder(batch).graph), batch.y).item()
    assert mse < 0.05, f"eval-mode MSE {mse:.4f} (training MSE first < 0.05 at step {first})"


def test_builds_from_config() -> None:
    cfg = OmegaConf.load(config_dir() / "encoder" / "gat.yaml")
    encoder = build(cfg, in_node_dim=135, in_edge_dim=14)
    assert type(encoder) is GATEncoder
    assert encoder.out_dim == cfg.hidden_dim == 256
    assert len(encoder.layers) == cfg.num_layers
    assert encoder.layers[0].heads == cfg.heads == 4
    assert encoder.layers[0].lin_src.in_features == 135
    assert encoder.layers[0].lin_edge.in_features == 14
