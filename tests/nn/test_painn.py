"""PaiNNEncoder: O(3)-equivariant message and update blocks, the distance cutoff.

Shared encoder properties, including rotations, translations and mirror images:
test_encoder_properties.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import MIRROR, assert_same_output, random_rotation

from molgraph.batch import GraphBatch
from molgraph.geometry import cosine_cutoff, edge_vectors, sinc_rbf, unit
from molgraph.nn.encoders.painn import PaiNNEncoder, PaiNNMessage, PaiNNUpdate

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN = 16


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
    batch_3d: GraphBatch, transform: torch.Tensor
) -> None:
    # vector features [N, 3, F] transform with the coordinates; scalars do not change
    torch.manual_seed(0)
    message, update = PaiNNMessage(HIDDEN, 20).double(), PaiNNUpdate(HIDDEN).double()
    s, v, geometry = layer_inputs(batch_3d)
    s_t, v_t, geometry_t = layer_inputs(batch_3d, transform)
    with torch.no_grad():
        for block, args, args_t in [
            (
                message,
                (s, v, batch_3d.src, batch_3d.dst, *geometry),
                (s_t, v_t, batch_3d.src, batch_3d.dst, *geometry_t),
            ),
            (update, (s, v), (s_t, v_t)),
        ]:
            ds, dv = block(*args)
            ds_t, dv_t = block(*args_t)
            assert dv.abs().max() > 1e-2  # vectors are not trivially zero
            torch.testing.assert_close(ds_t, ds, rtol=0, atol=1e-12)
            expected = torch.einsum("ij,njf->nif", transform, dv)
            torch.testing.assert_close(dv_t, expected, rtol=0, atol=1e-12)


def test_cutoff_silences_longer_edges(batch_3d: GraphBatch) -> None:
    # every heavy-atom bond is longer than 1 Å: with a 1 Å cutoff PaiNN sees no edge
    torch.manual_seed(0)
    encoder = PaiNNEncoder(batch_3d.x.shape[1], batch_3d.edge_attr.shape[1], HIDDEN, cutoff=1.0)
    encoder.double().eval()
    _, dist = edge_vectors(batch_3d.pos, batch_3d.src, batch_3d.dst)
    assert dist.min() > 1.0
    empty = torch.zeros(0, dtype=torch.long)
    edgeless = replace(batch_3d, src=empty, dst=empty, edge_attr=batch_3d.edge_attr[:0])
    with torch.no_grad():
        assert_same_output(encoder(batch_3d), encoder(edgeless), atol=1e-10)
        encoder.cutoff = 5.0
        assert (encoder(batch_3d).graph - encoder(edgeless).graph).abs().max() > 1e-3
