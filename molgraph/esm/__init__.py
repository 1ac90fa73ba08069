"""ESM protein language models: safe checkpoint loading, per-residue embedding, disk cache."""

from molgraph.esm.cache import EmbeddingCache, sequence_hash
from molgraph.esm.embed import ESMEmbedder, window_choice, window_starts
from molgraph.esm.load import ESM_MODELS, load_esm
from molgraph.esm.settings import ESMSettings, LoadedESM

__all__ = [
    "ESM_MODELS",
    "ESMEmbedder",
    "ESMSettings",
    "EmbeddingCache",
    "LoadedESM",
    "load_esm",
    "sequence_hash",
    "window_choice",
    "window_starts",
]
