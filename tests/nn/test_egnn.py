"""EGNNEncoder: E(3) symmetry (rotation, translation, reflection), permutations, batches,
padding, overfitting, config."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import torch
from helpers import (
    ESOL_TARGET,
    SmilesFixtures,
    permute_batch_edges,
    permute_batch_nodes,
    random_rotation,
    within_graph_permutation,
)
from omegaconf import OmegaConf
from torch import nn

from molgraph.batch import GraphBatch
from molgraph.builder import build, config_dir
from molgraph.featurize import MoleculeFeaturizer
from molgraph.nn.encoders.egnn import EGNNEncoder, EGNNLayer
from molgraph.nn.output import EncoderOutput
from molgraph.packed import PackedGraphs, Padding

HIDDEN = 16
ATOL = 1e-10
EXTRA = ["C", "[Na+].[Cl-]", "c1ccccc1O"]  # single atom, salt (two edgeless atoms), ring
# option sets: the defaults, and every stability / aggregation option switched
OPTIONS = {
    "default": {},
    "batch-norm": {"norm": "batch"},
    "all-options": {
        "norm": "layer",
        "attention": True,
        "coords_agg": "sum",
        "tanh": True,
        "coords_range": 2.0,
        "normalize": True,
        "readout": "set2set",
    },
}
MIRROR = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny graphs: one thread (see tests/nn/test_gin.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def packed(esol: pd.DataFrame) -> PackedGraphs:
    return MoleculeFeaturizer(conformer=True).packed([*esol["smiles"].iloc[:8], *EXTRA])


@pytest.fixture(scope="module")
def batch(packed: PackedGraphs) -> GraphBatch:
    return packed.batch(range(len(packed))).with_dtype(torch.float64)


def make_encoder(batch: GraphBatch, **options) -> EGNNEncoder:
    """A float64 encoder in eval mode whose coordinates move by a sizeable amount (the
    reference initialisation scales the coordinate update by 0.001) and whose batch-norm
    statistics are not the defaults."""
    torch.manual_seed(0)
    encoder = EGNNEncoder(
        batch.x.shape[1], batch.edge_attr.shape[1], HIDDEN, num_layers=3, dropout=0.2, **options
    ).double()
    with torch.no_grad():
        for layer in encoder.layers:
            nn.init.normal_(layer.coord_mlp[-1].weight, std=0.3)
        for _ in range(3):
            encoder(batch)
    return encoder.eval()


def moved(batch: GraphBatch, rotation: torch.Tensor, shift: torch.Tensor) -> GraphBatch:
    return replace(batch, pos=batch.pos @ rotation.T + shift)


def assert_same(actual: EncoderOutput, expected: EncoderOutput, pos=None) -> None:
    torch.testing.assert_close(actual.node, expected.node, rtol=0, atol=ATOL)
    torch.testing.assert_close(actual.graph, expected.graph, rtol=0, atol=ATOL)
    if pos is not None:
        torch.testing.assert_close(actual.pos, pos, rtol=0, atol=ATOL)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_rotation_and_translation(batch: GraphBatch, options: dict) -> None:
    encoder = make_encoder(batch, **options)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = encoder(batch)
        # coordinates really move, so the equivariance check below is not trivial
        assert (out.pos - batch.pos).abs().max() > 0.05
        for seed in range(3):
            rotation = random_rotation(seed)
            shift = 10 * torch.randn(3, generator=generator, dtype=torch.float64)
            # invariant node and graph states; coordinates rotate and translate
            assert_same(encoder(moved(batch, rotation, shift)), out, out.pos @ rotation.T + shift)


def test_output_depends_on_the_geometry(batch: GraphBatch) -> None:
    # invariance is not blindness: a non-rigid change of the coordinates changes outputs
    encoder = make_encoder(batch)
    stretched = replace(batch, pos=batch.pos * torch.tensor([1.3, 1.0, 1.0], dtype=torch.float64))
    with torch.no_grad():
        assert (encoder(stretched).graph - encoder(batch).graph).abs().max() > 1e-4


def signed_volume(pos: torch.Tensor) -> torch.Tensor:
    """Handedness of alanine's stereocentre (atom 1; neighbours 0 = CH3, 2 = N, 3 = COOH)."""
    return torch.linalg.det(torch.stack([pos[0] - pos[1], pos[2] - pos[1], pos[3] - pos[1]]))


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_mirror_image_is_the_same_to_egnn(
    smiles_fixtures: SmilesFixtures, batch: GraphBatch, options: dict
) -> None:
    packed = MoleculeFeaturizer(conformer=True).packed(list(smiles_fixtures.enantiomers))
    left, right = (packed.batch([k]).with_dtype(torch.float64) for k in (0, 1))
    mirrored = replace(left, pos=left.pos * MIRROR)
    # the mirrored L conformer has D's handedness (the ETKDG conformers respect the tags)
    assert signed_volume(left.pos) * signed_volume(right.pos) < 0
    assert signed_volume(mirrored.pos) * signed_volume(right.pos) > 0
    encoder = make_encoder(batch, **options)
    with torch.no_grad():
        out = encoder(left)
        # E(3): a reflection leaves the invariant outputs, and reflects the coordinates
        assert_same(encoder(mirrored), out, out.pos * MIRROR)
        # so EGNN tells L from D only through the chiral tag of the node features
        assert not torch.equal(left.x, right.x)
        assert (encoder(right).graph - out.graph).abs().max() > 1e-4
        assert_same(encoder(replace(mirrored, x=right.x)), encoder(replace(left, x=right.x)))


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_node_permutation(batch: GraphBatch, options: dict) -> None:
    encoder = make_encoder(batch, **options)
    with torch.no_grad():
        out = encoder(batch)
        perms = [within_graph_permutation(batch, seed) for seed in range(2)]
        # and a permutation mixing graphs: membership travels with the node via batch.batch
        perms.append(torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(5)))
        for perm in perms:
            permuted = encoder(permute_batch_nodes(batch, perm))
            torch.testing.assert_close(permuted.graph, out.graph, rtol=0, atol=ATOL)
            torch.testing.assert_close(permuted.node, out.node[perm], rtol=0, atol=ATOL)
            torch.testing.assert_close(permuted.pos, out.pos[perm], rtol=0, atol=ATOL)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_edge_permutation(batch: GraphBatch, options: dict) -> None:
    encoder = make_encoder(batch, **options)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out = encoder(batch)
        for _ in range(2):
            perm = torch.randperm(batch.num_edges, generator=generator)
            assert_same(encoder(permute_batch_edges(batch, perm)), out, out.pos)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_graph_alone_equals_graph_in_batch(
    packed: PackedGraphs, batch: GraphBatch, options: dict
) -> None:
    encoder = make_encoder(batch, **options)
    starts = torch.cumsum(packed.node_counts, 0) - packed.node_counts
    with torch.no_grad():
        together = encoder(batch)
        for k in (0, 5, 8, 9, 10):  # includes the single atom (8) and the salt (9)
            alone = encoder(packed.batch([k]).with_dtype(torch.float64))
            nodes = slice(int(starts[k]), int(starts[k] + packed.node_counts[k]))
            torch.testing.assert_close(alone.graph[0], together.graph[k], rtol=0, atol=ATOL)
            torch.testing.assert_close(alone.node, together.node[nodes], rtol=0, atol=ATOL)
            torch.testing.assert_close(alone.pos, together.pos[nodes], rtol=0, atol=ATOL)


