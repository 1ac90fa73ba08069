"""Padded batches (fixed sizes for CUDA graphs) give the same results for the real graphs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from molgraph.featurize import MoleculeFeaturizer
from molgraph.featurize.protein import ProteinFeaturizer
from molgraph.models import MLPHead, PropertyModel, Task
from molgraph.nn import EGNNEncoder, GINEncoder, GVPEncoder
from molgraph.nn.fusion import FusedEncoder
from molgraph.nn.norm import MaskedBatchNorm1d
from molgraph.packed import Padding

DEMO_STRUCTURE = str(Path(__file__).parents[1] / "molgraph/datasets/gb1_2qmt.pdb")


@pytest.fixture(scope="module")
def packed_esol(esol: pd.DataFrame):
    featurizer = MoleculeFeaturizer()
    y = torch.tensor(esol.iloc[:40, :].filter(like="measured").to_numpy(), dtype=torch.float32)
    return featurizer, featurizer.packed(esol["smiles"].tolist()[:40]), y


def test_padding_sizes_round_up_and_leave_a_padding_node() -> None:
    padding = Padding(graphs=9, node_multiple=64, edge_multiple=128)
    assert padding.sizes(64, 0, 8) == (128, 128, 9)  # 64 real nodes need one more
    assert padding.sizes(63, 129, 3) == (64, 256, 9)
    with pytest.raises(ValueError, match="do not fit"):
        padding.sizes(10, 10, 9)


def test_padded_batch_layout(packed_esol) -> None:
    _, graphs, y = packed_esol
    indices = [3, 17, 5, 0]
    plain = graphs.batch(indices, y)
    padded = graphs.batch(indices, y, Padding(graphs=6, node_multiple=32, edge_multiple=32))
    n, e = plain.num_nodes, plain.num_edges
    assert padded.num_nodes % 32 == 0 and padded.num_nodes > n
    assert padded.num_edges % 32 == 0 and padded.num_edges >= e
    assert padded.num_graphs == 6
    assert torch.equal(padded.x[:n], plain.x) and padded.x[n:].abs().sum() == 0
    assert torch.equal(padded.src[:e], plain.src) and torch.equal(padded.dst[:e], plain.dst)
    # padding edges are self-loops on padding nodes, spread round-robin over them
    assert torch.equal(padded.src[e:], padded.dst[e:]) and (padded.src[e:] >= n).all()
    loops_per_node = torch.bincount(padded.src[e:] - n)
    assert int(loops_per_node.max() - loops_per_node.min()) <= 1
    assert torch.equal(padded.node_mask, torch.arange(padded.num_nodes) < n)
    assert (padded.batch[n:] == 5).all()  # padding nodes form the last graph
    assert torch.equal(padded.y[:4], plain.y) and not padded.y_mask[4:].any()


@pytest.mark.parametrize("training", [True, False])
def test_encoder_on_padded_batch_matches_plain_batch(packed_esol, training: bool) -> None:
    featurizer, graphs, y = packed_esol
    torch.manual_seed(0)
    encoder = GINEncoder(featurizer.node_dim, featurizer.edge_dim, hidden_dim=32, num_layers=3)
    encoder.double().train(training)
    indices = list(range(0, 40, 3))
    plain = graphs.batch(indices, y).with_dtype(torch.float64)
    padded = graphs.batch(indices, y, Padding(graphs=16, node_multiple=64)).with_dtype(
        torch.float64
    )
    # masked batch norm: padding nodes change neither the statistics nor the real nodes
    out_plain, out_padded = encoder(plain), encoder(padded)
    assert torch.allclose(out_padded.graph[: len(indices)], out_plain.graph, atol=1e-10)
    assert torch.allclose(out_padded.node[: plain.num_nodes], out_plain.node, atol=1e-10)


def test_masked_batch_norm_running_statistics_match_batch_norm() -> None:
    torch.manual_seed(0)
    masked, reference = MaskedBatchNorm1d(5).double(), torch.nn.BatchNorm1d(5).double()
    h = torch.randn(12, 5, dtype=torch.float64)
    padded = torch.cat([h, 100 * torch.randn(4, 5, dtype=torch.float64)])
    mask = torch.arange(16) < 12
    for _ in range(3):
        assert torch.allclose(masked(padded, mask)[:12], reference(h), atol=1e-12)
    assert torch.allclose(masked.running_mean, reference.running_mean, atol=1e-12)
    assert torch.allclose(masked.running_var, reference.running_var, atol=1e-12)
    assert int(masked.num_batches_tracked) == 3


def test_padded_loss_equals_plain_loss(packed_esol) -> None:
    featurizer, graphs, y = packed_esol
    torch.manual_seed(0)
    encoder = GINEncoder(featurizer.node_dim, featurizer.edge_dim, hidden_dim=16, num_layers=2)
    model = PropertyModel(encoder, MLPHead(16, 1, hidden_dim=16), Task("regression", ("y",)))
    model.double().train()
    plain = graphs.batch(range(10), y).with_dtype(torch.float64)
    padded = graphs.batch(range(10), y, Padding(graphs=12)).with_dtype(torch.float64)
    loss_plain = model._loss(plain, model(plain))
    loss_padded = model._loss(padded, model(padded))
    assert torch.allclose(loss_plain, loss_padded, atol=1e-12)


def _esol_case(esol: pd.DataFrame, encoder_cls) -> tuple:
    featurizer = MoleculeFeaturizer(conformer=encoder_cls.requires_positions)
    graphs = featurizer.packed(esol["smiles"].tolist()[:40])
    y = torch.tensor(esol.iloc[:40, :].filter(like="measured").to_numpy(), dtype=torch.float32)
    return graphs, y, lambda: encoder_cls(graphs.node_dim, graphs.edge_dim, hidden_dim=32)


def _protein_gvp_case(esol: pd.DataFrame, encoder_cls) -> tuple:
    # residue graphs: node vectors (GVP's vector input) go through the graph too
    graphs = ProteinFeaturizer(k=8).packed([DEMO_STRUCTURE] * 40)
    y = torch.randn(40, 1, generator=torch.Generator().manual_seed(0))
    return graphs, y, lambda: encoder_cls(
        graphs.node_dim, graphs.edge_dim, hidden_dim=32, hidden_vector_dim=8, dropout=0.0,
        norm="batch", node_vectors="none", in_node_vector_dim=3,
    )  # fmt: skip


def _protein_early_fusion_case(esol: pd.DataFrame, encoder_cls) -> tuple:
    # per-residue language-model embeddings go through the graph as well
    graphs, y, _ = _protein_gvp_case(esol, GVPEncoder)
    embeddings = torch.randn(graphs.x.shape[0], 24, generator=torch.Generator().manual_seed(1))
    graphs = replace(graphs, node_embeddings=embeddings)

    def make() -> FusedEncoder:
        inner = encoder_cls(graphs.node_dim + 8, graphs.edge_dim, hidden_dim=32, norm="batch")
        return FusedEncoder(inner, "early", 24, proj_dim=8)

    return graphs, y, make


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize(
    ("case", "encoder_cls"),
    [
        (_esol_case, GINEncoder),
        (_esol_case, EGNNEncoder),
        (_protein_gvp_case, GVPEncoder),
        (_protein_early_fusion_case, GINEncoder),
    ],
)
def test_cuda_graph_step_matches_eager_step(esol: pd.DataFrame, case, encoder_cls) -> None:
    # EGNN: coordinates go through the graph, and its last coordinate update is unused
    graphs, y, make_encoder = case(esol, encoder_cls)
    device = torch.device("cuda")
    graphs, y = graphs.to(device), y.to(device)

    def model() -> PropertyModel:
        torch.manual_seed(0)
        return PropertyModel(
            make_encoder(), MLPHead(32, 1, hidden_dim=32), Task("regression", ("y",))
        )

    # float64: the two paths may differ only by the order of atomic additions
    eager, graphed = model().to(device).double().train(), model().to(device).double().train()
    graphed.cuda_graphs = True
    padding = Padding(graphs=17, node_multiple=256, edge_multiple=512)
    for step, start in enumerate(range(0, 40, 16)):
        batch = graphs.batch(range(start, min(start + 16, 40)), y, padding)
        batch = batch.with_dtype(torch.float64)
        losses = []
        for m in (eager, graphed):
            m.zero_grad()
            loss = m._loss(batch, m._training_output(batch))
            loss.backward()
            losses.append(loss.detach())
        assert torch.allclose(losses[0], losses[1], rtol=1e-10), step
        for (name, a), b in zip(eager.named_parameters(), graphed.parameters(), strict=True):
            if a.grad is None:  # not used by the prediction: untouched on both paths
                assert b.grad is None, name
                continue
            assert torch.allclose(a.grad, b.grad, rtol=1e-8, atol=1e-10), name
    assert len(graphed._graphed) >= 1
    for a, b in zip(eager.buffers(), graphed.buffers(), strict=True):
        assert torch.allclose(a.double(), b.double(), rtol=1e-10, atol=1e-12)
