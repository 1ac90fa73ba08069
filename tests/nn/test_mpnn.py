"""MPNNEncoder: NNConv against a loop, shared steps, permutation invariance, padding, fitting."""

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
from molgraph.nn.encoders.mpnn import MPNNEncoder, NNConv
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
) -> MPNNEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    torch.manual_seed(0)
    encoder = MPNNEncoder(
        batch.x.shape[1],
        batch.edge_attr.shape[1],
        hidden_dim=HIDDEN,
        num_layers=3,
        dropout=0.2,
        edge_hidden_dim=16,
        readout=readout,
        norm=norm,
        **kwargs,
    ).double()
    with torch.no_grad():  # a few training-mode passes move the running mean and variance
        for _ in range(3):
            encoder(batch)
    return encoder.eval()


def tiny_graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A triangle 0-1-2 with a tail 2-3 (both directions, scrambled) and an isolated node 4.

    States ``[5, 4]``, src, dst ``[8]``, edge features ``[8, 2]``.
    """
    bonds = [(0, 1), (1, 2), (0, 2), (2, 3)]
    src = torch.tensor([a for a, b in bonds] + [b for a, b in bonds])
    dst = torch.tensor([b for a, b in bonds] + [a for a, b in bonds])
    order = torch.tensor([5, 0, 7, 2, 4, 1, 6, 3])
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    edge_attr = torch.randn(8, 2, generator=generator, dtype=torch.float64)
    return h, src[order], dst[order], edge_attr


@pytest.mark.parametrize("aggr", ["sum", "mean"])
def test_nnconv_equals_loop_formula(aggr: str) -> None:
    h, src, dst, edge_attr = tiny_graph()
    torch.manual_seed(0)
    conv = NNConv(4, 2, edge_hidden_dim=8, aggr=aggr).double()
    with torch.no_grad():
        conv.bias.normal_()
        out = conv(h, src, dst, edge_attr)
        expected = torch.zeros(5, 4, dtype=torch.float64)
        degree = torch.zeros(5, dtype=torch.float64)
        for j, i, e in zip(src.tolist(), dst.tolist(), edge_attr, strict=True):
            a = conv.edge_mlp(e).view(4, 4)  # A(e_ji): a 4 x 4 matrix per edge
            expected[i] += a @ h[j]
            degree[i] += 1
        if aggr == "mean":
            expected /= degree.clamp_min(1).unsqueeze(1)
        expected += conv.bias
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[4], conv.bias.detach())  # isolated: no messages
    assert conv.edge_network(edge_attr).shape == (8, 4, 4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nnconv_cuda_path_matches_cpu_path() -> None:
    # on CUDA the messages are a bmm, on CPU a broadcast product and a sum
    h, src, dst, edge_attr = tiny_graph(2)
    torch.manual_seed(0)
    conv = NNConv(4, 2, edge_hidden_dim=8).double()
    h.requires_grad_(True)
    out = conv(h, src, dst, edge_attr)
    (grad,) = torch.autograd.grad(out.square().sum(), h)
    cuda = torch.device("cuda")
    conv_cuda, h_cuda = conv.to(cuda), h.detach().to(cuda).requires_grad_(True)
    out_cuda = conv_cuda(h_cuda, src.to(cuda), dst.to(cuda), edge_attr.to(cuda))
    (grad_cuda,) = torch.autograd.grad(out_cuda.square().sum(), h_cuda)
    torch.testing.assert_close(out_cuda.cpu(), out.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_cuda.cpu(), grad, rtol=0, atol=1e-12)


def test_unknown_aggregation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown aggregation 'max'"):
        NNConv(4, 2, aggr="max")


def test_encoder_is_the_gru_recurrence_with_shared_weights() -> None:
    # h^0 = W x + b; h^{t+1} = GRU(h^t, NNConv(h^t)); graph = set2set(h^T)
    x, src, dst, edge_attr = tiny_graph(1)
    batch = GraphBatch(
        x=x,
        src=src,
        dst=dst,
        edge_attr=edge_attr,
        batch=torch.tensor([0, 0, 0, 0, 1]),
        num_graphs=2,
    )
    torch.manual_seed(0)
    encoder = MPNNEncoder(4, 2, hidden_dim=6, num_layers=3, edge_hidden_dim=8).double().eval()
    calls = []
    encoder.conv.edge_mlp.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        out = encoder(batch)
        assert len(calls) == 1  # the edge matrices are computed once for all three steps
        h = encoder.node_proj(x)
        for _ in range(3):
            h = encoder.gru(encoder.conv(h, src, dst, edge_attr), h)
        graph = encoder.readout(h, batch.batch, 2)
    torch.testing.assert_close(out.node, h, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.graph, graph, rtol=0, atol=1e-12)
    assert out.graph.shape == (2, 12)  # set2set by default: [q, r]


def test_steps_share_weights() -> None:
    sizes = [
        sum(p.numel() for p in MPNNEncoder(10, 3, hidden_dim=8, num_layers=t).parameters())
        for t in (1, 2, 6)
    ]
    assert sizes[0] == sizes[1] == sizes[2]
    encoder = MPNNEncoder(10, 3, hidden_dim=8, num_layers=6)
    assert encoder.readout.kind == "set2set" and encoder.out_dim == 16
    assert encoder.num_steps == 6


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


@pytest.mark.parametrize("aggr", ["sum", "mean"])
@pytest.mark.parametrize("readout", ("sum", "set2set"))
def test_edge_permutation_leaves_outputs(batch: GraphBatch, readout: str, aggr: str) -> None:
    encoder = make_encoder(batch, readout, aggr=aggr)
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
    assert MPNNEncoder.requires_positions is False


@pytest.mark.parametrize("norm", NORMS)
def test_padded_batch_matches_plain_batch_in_training(packed: PackedGraphs, norm: str) -> None:
    torch.manual_seed(0)
    encoder = MPNNEncoder(
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
    # the paper's model (set2set, no norm) at a small width: the d x d edge matrices
    # dominate the CPU time
    encoder = MPNNEncoder(packed.node_dim, packed.edge_dim, hidden_dim=32, edge_hidden_dim=32)
    head = nn.Linear(encoder.out_dim, 1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    losses: list[float] = []
    while len(losses) < 300 and (not losses or losses[-1] >= 0.05):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(head(encoder(batch).graph), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.5  # starts far from the (standardised) targets
    first = len(losses) - 1
    assert losses[-1] < 0.05, f"training MSE after 300 steps: {losses[-1]:.4f}"
    # and the fit holds in eval mode (no norm, no dropout: the same function)
    encoder.eval()
    with torch.no_grad():
        mse = nn.functional.mse_loss(head(encoder(batch).graph), batch.y).item()
    assert mse < 0.05, f"eval-mode MSE {mse:.4f} (training MSE first < 0.05 at step {first})"


def test_builds_from_config() -> None:
    cfg = OmegaConf.load(config_dir() / "encoder" / "mpnn.yaml")
    encoder = build(cfg, in_node_dim=135, in_edge_dim=14)
    assert type(encoder) is MPNNEncoder
    assert cfg.readout == "set2set" and encoder.out_dim == 2 * cfg.hidden_dim == 128
    assert encoder.num_steps == cfg.num_layers == 3
    assert encoder.node_proj.in_features == 135
    assert encoder.conv.edge_mlp[0].in_features == 14