@pytest.mark.parametrize("smiles", [["C"], ["[Na+].[Cl-]"], ["C", "[Xe]", "CCO"]])
def test_single_node_and_edgeless_graphs(batch: GraphBatch, smiles: list[str]) -> None:
    encoder = make_encoder(batch)
    small = MoleculeFeaturizer(conformer=True).packed(smiles)
    graphs = small.batch(range(len(smiles))).with_dtype(torch.float64)
    with torch.no_grad():
        out = encoder(graphs)
    assert out.node.shape == (int(small.node_counts.sum()), HIDDEN)
    assert out.graph.shape == (len(smiles), HIDDEN)
    assert bool(torch.isfinite(out.node).all()) and bool(torch.isfinite(out.graph).all())
    # an atom without neighbours keeps its position (the mean over no edges is 0)
    torch.testing.assert_close(out.pos[0], graphs.pos[0], rtol=0, atol=0)
    # an edgeless graph's sum readout is the sum of its nodes' states
    torch.testing.assert_close(out.graph[0], out.node[: small.node_counts[0]].sum(0))


@pytest.mark.parametrize("readout", ["sum", "mean", "max", "attention", "set2set"])
def test_output_shapes(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout=readout)
    with torch.no_grad():
        out = encoder(batch)
    width = 2 * HIDDEN if readout == "set2set" else HIDDEN
    assert encoder.out_dim == width and EGNNEncoder.requires_positions
    assert out.node.shape == (batch.num_nodes, HIDDEN)
    assert out.graph.shape == (batch.num_graphs, width) == (11, width)
    assert out.pos.shape == (batch.num_nodes, 3)
    assert out.node.dtype == out.graph.dtype == out.pos.dtype == torch.float64


