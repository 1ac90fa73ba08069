"""GINEncoder: what is particular to it (batch norm in training mode couples graphs).

The properties shared by all encoders (permutations, batching, edgeless graphs, shapes,
padding, overfitting, config) are in test_encoder_properties.py.
"""

from __future__ import annotations

import pytest
import torch
from helpers import small_encoder

from molgraph.batch import GraphBatch
from molgraph.nn import GINEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


HIDDEN = 32


def make_encoder(batch: GraphBatch) -> GINEncoder:
    """A float64 encoder in eval mode whose batch-norm statistics are not the defaults."""
    return small_encoder(
        GINEncoder, batch, hidden_dim=HIDDEN, num_layers=3, dropout=0.2, readout="sum", norm="batch"
    )


def test_batch_norm_in_training_mode_does_see_the_batch(batch_2d: GraphBatch, packed_2d) -> None:
    # the contrast to test_encoder_properties.py's graph-alone-in-batch test (eval
    # mode): in training mode, batch statistics couple graphs
    encoder = make_encoder(batch_2d).train()
    encoder.dropout.p = 0.0
    with torch.no_grad():
        together = encoder(batch_2d).graph[0]
        alone = encoder(packed_2d.batch([0, 1]).with_dtype(torch.float64)).graph[0]
    assert (together - alone).abs().max().item() > 1e-3
