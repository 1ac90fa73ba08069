"""What the encoders share: the readout and output, and the stacked layer loop.

:class:`GraphEncoder` owns the readout (and so ``out_dim``) and the output of every encoder
that pools node states. :class:`StackedEncoder` adds the layer loop of PyTorch
Geometric's ``BasicGNN`` without its option flags: an encoder states what differs (its
input embedding, one layer's call, its nonlinearity) by overriding small hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.nn.norm import NormKind, finish_layer, make_norms
from molgraph.nn.output import EncoderOutput
from molgraph.nn.readout import Readout, ReadoutKind, readout_width


def make_dropout(p: float) -> nn.Module:
    """``nn.Dropout(p)``, or ``nn.Identity`` for ``p = 0``."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class GraphEncoder(nn.Module):
    """Base of the encoders that pool node states: the readout, ``out_dim`` and output.

    ``super().__init__(readout, dim)`` comes first in a subclass's constructor, so the
    readout's parameters (attention, Set2Set) are drawn before any other, and its
    state_dict entries come first.

    Parameters
    ----------
    readout
        ``sum``, ``mean``, ``max``, ``attention`` (gated) or ``set2set``.
    dim
        Width of the node states pooled; ``out_dim`` is the graph vector's width.
    """

    requires_positions: bool = False

    def __init__(self, readout: ReadoutKind, dim: int) -> None:
        super().__init__()
        self.readout = Readout(readout, dim)
        self.out_dim = readout_width(readout, dim)

    def output(self, h: Tensor, batch: GraphBatch, pos: Tensor | None = None) -> EncoderOutput:
        """Node states ``h`` ``[N, d]``, their readout ``[G, out_dim]``, and the output
        coordinates ``pos`` ``[N, 3]`` of an equivariant encoder."""
        return EncoderOutput(node=h, graph=self.readout(h, batch.batch, batch.num_graphs), pos=pos)


class StackedEncoder(GraphEncoder):
    r"""A stack of message-passing layers, each followed by norm, activation, dropout and
    residual, then the readout.

    .. math::
        h^l = [h^{l-1}] + \mathrm{Dropout}\big(\sigma(\mathrm{Norm}_l(
              \mathrm{layer}_l(h^{l-1})))\big), \quad l = 1 \dots L

    from :math:`h^0` = :meth:`embed_nodes`; :math:`\sigma` is ``activation`` (none after
    the last layer), the bracketed term is added where ``residual[l]``.

    A subclass calls ``super().__init__(readout, dim)``, builds its input embedding, passes
    its layers to :meth:`add_layers` and sets ``residual``; it overrides :meth:`embed_nodes`
    and :meth:`layer` where they differ. An encoder that carries more state through the
    layers (GIN's virtual node, EGNN's coordinates, every layer's states for jumping
    knowledge) writes its own short loop around :meth:`finish`.

    Shapes
    ------
    GraphBatch with ``N`` nodes and ``G`` graphs → node ``[N, d]``, graph ``[G, out_dim]``
    """

    layers: nn.ModuleList
    norms: nn.ModuleList
    dropout: nn.Module
    #: Nonlinearity after every layer but the last (None: after none).
    activation: Callable[[Tensor], Tensor] | None
    #: One flag per layer: add the layer's input to its output.
    residual: list[bool]

    def add_layers(
        self,
        layers: Iterable[nn.Module],
        dim: int,
        norm: NormKind,
        dropout: float,
        activation: Callable[[Tensor], Tensor] | None = torch.relu,
    ) -> None:
        """Register ``layers``, then one ``norm`` of width ``dim`` per layer, then the
        dropout after each layer (the state_dict's order); ``activation`` follows every
        layer but the last."""
        self.layers = nn.ModuleList(layers)
        self.norms = make_norms(norm, dim, len(self.layers))
        self.dropout = make_dropout(dropout)
        self.activation = activation

    def embed_nodes(self, batch: GraphBatch) -> Tensor:
        """Initial node states :math:`h^0` ``[N, d_0]``: the input features themselves."""
        return batch.x

    def layer(self, i: int, h: Tensor, batch: GraphBatch) -> Tensor:
        """Layer ``i``'s update of ``h`` ``[N, d]`` (before norm and activation)."""
        return self.layers[i](h, batch.src, batch.dst, batch.edge_attr)

    def finish(self, i: int, h: Tensor, update: Tensor, batch: GraphBatch) -> Tensor:
        """Layer ``i``'s norm, activation, dropout and residual
        (:func:`molgraph.nn.norm.finish_layer`): the node states after layer ``i``."""
        activation = self.activation if i < len(self.layers) - 1 else None
        return finish_layer(
            h, update, self.norms[i], batch.node_mask, self.dropout, activation, self.residual[i]
        )

    def run_layers(self, h: Tensor, batch: GraphBatch) -> Tensor:
        """Node states after the last layer, from :math:`h^0` = ``h``."""
        for i in range(len(self.layers)):
            h = self.finish(i, h, self.layer(i, h, batch), batch)
        return h

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        return self.output(self.run_layers(self.embed_nodes(batch), batch), batch)
