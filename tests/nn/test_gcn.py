"""GCNEncoder: the dense-matrix formula, the paper's two-layer model, edge features ignored.

Shared encoder properties: test_encoder_properties.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import small_encoder

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.gcn import GCNConv, GCNEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN = 32


def make_encoder(batch: GraphBatch) -> GCNEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    return small_encoder(
        GCNEncoder, batch, hidden_dim=HIDDEN, num_layers=3, dropout=0.2, readout="sum", norm="batch"
    )


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


def test_edge_features_are_ignored(batch_2d: GraphBatch) -> None:
    encoder = make_encoder(batch_2d)
    other = replace(batch_2d, edge_attr=torch.randn_like(batch_2d.edge_attr))
    with torch.no_grad():
        torch.testing.assert_close(encoder(other).graph, encoder(batch_2d).graph, rtol=0, atol=0)
