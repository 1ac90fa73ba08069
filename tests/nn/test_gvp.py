"""GVPEncoder: E(3) symmetry (rotation, translation, reflection; equivariant GVPs inside),
permutations, batches, padding, node vector inputs, overfitting, config."""

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
from molgraph.geometry import edge_vectors
from molgraph.nn.encoders.gvp import GVP, GVPConvLayer, GVPEncoder, GVPLayerNorm, VectorDropout
from molgraph.nn.output import EncoderOutput
from molgraph.packed import PackedGraphs, Padding

HIDDEN, VECTORS = 16, 4
ATOL = 1e-10
EXTRA = ["C", "[Na+].[Cl-]", "c1ccccc1O"]  # single atom, salt (two edgeless atoms), ring
OPTIONS = {
    "default": {},
    "batch-norm": {"norm": "batch", "vector_gate": True},
    "no-node-vectors": {"node_vectors": "none", "norm": "none", "readout": "set2set"},
}
MIRROR = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
TRANSFORMS = {
    "rotation": random_rotation(7),
    "reflection": torch.diag(MIRROR),
    "improper-rotation": random_rotation(8) @ torch.diag(MIRROR),
}


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


def make_encoder(batch: GraphBatch, **options) -> GVPEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    torch.manual_seed(0)
    encoder = GVPEncoder(
        batch.x.shape[1],
        batch.edge_attr.shape[1],
        HIDDEN,
        VECTORS,
        edge_hidden_dim=8,
        num_layers=2,
        dropout=0.2,
        rbf_max=5.0,
        **options,
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


def random_features(n: int, dims: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    s = torch.randn(n, dims[0], generator=generator, dtype=torch.float64)
    return s, torch.randn(n, dims[1], 3, generator=generator, dtype=torch.float64)


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


@pytest.mark.parametrize("transform", TRANSFORMS.values(), ids=TRANSFORMS.keys())
@pytest.mark.parametrize("vector_gate", [False, True])
def test_gvp_and_its_layers_are_o3_equivariant(
    batch: GraphBatch, transform: torch.Tensor, vector_gate: bool
) -> None:
    # vector channels [n, C, 3] transform with the coordinates; scalars do not change
    torch.manual_seed(0)
    node, edge = (HIDDEN, VECTORS), (8, 2)
    s, v = random_features(batch.num_nodes, node, 1)
    edge_s, edge_v = random_features(batch.num_edges, edge, 2)
    conv = GVPConvLayer(node, edge, vector_gate=vector_gate, norm="layer").double().eval()
    modules = {
        "gvp": (GVP(node, (8, 3), vector_gate=vector_gate).double(), (s, v)),
        "gvp-no-activations": (GVP(node, (8, 3), False, vector_gate).double(), (s, v)),
        "norm": (GVPLayerNorm(node).double(), (s, v)),
        "conv": (conv, (s, v, batch.src, batch.dst, edge_s, edge_v)),
    }
    with torch.no_grad():
        for name, (module, args) in modules.items():
            out_s, out_v = module(*args)
            transformed = [a @ transform.T if a.dim() == 3 else a for a in args]
            out_s_t, out_v_t = module(*transformed)
            assert out_v.shape[1] == 0 or out_v.abs().max() > 1e-3, name
            torch.testing.assert_close(out_s_t, out_s, rtol=0, atol=1e-12, msg=name)
            torch.testing.assert_close(out_v_t, out_v @ transform.T, rtol=0, atol=1e-12, msg=name)
    # without vector input channels, a GVP's output vectors are zero (of the right shape)
    _, zero = GVP((HIDDEN, 0), (8, 3)).double()(s, v[:, :0])
    assert torch.equal(zero, torch.zeros(len(s), 3, 3, dtype=torch.float64))


def test_vector_dropout_drops_whole_channels() -> None:
    _, v = random_features(50, (1, 8), 3)
    dropout = VectorDropout(0.5).train()
    torch.manual_seed(0)
    out = dropout(v)
    torch.manual_seed(0)
    out_rotated = dropout(v @ random_rotation(1).T)
    torch.testing.assert_close(out_rotated, out @ random_rotation(1).T, rtol=0, atol=1e-14)
    dropped = (out == 0).all(-1)
    assert 0.3 < dropped.double().mean() < 0.7
    kept = ~dropped
    torch.testing.assert_close(out[kept], 2 * v[kept])  # rescaled by 1 / (1 - p)
    assert torch.equal(dropout.eval()(v), v)


def signed_volume(pos: torch.Tensor) -> torch.Tensor:
    """Handedness of alanine's stereocentre (atom 1; neighbours 0 = CH3, 2 = N, 3 = COOH)."""
    return torch.linalg.det(torch.stack([pos[0] - pos[1], pos[2] - pos[1], pos[3] - pos[1]]))


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_mirror_image_is_the_same_to_gvp(
    smiles_fixtures: SmilesFixtures, batch: GraphBatch, options: dict
) -> None:
    # GVPs have no cross product: the GVP-GNN is E(3)-, not only SE(3)-invariant
    packed = MoleculeFeaturizer(conformer=True).packed(list(smiles_fixtures.enantiomers))
    left, right = (packed.batch([k]).with_dtype(torch.float64) for k in (0, 1))
    mirrored = replace(left, pos=left.pos * MIRROR)
    assert signed_volume(left.pos) * signed_volume(right.pos) < 0
    assert signed_volume(mirrored.pos) * signed_volume(right.pos) > 0  # a D geometry
    encoder = make_encoder(batch, **options)
    with torch.no_grad():
        out = encoder(left)
        assert_same(encoder(mirrored), out)
        # L and D differ to the GVP-GNN only through the chiral tag of the node features
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


def test_node_input_vectors_point_to_the_neighbours_mean() -> None:
    # ethanol C0-C1-O2: C1's vector points to the midpoint of C0 and O2; C0's along the bond
    graph = MoleculeFeaturizer(conformer=True).packed(["CCO", "[Xe]"]).batch([0, 1])
    graph = graph.with_dtype(torch.float64)
    encoder = GVPEncoder(graph.x.shape[1], graph.edge_attr.shape[1], HIDDEN, VECTORS).double()
    vec, _ = edge_vectors(graph.pos, graph.src, graph.dst)
    vectors = encoder.input_vectors(graph, vec)
    assert vectors.shape == (4, 1, 3)
    p = graph.pos
    middle = (p[0] + p[2]) / 2 - p[1]
    torch.testing.assert_close(vectors[1, 0], middle / middle.norm(), rtol=0, atol=1e-15)
    torch.testing.assert_close(
        vectors[0, 0], (p[1] - p[0]) / (p[1] - p[0]).norm(), atol=1e-15, rtol=0
    )
    assert torch.equal(vectors[3, 0], torch.zeros(3, dtype=torch.float64))  # isolated atom
    none = GVPEncoder(graph.x.shape[1], graph.edge_attr.shape[1], node_vectors="none")
    assert none.input_vectors(graph, vec).shape == (4, 0, 3)


def test_given_node_vectors_are_required_once_declared(batch: GraphBatch) -> None:
    encoder = GVPEncoder(batch.x.shape[1], batch.edge_attr.shape[1], in_node_vector_dim=2)
    assert encoder.node_in.vi == 3  # two given channels + the derived one
    with pytest.raises(ValueError, match="in_node_vector_dim=2, but this batch has no node"):
        encoder.double()(batch)
    with pytest.raises(ValueError, match="unknown node_vectors"):
        GVPEncoder(batch.x.shape[1], batch.edge_attr.shape[1], node_vectors="bisector")


@pytest.mark.parametrize("smiles", [["C"], ["[Na+].[Cl-]"], ["C", "[Xe]", "CCO"]])
def test_single_node_and_edgeless_graphs(batch: GraphBatch, smiles: list[str]) -> None:
    encoder = make_encoder(batch)
    small = MoleculeFeaturizer(conformer=True).packed(smiles)
    with torch.no_grad():
        out = encoder(small.batch(range(len(smiles))).with_dtype(torch.float64))
    assert out.node.shape == (int(small.node_counts.sum()), HIDDEN)
    assert out.graph.shape == (len(smiles), HIDDEN)
    assert bool(torch.isfinite(out.node).all()) and bool(torch.isfinite(out.graph).all())
    # an edgeless graph's mean readout is the mean of its nodes' states
    torch.testing.assert_close(out.graph[0], out.node[: small.node_counts[0]].mean(0))


@pytest.mark.parametrize("readout", ["sum", "mean", "max", "attention", "set2set"])
def test_output_shapes(batch: GraphBatch, readout: str) -> None:
    encoder = make_encoder(batch, readout=readout)
    with torch.no_grad():
        out = encoder(batch)
    width = 2 * HIDDEN if readout == "set2set" else HIDDEN
    assert encoder.out_dim == width and GVPEncoder.requires_positions
    assert out.node.shape == (batch.num_nodes, HIDDEN)
    assert out.graph.shape == (batch.num_graphs, width) == (11, width)
    assert out.node.dtype == out.graph.dtype == torch.float64 and out.pos is None


def test_batch_without_coordinates_fails_clearly(batch: GraphBatch) -> None:
    encoder = make_encoder(batch)
    flat = MoleculeFeaturizer().packed(["CCO"]).batch([0]).with_dtype(torch.float64)
    with pytest.raises(ValueError, match="GVPEncoder needs node coordinates"):
        encoder(flat)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_padded_batch_matches_plain_batch(packed: PackedGraphs, norm: str) -> None:
    # training mode (no dropout), gradients included: zero-length padding self-loops
    # change nothing, also with batch norm over the edges' input features
    indices = [0, 3, 8, 9, 10, 5]
    plain = packed.batch(indices).with_dtype(torch.float64)
    padded = packed.batch(indices, padding=Padding(graphs=8, node_multiple=64))
    padded = padded.with_dtype(torch.float64)
    torch.manual_seed(0)
    encoder = GVPEncoder(
        packed.node_dim, packed.edge_dim, HIDDEN, VECTORS, num_layers=2, dropout=0.0, norm=norm
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
    encoder = GVPEncoder(
        packed.node_dim, packed.edge_dim, 64, 8, num_layers=2, dropout=0.0, norm="batch"
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
    cfg = OmegaConf.load(config_dir() / "encoder" / "gvp.yaml")
    featurizer = MoleculeFeaturizer(conformer=True)
    encoder = build(cfg, in_node_dim=featurizer.node_dim, in_edge_dim=featurizer.edge_dim)
    assert type(encoder) is GVPEncoder and encoder.requires_positions
    assert encoder.out_dim == cfg.hidden_dim
    out = encoder.eval()(featurizer.packed(["CCO", "C"]).batch([0, 1]))
    assert out.graph.shape == (2, cfg.hidden_dim)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_training_step_matches_eager(packed: PackedGraphs) -> None:
    device = torch.device("cuda")
    batch = packed.to(device).batch(range(11), padding=Padding(graphs=12, node_multiple=128))
    batch = batch.with_dtype(torch.float64)
    torch.manual_seed(0)
    encoder = GVPEncoder(packed.node_dim, packed.edge_dim, 32, 8, dropout=0.0, norm="batch")
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

    def __init__(self, encoder: GVPEncoder, num_graphs: int, num_real: int) -> None:
        super().__init__()
        self.encoder, self.num_graphs, self.num_real = encoder, num_graphs, num_real

    def forward(self, x, pos, src, dst, edge_attr, graph, node_mask) -> torch.Tensor:
        b = GraphBatch(x, src, dst, edge_attr, graph, self.num_graphs, pos, node_mask=node_mask)
        return self.encoder(b).graph[: self.num_real].square().sum()
