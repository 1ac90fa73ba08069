"""PretrainGINEncoder: what is particular to it (the layer's update rule, jumping knowledge).

The properties shared by all encoders are in test_encoder_properties.py; equality with
DGL-LifeSci's GIN is in tests/pretrained/test_dgllife.py.
"""

from __future__ import annotations

import pytest
import torch

from molgraph.batch import GraphBatch
from molgraph.nn import PretrainGINEncoder
from molgraph.nn.encoders.pretrain_gin import PretrainGINConv

pytestmark = pytest.mark.usefixtures("one_thread")


def test_layer_follows_its_update_rule() -> None:
    # a path 0 - 1 - 2 as directed edges: node 1 hears 0 and 2, the ends hear node 1
    torch.manual_seed(0)
    conv = PretrainGINConv(4, 3).double()
    h, e = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    src, dst = torch.tensor([0, 1, 1, 2]), torch.tensor([1, 0, 2, 1])
    w, s = conv.edge_proj.weight, conv.self_loop
    expected = torch.stack(
        [
            h[0] + s + h[1] + w @ e[1],
            h[1] + s + h[0] + w @ e[0] + h[2] + w @ e[3],
            h[2] + s + h[1] + w @ e[2],
        ]
    )
    torch.testing.assert_close(conv(h, src, dst, e), conv.mlp(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("jk", ["last", "sum", "max", "concat"])
def test_jumping_knowledge_combines_every_layer(batch_2d: GraphBatch, jk: str) -> None:
    torch.manual_seed(0)
    encoder = PretrainGINEncoder(batch_2d.x.shape[1], batch_2d.edge_attr.shape[1], 8, 3, jk=jk)
    encoder = encoder.double().eval()
    states = []
    hooks = [norm.register_forward_hook(lambda m, i, o: states.append(o)) for norm in encoder.norms]
    with torch.no_grad():
        out = encoder(batch_2d)
        first = encoder.node_proj(batch_2d.x)
    for hook in hooks:
        hook.remove()
    # after the norm: ReLU on every layer but the last (dropout is off in eval mode)
    layers = [first, *(torch.relu(o) for o in states[:-1]), states[-1]]
    expected = {
        "last": layers[-1],
        "sum": torch.stack(layers).sum(0),
        "max": torch.stack(layers).max(0).values,
        "concat": torch.cat(layers, dim=-1),
    }[jk]
    assert encoder.out_dim == (8 * 4 if jk == "concat" else 8)
    torch.testing.assert_close(out.node, expected, rtol=0, atol=1e-12)
