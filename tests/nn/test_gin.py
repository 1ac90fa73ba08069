"""GINEncoder properties: permutation invariance, batch independence, shapes, overfitting."""

from __future__ import annotations

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
from torch import nn

from molgraph.batch import GraphBatch
from molgraph.featurize import MoleculeFeaturizer
from molgraph.nn import GINEncoder
from molgraph.packed import PackedGraphs

HIDDEN = 32
READOUTS = ("sum", "mean", "max", "attention", "set2set")
NORMS = ("batch", "layer", "none")
# a few ESOL molecules plus a single atom, a salt (two edgeless one-atom graphs in one)
# and an aromatic ring
EXTRA = ["C", "[Na+].[Cl-]", "c1ccccc1O"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These graphs are tiny: one thread. With torch's default of one OpenMP thread per
    core, a 150 x 135 matmul took 300 times longer (8 ms) on the busy 2-core test machine,
    spin-waiting threads competing with other processes."""
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
    batch: GraphBatch, readout: str = "sum", norm: str = "batch", virtual_node: bool = False
) -> GINEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    torch.manual_seed(0)
    encoder = GINEncoder(
        batch.x.shape[1],
        batch.edge_attr.shape[1],
        hidden_dim=HIDDEN,
        num_layers=3,
        dropout=0.2,
        readout=readout,
        norm=norm,
        virtual_node=virtual_node,
    ).double()
    with torch.no_grad():  # a few training-mode passes move the running mean and variance
        for _ in range(3):
            encoder(batch)
    return encoder.eval()


def graph_output(encoder: GINEncoder):
    return lambda b: encoder(b).graph


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("readout", READOUTS)
def test_node_permutation_leaves_graph_output(batch: GraphBatch, readout: str, norm: str) -> None:
    encoder = make_encoder(batch, readout, norm)
    with torch.no_grad():
        for seed in range(3):
            perm = within_graph_permutation(batch, seed)
            assert not torch.equal(perm, torch.arange(batch.num_nodes))
            permuted = permute_batch_nodes(batch, perm)
            assert_invariant(graph_output(encoder), batch, permuted, atol=1e-10)
            # node states follow their nodes
            torch.testing.assert_close(
                encoder(permuted).node, encoder(batch).node[perm], rtol=0, atol=1e-10
            )


@pytest.mark.parametrize("virtual_node", [False, True])
@pytest.mark.parametrize("readout", READOUTS)
def test_node_permutation_across_graphs(
    batch: GraphBatch, readout: str, virtual_node: bool
) -> None:
    # a permutation mixing graphs: graph membership travels with the node via batch.batch
    encoder = make_encoder(batch, readout, virtual_node=virtual_node)
    perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_invariant(graph_output(encoder), batch, permute_batch_nodes(batch, perm), 1e-10)


@pytest.mark.parametrize("virtual_node", [False, True])
@pytest.mark.parametrize("readout", READOUTS)
def test_edge_permutation_leaves_graph_output(
    batch: GraphBatch, readout: str, virtual_node: bool
) -> None:
    encoder = make_encoder(batch, readout, virtual_node=virtual_node)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            perm = torch.randperm(batch.num_edges, generator=generator)
            permuted = permute_batch_edges(batch, perm)
            assert_invariant(graph_output(encoder), batch, permuted, atol=1e-10)
            assert_invariant(lambda b: encoder(b).node, batch, permuted, atol=1e-10)


@pytest.mark.parametrize("virtual_node", [False, True])
@pytest.mark.parametrize("readout", READOUTS)
def test_graph_alone_equals_graph_in_batch(
    packed: PackedGraphs, batch: GraphBatch, readout: str, virtual_node: bool
) -> None:
    encoder = make_encoder(batch, readout, virtual_node=virtual_node)
    with torch.no_grad():
        together = encoder(batch)
        starts = torch.cumsum(packed.node_counts, 0) - packed.node_counts
        for k in (0, 5, 8, 9, 10):  # includes the single atom (8) and the salt (9)
            alone = encoder(packed.batch([k]).with_dtype(torch.float64))
            nodes = slice(int(starts[k]), int(starts[k] + packed.node_counts[k]))
            torch.testing.assert_close(alone.graph[0], together.graph[k], rtol=0, atol=1e-10)
            torch.testing.assert_close(alone.node, together.node[nodes], rtol=0, atol=1e-10)


def test_batch_norm_in_training_mode_does_see_the_batch(batch: GraphBatch, packed) -> None:
    # the contrast to the test above: in training mode, batch statistics couple graphs
    encoder = make_encoder(batch).train()
    encoder.dropout.p = 0.0
    with torch.no_grad():
        together = encoder(batch).graph[0]
        alone = encoder(packed.batch([0, 1]).with_dtype(torch.float64)).graph[0]
    assert (together - alone).abs().max().item() > 1e-3


@pytest.mark.parametrize("smiles", [["C"], ["[Na+].[Cl-]"], ["C", "[Xe]", "CCO"]])
def test_single_node_and_edgeless_graphs(batch: GraphBatch, smiles: list[str]) -> None:
    encoder = make_encoder(batch)
    small = MoleculeFeaturizer().packed(smiles)
    with torch.no_grad():
        out = encoder(small.batch(range(len(smiles))).with_dtype(torch.float64))
    assert out.node.shape == (int(small.node_counts.sum()), HIDDEN)
    assert out.graph.shape == (len(smiles), HIDDEN)
    assert bool(torch.isfinite(out.node).all()) and bool(torch.isfinite(out.graph).all())
    # an edgeless graph's sum readout is the sum of its nodes' states
    torch.testing.assert_close(out.graph[0], out.node[: small.node_counts[0]].sum(0))


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


def test_overfits_32_esol_molecules(esol: pd.DataFrame) -> None:
    frame = esol.iloc[:32]
    packed = MoleculeFeaturizer().packed(frame["smiles"].tolist())
    y = torch.tensor(frame[ESOL_TARGET].to_numpy(), dtype=torch.float32).view(-1, 1)
    y = (y - y.mean()) / y.std()
    batch = packed.batch(range(32), y)
    torch.manual_seed(0)
    encoder = GINEncoder(packed.node_dim, packed.edge_dim, hidden_dim=64, num_layers=3)
    head = nn.Linear(encoder.out_dim, 1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(head(encoder(batch).graph), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 1.0  # starts far from the targets (sum readout, untrained)
    first = next((step for step, value in enumerate(losses) if value < 0.05), None)
    assert first is not None, f"training MSE after 300 steps: {losses[-1]:.4f}"
    # and the fit holds in eval mode, with batch norm's running statistics
    encoder.eval()
    with torch.no_grad():
        mse = nn.functional.mse_loss(head(encoder(batch).graph), batch.y).item()
    assert mse < 0.05, f"eval-mode MSE {mse:.4f} (training MSE first < 0.05 at step {first})"
