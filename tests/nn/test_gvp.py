"""GVPEncoder: O(3)-equivariant GVPs and layers, vector dropout, node vector inputs.

Shared encoder properties, including rotations, translations and mirror images:
test_encoder_properties.py.
"""

from __future__ import annotations

import pytest
import torch
from helpers import MIRROR, random_rotation

from molgraph.batch import GraphBatch
from molgraph.featurize import MoleculeFeaturizer
from molgraph.geometry import edge_vectors
from molgraph.nn.encoders.gvp import GVP, GVPConvLayer, GVPEncoder, GVPLayerNorm, VectorDropout

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN, VECTORS = 16, 4
TRANSFORMS = {
    "rotation": random_rotation(7),
    "reflection": torch.diag(MIRROR),
    "improper-rotation": random_rotation(8) @ torch.diag(MIRROR),
}


def random_features(n: int, dims: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    s = torch.randn(n, dims[0], generator=generator, dtype=torch.float64)
    return s, torch.randn(n, dims[1], 3, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("transform", TRANSFORMS.values(), ids=TRANSFORMS.keys())
@pytest.mark.parametrize("vector_gate", [False, True])
def test_gvp_and_its_layers_are_o3_equivariant(
    batch_3d: GraphBatch, transform: torch.Tensor, vector_gate: bool
) -> None:
    # vector channels [n, C, 3] transform with the coordinates; scalars do not change
    torch.manual_seed(0)
    node, edge = (HIDDEN, VECTORS), (8, 2)
    s, v = random_features(batch_3d.num_nodes, node, 1)
    edge_s, edge_v = random_features(batch_3d.num_edges, edge, 2)
    conv = GVPConvLayer(node, edge, vector_gate=vector_gate, norm="layer").double().eval()
    modules = {
        "gvp": (GVP(node, (8, 3), vector_gate=vector_gate).double(), (s, v)),
        "gvp-no-activations": (GVP(node, (8, 3), False, vector_gate).double(), (s, v)),
        "norm": (GVPLayerNorm(node).double(), (s, v)),
        "conv": (conv, (s, v, batch_3d.src, batch_3d.dst, edge_s, edge_v)),
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


def test_given_node_vectors_are_required_once_declared(batch_3d: GraphBatch) -> None:
    encoder = GVPEncoder(batch_3d.x.shape[1], batch_3d.edge_attr.shape[1], in_node_vector_dim=2)
    assert encoder.node_in.vi == 3  # two given channels + the derived one
    with pytest.raises(ValueError, match="in_node_vector_dim=2, but this batch has no node"):
        encoder.double()(batch_3d)
    with pytest.raises(ValueError, match="unknown node_vectors"):
        GVPEncoder(batch_3d.x.shape[1], batch_3d.edge_attr.shape[1], node_vectors="bisector")
