"""EGNNEncoder: the layer update rule by hand (coordinates and states).

Shared encoder properties, including E(3) symmetry of the output coordinates and mirror
images: test_encoder_properties.py.
"""

from __future__ import annotations

import torch

from molgraph.nn.encoders.egnn import EGNNLayer


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
