"""GATEncoder: GATv2 attention against a loop, self-loop features, attention sums, heads.

Shared encoder properties: test_encoder_properties.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import small_encoder
from torch import nn

from molgraph.batch import GraphBatch
from molgraph.nn.encoders.gat import GATEncoder, GATv2Conv, add_self_loops

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN = 32


def make_encoder(batch: GraphBatch) -> GATEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    return small_encoder(
        GATEncoder, batch, hidden_dim=HIDDEN, num_layers=3, dropout=0.2, readout="sum", norm="batch"
    )


def tiny_graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A triangle 0-1-2 with a tail 2-3 (both directions) and an isolated node 4.

    Features ``[5, 3]``, src, dst ``[8]`` in a scrambled order, edge features ``[8, 2]``
    that differ between the two directions of a bond.
    """
    bonds = [(0, 1), (1, 2), (0, 2), (2, 3)]
    src = torch.tensor([a for a, b in bonds] + [b for a, b in bonds])
    dst = torch.tensor([b for a, b in bonds] + [a for a, b in bonds])
    order = torch.tensor([5, 0, 7, 2, 4, 1, 6, 3])
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    edge_attr = torch.randn(8, 2, generator=generator, dtype=torch.float64)
    return x, src[order], dst[order], edge_attr


def loop_gatv2(conv: GATv2Conv, h, src, dst, edge_attr) -> torch.Tensor:
    """GATv2 by its formula: one destination, one head, one neighbour at a time."""
    heads, width = conv.heads, conv.head_dim
    out = torch.zeros(h.shape[0], heads * width, dtype=h.dtype)
    for i in range(h.shape[0]):
        incoming = [
            (int(j), edge_attr[e]) for e, (j, t) in enumerate(zip(src, dst, strict=True)) if t == i
        ]
        loop_attr = (
            torch.stack([a for _, a in incoming]).mean(0)
            if incoming
            else torch.zeros(edge_attr.shape[1], dtype=h.dtype)
        )
        neighbours = [*incoming, (i, loop_attr)]
        for k in range(heads):
            rows = slice(k * width, (k + 1) * width)
            w_s, b_s = conv.lin_src.weight[rows], conv.lin_src.bias[rows]
            w_t, b_t = conv.lin_dst.weight[rows], conv.lin_dst.bias[rows]
            w_e = conv.lin_edge.weight[rows]
            scores, messages = [], []
            for j, a in neighbours:
                z = (w_s @ h[j] + b_s) + (w_t @ h[i] + b_t) + w_e @ a
                scores.append(conv.att[0, k] @ nn.functional.leaky_relu(z, 0.2))
                message = w_s @ h[j] + b_s
                messages.append(message + w_e @ a if conv.edge_messages else message)
            alpha = torch.softmax(torch.stack(scores), 0)
            out[i, rows] = (alpha.unsqueeze(1) * torch.stack(messages)).sum(0)
    return out + conv.bias


@pytest.mark.parametrize("edge_messages", [False, True])
def test_gatv2_conv_equals_loop_formula(edge_messages: bool) -> None:
    x, src, dst, edge_attr = tiny_graph()
    torch.manual_seed(0)
    conv = GATv2Conv(3, 6, edge_dim=2, heads=3, edge_messages=edge_messages).double()
    with torch.no_grad():
        conv.bias.normal_()
        out = conv(x, src, dst, edge_attr)
        expected = loop_gatv2(conv, x, src, dst, edge_attr)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    # the isolated node attends only to itself: W_s h_4 + b_s (+ W_e 0) + b
    lone = conv.lin_src(x[4]) + conv.bias
    torch.testing.assert_close(out[4], lone.detach(), rtol=0, atol=1e-12)


def test_self_loops_carry_mean_incoming_edge_features() -> None:
    _, src, dst, edge_attr = tiny_graph()
    src2, dst2, attr2 = add_self_loops(src, dst, edge_attr, 5)
    assert torch.equal(src2[:8], src) and torch.equal(dst2[:8], dst)
    assert torch.equal(src2[8:], torch.arange(5)) and torch.equal(dst2[8:], torch.arange(5))
    into_2 = edge_attr[dst == 2]  # node 2 has three neighbours
    assert into_2.shape[0] == 3
    torch.testing.assert_close(attr2[8 + 2], into_2.mean(0), rtol=0, atol=1e-15)
    assert torch.equal(attr2[8 + 4], torch.zeros(2, dtype=torch.float64))  # isolated node


def test_attention_weights_sum_to_one_per_destination_and_head(batch_2d: GraphBatch) -> None:
    torch.manual_seed(0)
    conv = GATv2Conv(batch_2d.x.shape[1], HIDDEN, batch_2d.edge_attr.shape[1], heads=4).double()
    with torch.no_grad():
        _, alpha = conv.forward_with_attention(
            batch_2d.x, batch_2d.src, batch_2d.dst, batch_2d.edge_attr
        )
    n, e = batch_2d.num_nodes, batch_2d.num_edges
    assert alpha.shape == (e + n, 4)
    assert bool((alpha > 0).all())
    dst = torch.cat([batch_2d.dst, torch.arange(n)])
    totals = torch.zeros(n, 4, dtype=torch.float64).index_add_(0, dst, alpha)
    torch.testing.assert_close(totals, torch.ones(n, 4, dtype=torch.float64), rtol=0, atol=1e-12)
    # nodes without neighbours (the single atom, the two ions) put all weight on themselves
    isolated = torch.bincount(batch_2d.dst, minlength=n) == 0
    assert int(isolated.sum()) == 3
    torch.testing.assert_close(alpha[e:][isolated], torch.ones(3, 4, dtype=torch.float64))
    # and the weights are not uniform: the attention looks at its inputs
    assert float(alpha[:e].std()) > 1e-2


def test_heads_must_divide_hidden_dim() -> None:
    with pytest.raises(ValueError, match=r"hidden_dim \(30\) must be a multiple of heads \(4\)"):
        GATEncoder(10, 3, hidden_dim=30, heads=4)
    with pytest.raises(ValueError, match="multiple of heads"):
        GATv2Conv(10, 30, 3, heads=4)
    assert GATEncoder(10, 3, hidden_dim=32, heads=4).layers[0].head_dim == 8


def test_edge_features_change_the_output(batch_2d: GraphBatch) -> None:
    encoder = make_encoder(batch_2d)
    other = replace(batch_2d, edge_attr=torch.randn_like(batch_2d.edge_attr))
    with torch.no_grad():
        difference = (encoder(other).graph - encoder(batch_2d).graph).abs()
    # graphs with bonds change; the single atom (8) and the salt (9) have no edges
    assert bool((difference[[0, 1, 2, 3, 4, 5, 6, 7, 10]].amax(1) > 1e-6).all())
    torch.testing.assert_close(difference[[8, 9]], torch.zeros_like(difference[[8, 9]]))
