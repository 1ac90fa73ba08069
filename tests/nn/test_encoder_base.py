"""The encoder contract (:class:`molgraph.nn.Encoder`) and the shared layer loop of
:class:`molgraph.nn.encoders.StackedEncoder`."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import molgraph.nn
from molgraph.batch import GraphBatch
from molgraph.nn import Encoder, EncoderOutput
from molgraph.nn.encoders import StackedEncoder
from molgraph.nn.norm import apply_norm
from molgraph.nn.scatter import gather, scatter_sum

pytestmark = pytest.mark.usefixtures("one_thread")

ENCODERS = [
    getattr(molgraph.nn, name)
    for name in molgraph.nn.__all__
    if name.endswith("Encoder") and name != "Encoder"
]
SMALL = {"hidden_dim": 8, "num_layers": 2}


def test_every_encoder_is_listed() -> None:
    assert len(ENCODERS) == 10


@pytest.mark.parametrize("cls", ENCODERS, ids=lambda cls: cls.__name__)
def test_encoder_satisfies_the_protocol(request, cls: type[nn.Module]) -> None:
    batch: GraphBatch = request.getfixturevalue(
        "batch_3d" if cls.requires_positions else "batch_2d"
    )
    torch.manual_seed(0)
    encoder = cls(batch.x.shape[1], batch.edge_attr.shape[1], **SMALL).double().eval()
    assert isinstance(encoder, Encoder)
    assert isinstance(encoder.out_dim, int) and isinstance(encoder.requires_positions, bool)
    with torch.no_grad():
        out = encoder(batch)
    assert isinstance(out, EncoderOutput)
    assert out.graph.shape == (batch.num_graphs, encoder.out_dim)
    assert out.node.shape[0] == batch.num_nodes


class SumConv(nn.Module):
    """A layer for the loop test: ``W (h_i + sum_j h_j)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, h: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor) -> Tensor:
        return self.lin(h + scatter_sum(gather(h, src), dst, h.shape[0]))


class SumEncoder(StackedEncoder):
    def __init__(self, dim: int, num_layers: int, norm, residual: list[bool]) -> None:
        super().__init__("attention", dim)
        self.add_layers((SumConv(dim) for _ in range(num_layers)), dim, norm, dropout=0.0)
        self.residual = residual


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_stacked_loop(batch_2d: GraphBatch, norm: str) -> None:
    # norm, ReLU but after the last layer, residual where asked, then the readout
    torch.manual_seed(0)
    dim = batch_2d.x.shape[1]
    encoder = SumEncoder(dim, 3, norm, [True, False, True]).double().train()
    # the state_dict's order: readout, layers, norms (checkpoints rely on the keys)
    groups = list(dict.fromkeys(key.split(".")[0] for key in encoder.state_dict()))
    assert groups == ["readout", "layers", "norms"][: len(groups)]
    out = encoder(batch_2d)
    h = batch_2d.x
    for i, (conv, norm_module) in enumerate(zip(encoder.layers, encoder.norms, strict=True)):
        update = apply_norm(norm_module, conv(h, batch_2d.src, batch_2d.dst, None), None)
        update = torch.relu(update) if i < 2 else update
        h = h + update if encoder.residual[i] else update
    torch.testing.assert_close(out.node, h, rtol=0, atol=0)
    graph = encoder.readout(h, batch_2d.batch, batch_2d.num_graphs)
    torch.testing.assert_close(out.graph, graph, rtol=0, atol=0)
    assert out.pos is None and encoder.out_dim == dim
