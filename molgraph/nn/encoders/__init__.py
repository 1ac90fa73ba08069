"""Graph encoders: GraphBatch → EncoderOutput. One file per encoder."""

from molgraph.nn.encoders.gin import GINEConv, GINEncoder

__all__ = ["GINEConv", "GINEncoder"]