def test_layer_update_rule_on_two_atoms() -> None:
    # one edge 1 -> 0: node 0 moves along x_0 - x_1 by phi_x(m_01) (mean over one edge)
    torch.manual_seed(0)
    layer = EGNNLayer(4, 2).double()
    h = torch.randn(2, 4, dtype=torch.float64)
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], dtype=torch.float64)
    src, dst, edge_attr = torch.tensor([1]), torch.tensor([0]), torch.ones(1, 2).double()
    h_new, pos_new = layer(h, pos, src, dst, edge_attr)
    m = layer.edge_mlp(torch.cat([h[0], h[1], torch.tensor([9.0]).double(), edge_attr[0]]))
    expected_pos0 = pos[0] + (pos[0] - pos[1]) * layer.coord_mlp(m)
    torch.testing.assert_close(pos_new[0], expected_pos0, rtol=0, atol=1e-15)
    torch.testing.assert_close(pos_new[1], pos[1], rtol=0, atol=0)  # no incoming edge
    expected_h = layer.node_mlp(torch.cat([h, torch.stack([m, torch.zeros_like(m)])], -1))
    torch.testing.assert_close(h_new, expected_h, rtol=0, atol=1e-15)


def test_batch_without_coordinates_fails_clearly(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    flat = MoleculeFeaturizer().packed(["CCO"]).batch([0]).with_dtype(torch.float64)
    with pytest.raises(ValueError, match="EGNNEncoder needs node coordinates"):
        encoder(flat)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_padded_batch_matches_plain_batch(packed: PackedGraphs, norm: str) -> None:
    # training mode (masked batch norm), and the gradients too: the zero-length padding
    # self-loops must neither change real graphs nor put NaN into the gradients
    indices = [0, 3, 8, 9, 10, 5]
    plain = packed.batch(indices).with_dtype(torch.float64)
    padded = packed.batch(indices, padding=Padding(graphs=8, node_multiple=64)).with_dtype(
        torch.float64
    )
    assert padded.num_nodes > plain.num_nodes and padded.num_edges > plain.num_edges
    torch.manual_seed(0)
    encoder = EGNNEncoder(packed.node_dim, packed.edge_dim, HIDDEN, num_layers=3, norm=norm)
    encoder.double().train()
    grads = []
    outputs = []
    for b in (plain, padded):
        encoder.zero_grad()
        out = encoder(b)
        (out.graph[: len(indices)].square().sum() + out.pos[: plain.num_nodes].sum()).backward()
        outputs.append(out)
        grads.append([p.grad.clone() for p in encoder.parameters()])
    n = plain.num_nodes
    torch.testing.assert_close(
        outputs[1].graph[: len(indices)], outputs[0].graph, atol=ATOL, rtol=0
    )
    torch.testing.assert_close(outputs[1].node[:n], outputs[0].node, atol=ATOL, rtol=0)
    torch.testing.assert_close(outputs[1].pos[:n], outputs[0].pos, atol=ATOL, rtol=0)
    for a, b in zip(*grads, strict=True):
        assert bool(torch.isfinite(b).all())
        torch.testing.assert_close(b, a, atol=1e-8, rtol=1e-7)  # threads reorder sums


def test_overfits_32_esol_molecules(esol: pd.DataFrame) -> None:
    frame = esol.iloc[:32]
    packed = MoleculeFeaturizer(conformer=True).packed(frame["smiles"].tolist())
    y = torch.tensor(frame[ESOL_TARGET].to_numpy(), dtype=torch.float32).view(-1, 1)
    y = (y - y.mean()) / y.std()
    batch = packed.batch(range(32), y)
    torch.manual_seed(0)
    encoder = EGNNEncoder(
        packed.node_dim, packed.edge_dim, hidden_dim=64, num_layers=3, norm="batch", readout="mean"
    )
    head = nn.Linear(encoder.out_dim, 1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(head(encoder(batch).graph), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 0.5
    first = next((step for step, value in enumerate(losses) if value < 0.05), None)
    assert first is not None, f"training MSE after 150 steps: {losses[-1]:.4f}"
    encoder.eval()  # the fit holds with batch norm's running statistics
    with torch.no_grad():
        mse = nn.functional.mse_loss(head(encoder(batch).graph), batch.y).item()
    assert mse < 0.05, f"eval-mode MSE {mse:.4f} (training MSE first < 0.05 at step {first})"


def test_config_builds_the_encoder() -> None:
    cfg = OmegaConf.load(config_dir() / "encoder" / "egnn.yaml")
    featurizer = MoleculeFeaturizer(conformer=True)
    encoder = build(cfg, in_node_dim=featurizer.node_dim, in_edge_dim=featurizer.edge_dim)
    assert type(encoder) is EGNNEncoder and encoder.requires_positions
    assert encoder.out_dim == cfg.hidden_dim
    out = encoder.eval()(featurizer.packed(["CCO", "C"]).batch([0, 1]))
    assert out.graph.shape == (2, cfg.hidden_dim) and out.pos.shape == (4, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_training_step_matches_eager(packed: PackedGraphs) -> None:
    device = torch.device("cuda")
    batch = packed.to(device).batch(range(11), padding=Padding(graphs=12, node_multiple=128))
    batch = batch.with_dtype(torch.float64)
    torch.manual_seed(0)
    encoder = EGNNEncoder(packed.node_dim, packed.edge_dim, 32, norm="batch").to(device).double()
    step = _TensorStep(encoder, batch.num_graphs, num_real=11)
    inputs = (batch.x, batch.pos, batch.src, batch.dst, batch.edge_attr, batch.batch)
    inputs = (*inputs, batch.node_mask)
    saved = {k: v.clone() for k, v in encoder.state_dict().items()}
    graphed = torch.cuda.make_graphed_callables(step, inputs)
    encoder.load_state_dict(saved)  # capture's warm-up moved the running statistics
    results = []
    for fn in (step, graphed):
        encoder.zero_grad()
        loss = fn(*inputs)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in encoder.parameters()]))
        encoder.load_state_dict(saved)
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-10, atol=0)
    # float64 atomics sum in any order: noise relative to the largest gradient (some are
    # exactly zero in exact arithmetic, e.g. a bias just before batch norm)
    scale = max(float(g.abs().max()) for g in results[0][1])
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-8, atol=1e-12 * scale)


class _TensorStep(nn.Module):
    """Encoder → a scalar loss over the real graphs, as a function of tensors only (what
    a CUDA graph replays). The padding graph is left out, as the masked training loss
    leaves it out: its one node receives every padding self-loop, so its states are large.
    """

    def __init__(self, encoder: EGNNEncoder, num_graphs: int, num_real: int) -> None:
        super().__init__()
        self.encoder, self.num_graphs, self.num_real = encoder, num_graphs, num_real

    def forward(self, x, pos, src, dst, edge_attr, graph, node_mask) -> torch.Tensor:
        b = GraphBatch(x, src, dst, edge_attr, graph, self.num_graphs, pos, node_mask=node_mask)
        out = self.encoder(b)
        real_pos = out.pos.square().sum(-1) * node_mask.to(out.pos.dtype)
        return out.graph[: self.num_real].square().sum() + real_pos.sum()
