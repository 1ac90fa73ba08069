"""GCNEncoder: the dense-matrix formula, permutation invariance, batches, padding, fitting."""

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
from molgraph.nn.encoders.gcn import GCNConv, GCNEncoder
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


def make_encoder(batch: GraphBatch, readout: str = "sum", norm: str = "batch") -> GCNEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    torch.manual_seed(0)
    encoder = GCNEncoder(
        batch.x.shape[1],
        batch.edge_attr.shape[1],
        hidden_dim=HIDDEN,
        num_layers=3,
        dropout=0.2,
        readout=readout,
        norm=norm,
    ).double()
    with torch.no_grad():  # a few training-mode passes move the running mean and variance
        for _ in range(3):
            encoder(batch)
    return encoder.eval()


# a hand-made graph: a triangle 0-1-2 with a tail 2-3, and an isolated node 4
TINY_BONDS = [(0, 1), (1, 2), (0, 2), (2, 3)]


def tiny_graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features ``[5, 3]``, src, dst (both directions of each bond), dense ``Â = A + I``."""
    src = torch.tensor([a for a, b in TINY_BONDS] + [b for a, b in TINY_BONDS])
    dst = torch.tensor([b for a, b in TINY_BONDS] + [a for a, b in TINY_BONDS])
    a_hat = torch.eye(5, dtype=torch.float64)
    a_hat[dst, src] = 1.0
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x, src, dst, a_hat


def dense_propagation(a_hat: torch.Tensor) -> torch.Tensor:
    d_inv_sqrt = torch.diag(a_hat.sum(1).rsqrt())
    return d_inv_sqrt @ a_hat @ d_inv_sqrt


def test_gcn_conv_equals_dense_formula() -> None:
    x, src, dst, a_hat = tiny_graph()
    torch.manual_seed(0)
    conv = GCNConv(3, 4).double()
    with torch.no_grad():
        conv.bias.normal_()  # a nonzero bias, so the test sees where it is added
        out = conv(x, src, dst)
    weight = conv.weight.weight.T  # [3, 4]
    expected = dense_propagation(a_hat) @ x @ weight + conv.bias
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    # degrees with self-loops: 3, 3, 4, 2, 1; the isolated node keeps its own state
    assert torch.equal(a_hat.sum(1), torch.tensor([3.0, 3.0, 4.0, 2.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(out[4], x[4] @ weight + conv.bias, rtol=0, atol=1e-12)


def test_two_layer_encoder_is_the_papers_model() -> None:
    # residual off, no norm, no dropout: H2 = Â ReLU(Â X W1 + b1) W2 + b2, summed per graph
    x, src, dst, a_hat = tiny_graph(1)
    batch = GraphBatch(
        x=x,
        src=src,
        dst=dst,
        edge_attr=torch.zeros(src.shape[0], 2, dtype=torch.float64),
        batch=torch.tensor([0, 0, 0, 0, 1]),
        num_graphs=2,
    )
    torch.manual_seed(0)
    encoder = GCNEncoder(
        3, 2, hidden_dim=4, num_layers=2, readout="sum", residual=False, norm="none"
    )
    encoder.double().eval()
    first, second = encoder.layers
    with torch.no_grad():
        for conv in encoder.layers:
            conv.bias.normal_()
        out = encoder(batch)
    prop = dense_propagation(a_hat)
    h1 = torch.relu(prop @ x @ first.weight.weight.T + first.bias)
    h2 = prop @ h1 @ second.weight.weight.T + second.bias
    torch.testing.assert_close(out.node, h2, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph, torch.stack([h2[:4].sum(0), h2[4]]), rtol=0, atol=1e-12)


def test_edge_features_are_ignored(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    other = replace(batch, edge_attr=torch.randn_like(batch.edge_attr))
    with torch.no_grad():
        torch.testing.assert_close(encoder(other).graph, encoder(batch).graph, rtol=0, atol=0)


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


@pytest.mark.parametrize("readout", ("sum", "set2set"))
def test_edge_permutation_leaves_outputs(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout)
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
    assert GCNEncoder.requires_positions is False


@pytest.mark.parametrize("norm", NORMS)
def test_padded_batch_matches_plain_batch_in_training(packed: PackedGraphs, norm: str) -> None:
    torch.manual_seed(0)
    encoder = GCNEncoder(
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
    encoder = GCNEncoder(packed.node_dim, packed.edge_dim, hidden_dim=64, num_layers=3)
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
    cfg = OmegaConf.load(config_dir() / "encoder" / "gcn.yaml")
    encoder = build(cfg, in_node_dim=135, in_edge_dim=14)
    assert type(encoder) is GCNEncoder
    assert encoder.out_dim == cfg.hidden_dim == 300
    assert len(encoder.layers) == cfg.num_layers
    assert encoder.layers[0].weight.in_features == 135
