"""PaiNNEncoder: E(3) symmetry (rotation, translation, reflection; equivariant vector
features inside), permutations, batches, padding, cutoff, overfitting, config."""

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
from molgraph.geometry import cosine_cutoff, edge_vectors, sinc_rbf, unit
from molgraph.nn.encoders.painn import PaiNNEncoder, PaiNNMessage, PaiNNUpdate
from molgraph.nn.output import EncoderOutput
from molgraph.packed import PackedGraphs, Padding

HIDDEN = 16
ATOL = 1e-10
EXTRA = ["C", "[Na+].[Cl-]", "c1ccccc1O"]  # single atom, salt (two edgeless atoms), ring
OPTIONS = {
    "default": {},
    "batch-norm": {"norm": "batch"},
    "edge-features": {"norm": "layer", "use_edge_attr": True, "readout": "set2set"},
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


def make_encoder(batch: GraphBatch, **options) -> PaiNNEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    torch.manual_seed(0)
    encoder = PaiNNEncoder(
        batch.x.shape[1], batch.edge_attr.shape[1], HIDDEN, num_layers=3, dropout=0.2, **options
    ).double()
    with torch.no_grad():
        for _ in range(3):
            encoder(batch)
    return encoder.eval()


def moved(batch: GraphBatch, rotation: torch.Tensor, shift: torch.Tensor) -> GraphBatch:
    return replace(batch, pos=batch.pos @ rotation.T + shift)


def assert_same(actual: EncoderOutput, expected: EncoderOutput) -> None:
    torch.testing.assert_close(actual.node, expected.node, rtol=0, atol=ATOL)
    torch.testing.assert_close(actual.graph, expected.graph, rtol=0, atol=ATOL)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_rotation_and_translation(batch: GraphBatch, options: dict) -> None:
    encoder = make_encoder(batch, **options)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = encoder(batch)
        assert out.pos is None
        for seed in range(3):
            shift = 10 * torch.randn(3, generator=generator, dtype=torch.float64)
            assert_same(encoder(moved(batch, random_rotation(seed), shift)), out)


def test_output_depends_on_the_geometry(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    stretched = replace(batch, pos=batch.pos * torch.tensor([1.3, 1.0, 1.0], dtype=torch.float64))
    with torch.no_grad():
        assert (encoder(stretched).graph - encoder(batch).graph).abs().max() > 1e-4


def layer_inputs(batch: GraphBatch, transform: torch.Tensor | None = None):
    """Random scalar and vector features on the batch's graph, and its edge geometry;
    vectors and positions transformed by ``transform`` ``[3, 3]`` when given."""
    generator = torch.Generator().manual_seed(3)
    s = torch.randn(batch.num_nodes, HIDDEN, generator=generator, dtype=torch.float64)
    v = torch.randn(batch.num_nodes, 3, HIDDEN, generator=generator, dtype=torch.float64)
    pos = batch.pos
    if transform is not None:
        v, pos = torch.einsum("ij,njf->nif", transform, v), pos @ transform.T
    vec, dist = edge_vectors(pos, batch.src, batch.dst)
    geometry = (sinc_rbf(dist, 5.0, 20), cosine_cutoff(dist, 5.0), unit(vec))
    return s, v, geometry


@pytest.mark.parametrize(
    "transform",
    [random_rotation(7), torch.diag(MIRROR), random_rotation(8) @ torch.diag(MIRROR)],
    ids=["rotation", "reflection", "improper-rotation"],
)
def test_message_and_update_blocks_are_o3_equivariant(
    batch: GraphBatch, transform: torch.Tensor
) -> None:
    # vector features [N, 3, F] transform with the coordinates; scalars do not change
    torch.manual_seed(0)
    message, update = PaiNNMessage(HIDDEN, 20).double(), PaiNNUpdate(HIDDEN).double()
    s, v, geometry = layer_inputs(batch)
    s_t, v_t, geometry_t = layer_inputs(batch, transform)
    with torch.no_grad():
        for block, args, args_t in [
            (
                message,
                (s, v, batch.src, batch.dst, *geometry),
                (s_t, v_t, batch.src, batch.dst, *geometry_t),
            ),
            (update, (s, v), (s_t, v_t)),
        ]:
            ds, dv = block(*args)
            ds_t, dv_t = block(*args_t)
            assert dv.abs().max() > 1e-2  # vectors are not trivially zero
            torch.testing.assert_close(ds_t, ds, rtol=0, atol=1e-12)
            expected = torch.einsum("ij,njf->nif", transform, dv)
            torch.testing.assert_close(dv_t, expected, rtol=0, atol=1e-12)


def signed_volume(pos: torch.Tensor) -> torch.Tensor:
    """Handedness of alanine's stereocentre (atom 1; neighbours 0 = CH3, 2 = N, 3 = COOH)."""
    return torch.linalg.det(torch.stack([pos[0] - pos[1], pos[2] - pos[1], pos[3] - pos[1]]))


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_mirror_image_is_the_same_to_painn(
    smiles_fixtures: SmilesFixtures, batch: GraphBatch, options: dict
) -> None:
    # PaiNN has no cross product: it is E(3)-, not only SE(3)-invariant
    packed = MoleculeFeaturizer(conformer=True).packed(list(smiles_fixtures.enantiomers))
    left, right = (packed.batch([k]).with_dtype(torch.float64) for k in (0, 1))
    mirrored = replace(left, pos=left.pos * MIRROR)
    assert signed_volume(left.pos) * signed_volume(right.pos) < 0
    assert signed_volume(mirrored.pos) * signed_volume(right.pos) > 0  # a D geometry
    encoder = make_encoder(batch, **options)
    with torch.no_grad():
        out = encoder(left)
        assert_same(encoder(mirrored), out)
        # L and D differ to PaiNN only through the chiral tag of the node features
        assert not torch.equal(left.x, right.x)
        assert (encoder(right).graph - out.graph).abs().max() > 1e-4
        assert_same(encoder(replace(mirrored, x=right.x)), encoder(replace(left, x=right.x)))


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_node_permutation(batch: GraphBatch, options: dict) -> None:
    encoder = make_encoder(batch, **options)
    with torch.no_grad():
        out = encoder(batch)
        perms = [within_graph_permutation(batch, seed) for seed in range(2)]
        perms.append(torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(5)))
        for perm in perms:
            permuted = encoder(permute_batch_nodes(batch, perm))
            torch.testing.assert_close(permuted.graph, out.graph, rtol=0, atol=ATOL)
            torch.testing.assert_close(permuted.node, out.node[perm], rtol=0, atol=ATOL)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_edge_permutation(batch: GraphBatch, options: dict) -> None:
    encoder = make_encoder(batch, **options)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out = encoder(batch)
        for _ in range(2):
            perm = torch.randperm(batch.num_edges, generator=generator)
            assert_same(encoder(permute_batch_edges(batch, perm)), out)


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


def test_cutoff_silences_longer_edges(batch: GraphBatch) -> None:
    # every heavy-atom bond is longer than 1 Å: with a 1 Å cutoff PaiNN sees no edge
    torch.manual_seed(0)
    encoder = PaiNNEncoder(batch.x.shape[1], batch.edge_attr.shape[1], HIDDEN, cutoff=1.0)
    encoder.double().eval()
    _, dist = edge_vectors(batch.pos, batch.src, batch.dst)
    assert dist.min() > 1.0
    empty = torch.zeros(0, dtype=torch.long)
    edgeless = replace(batch, src=empty, dst=empty, edge_attr=batch.edge_attr[:0])
    with torch.no_grad():
        assert_same(encoder(batch), encoder(edgeless))
        encoder.cutoff = 5.0
        assert (encoder(batch).graph - encoder(edgeless).graph).abs().max() > 1e-3


@pytest.mark.parametrize("smiles", [["C"], ["[Na+].[Cl-]"], ["C", "[Xe]", "CCO"]])
def test_single_node_and_edgeless_graphs(batch: GraphBatch, smiles: list[str]) -> None:
    encoder = make_encoder(batch)
    small = MoleculeFeaturizer(conformer=True).packed(smiles)
    with torch.no_grad():
        out = encoder(small.batch(range(len(smiles))).with_dtype(torch.float64))
    assert out.node.shape == (int(small.node_counts.sum()), HIDDEN)
    assert out.graph.shape == (len(smiles), HIDDEN)
    assert bool(torch.isfinite(out.node).all()) and bool(torch.isfinite(out.graph).all())
    torch.testing.assert_close(out.graph[0], out.node[: small.node_counts[0]].sum(0))


@pytest.mark.parametrize("readout", ["sum", "mean", "max", "attention", "set2set"])
def test_output_shapes(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout=readout)
    with torch.no_grad():
        out = encoder(batch)
    width = 2 * HIDDEN if readout == "set2set" else HIDDEN
    assert encoder.out_dim == width and PaiNNEncoder.requires_positions
    assert out.node.shape == (batch.num_nodes, HIDDEN)
    assert out.graph.shape == (batch.num_graphs, width) == (11, width)
    assert out.node.dtype == out.graph.dtype == torch.float64 and out.pos is None


def test_batch_without_coordinates_fails_clearly(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    flat = MoleculeFeaturizer().packed(["CCO"]).batch([0]).with_dtype(torch.float64)
    with pytest.raises(ValueError, match="PaiNNEncoder needs node coordinates"):
        encoder(flat)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_padded_batch_matches_plain_batch(packed: PackedGraphs, norm: str) -> None:
    # training mode, gradients included: zero-length padding self-loops change nothing
    indices = [0, 3, 8, 9, 10, 5]
    plain = packed.batch(indices).with_dtype(torch.float64)
    padded = packed.batch(indices, padding=Padding(graphs=8, node_multiple=64))
    padded = padded.with_dtype(torch.float64)
    torch.manual_seed(0)
    encoder = PaiNNEncoder(
        packed.node_dim, packed.edge_dim, HIDDEN, norm=norm, use_edge_attr=True
    ).double()
    encoder.train()
    outputs, grads = [], []
    for b in (plain, padded):
        encoder.zero_grad()
        out = encoder(b)
        out.graph[: len(indices)].square().sum().backward()
        outputs.append(out)
        grads.append([p.grad.clone() for p in encoder.parameters()])
    n = plain.num_nodes
    torch.testing.assert_close(
        outputs[1].graph[: len(indices)], outputs[0].graph, atol=ATOL, rtol=0
    )
    torch.testing.assert_close(outputs[1].node[:n], outputs[0].node, atol=ATOL, rtol=0)
    for a, b in zip(*grads, strict=True):
        assert bool(torch.isfinite(b).all())
        torch.testing.assert_close(b, a, atol=1e-9, rtol=1e-9)


def test_overfits_32_esol_molecules(esol: pd.DataFrame) -> None:
    frame = esol.iloc[:32]
    packed = MoleculeFeaturizer(conformer=True).packed(frame["smiles"].tolist())
    y = torch.tensor(frame[ESOL_TARGET].to_numpy(), dtype=torch.float32).view(-1, 1)
    y = (y - y.mean()) / y.std()
    batch = packed.batch(range(32), y)
    torch.manual_seed(0)
    encoder = PaiNNEncoder(
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
    encoder.eval()
    with torch.no_grad():
        mse = nn.functional.mse_loss(head(encoder(batch).graph), batch.y).item()
    assert mse < 0.05, f"eval-mode MSE {mse:.4f} (training MSE first < 0.05 at step {first})"


def test_config_builds_the_encoder() -> None:
    cfg = OmegaConf.load(config_dir() / "encoder" / "painn.yaml")
    featurizer = MoleculeFeaturizer(conformer=True)
    encoder = build(cfg, in_node_dim=featurizer.node_dim, in_edge_dim=featurizer.edge_dim)
    assert type(encoder) is PaiNNEncoder and encoder.requires_positions
    assert encoder.out_dim == cfg.hidden_dim and encoder.cutoff == 5.0
    out = encoder.eval()(featurizer.packed(["CCO", "C"]).batch([0, 1]))
    assert out.graph.shape == (2, cfg.hidden_dim)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_training_step_matches_eager(packed: PackedGraphs) -> None:
    device = torch.device("cuda")
    batch = packed.to(device).batch(range(11), padding=Padding(graphs=12, node_multiple=128))
    batch = batch.with_dtype(torch.float64)
    torch.manual_seed(0)
    encoder = PaiNNEncoder(packed.node_dim, packed.edge_dim, 32, norm="batch")
    encoder = encoder.to(device).double()
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

    def __init__(self, encoder: PaiNNEncoder, num_graphs: int, num_real: int) -> None:
        super().__init__()
        self.encoder, self.num_graphs, self.num_real = encoder, num_graphs, num_real

    def forward(self, x, pos, src, dst, edge_attr, graph, node_mask) -> torch.Tensor:
        b = GraphBatch(x, src, dst, edge_attr, graph, self.num_graphs, pos, node_mask=node_mask)
        return self.encoder(b).graph[: self.num_real].square().sum()
