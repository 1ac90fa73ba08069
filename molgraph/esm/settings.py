"""Which ESM model a run reads, and how: the ``esm`` config node's constructor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import esm
import torch

from molgraph.esm.embed import ESMEmbedder
from molgraph.esm.load import load_esm

LoadedESM = tuple[torch.nn.Module, esm.data.Alphabet]


@dataclass(frozen=True)
class ESMSettings:
    """An ESM model, where its weights are, and how embeddings are read from it.

    Parameters
    ----------
    model
        fair-esm model name (e.g. ``esm2_t33_650M_UR50D``).
    path
        A checkpoint in fair-esm's format; None: torch hub's cache, else a download.
    layer
        Representation layer; -1 = the last.
    finetune_layers
        0: embeddings are computed once by a frozen ESM and cached; N > 0: ESM runs
        inside the model and its last N layers train.
    toks_per_batch
        Padded tokens per embedding batch.
    download
        Whether a missing checkpoint may be downloaded.
    """

    model: str = "esm2_t33_650M_UR50D"
    path: str | None = None
    layer: int = -1
    finetune_layers: int = 0
    toks_per_batch: int = 16384
    download: bool = True

    @property
    def name(self) -> str:
        """The model's name: the checkpoint file's stem when ``path`` is given."""
        return Path(self.path).name.split(".")[0] if self.path else self.model

    def load(self) -> LoadedESM:
        """The ESM model and alphabet (local file, hub cache, or download)."""
        return load_esm(self.model, self.path, download=self.download)

    def embedder(self, loaded: LoadedESM | None = None, name: str | None = None) -> ESMEmbedder:
        """A frozen embedder of this model (``loaded``, else loaded now), named ``name``
        (default :attr:`name`; the name keys the embedding cache)."""
        model, alphabet = loaded or self.load()
        return ESMEmbedder(
            model, alphabet, name or self.name, layer=self.layer, toks_per_batch=self.toks_per_batch
        )
