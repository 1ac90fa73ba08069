"""MPNNEncoder: NNConv against a loop, the CUDA path, the GRU recurrence, shared steps.

Shared encoder properties: test_encoder_properties.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import small_encoder

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.mpnn import MPNNEncoder, NNConv

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN = 32


def make_encoder(batch: GraphBatch) -> MPNNEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    return small_encoder(
        MPNNEncoder,
        batch,
        hidden_dim=HIDDEN,
        num_layers=3,
        dropout=0.2,
        edge_hidden_dim=16,
        readout="sum",
        norm="batch",
    )


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


def test_edge_features_change_the_output(batch_2d: GraphBatch) -> None:
    encoder = make_encoder(batch_2d)
    other = replace(batch_2d, edge_attr=torch.randn_like(batch_2d.edge_attr))
    with torch.no_grad():
        difference = (encoder(other).graph - encoder(batch_2d).graph).abs()
    # graphs with bonds change; the single atom (8) and the salt (9) have no edges
    assert bool((difference[[0, 1, 2, 3, 4, 5, 6, 7, 10]].amax(1) > 1e-6).all())
    torch.testing.assert_close(difference[[8, 9]], torch.zeros_like(difference[[8, 9]]))
