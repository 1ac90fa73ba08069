"""Per-residue ESM embeddings: token-budget batches, long sequences in stitched windows."""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass

import esm
import numpy as np
import torch
from esm.rotary_embedding import RotaryEmbedding
from torch import Tensor
from tqdm.auto import tqdm

from molgraph.errors import ConfigError, FeaturizationError
from molgraph.featurize.residues import RESIDUE_TYPES

__all__ = ["STANDARD_AMINO_ACIDS", "ESMEmbedder", "window_choice", "window_starts"]

STANDARD_AMINO_ACIDS = RESIDUE_TYPES


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Start offsets of the windows that cover ``length`` residues.

    Windows are ``window`` long and start every ``window - overlap`` residues; the last
    one ends at the sequence's end (so it may overlap its neighbour by more). A sequence
    no longer than ``window`` is one window.
    """
    if length <= window:
        return [0]
    step = window - overlap
    starts = list(range(0, length - window, step))
    return [*starts, length - window]


def window_choice(length: int, window: int, starts: Sequence[int]) -> np.ndarray:
    """For each residue, the index into ``starts`` of the window that embeds it.

    Each residue takes the window where it is farthest from a window edge, i.e. whose
    smaller context (residues it sees on its left and on its right) is largest; a window
    edge at the sequence's own end is no edge (nothing is cut off there). Ties go to the
    earlier window. Returns ``[length]`` int64.
    """
    position = np.arange(length)[None, :]
    start = np.asarray(starts)[:, None]
    end = start + window  # exclusive
    left = np.where(start == 0, length, position - start)
    right = np.where(end == length, length, end - 1 - position)
    context = np.minimum(left, right)
    context = np.where((position >= start) & (position < end), context, -1)
    return context.argmax(axis=0)


def _rotary_tables_float32(self: RotaryEmbedding, x: Tensor, seq_dimension: int = 1):
    """fair-esm's ``_update_cos_sin_tables``, computed in float32 and cast to ``x``'s dtype."""
    seq_len = x.shape[seq_dimension]
    cached = self._cos_cached
    if seq_len != self._seq_len_cached or cached.device != x.device or cached.dtype != x.dtype:
        with torch.autocast(x.device.type, enabled=False):
            t = torch.arange(seq_len, device=x.device, dtype=torch.float32)
            freqs = torch.einsum("i,j->ij", t, self.inv_freq.float())
            emb = torch.cat((freqs, freqs), dim=-1)
        self._seq_len_cached = seq_len
        self._cos_cached = emb.cos()[None, :, :].to(x.dtype)
        self._sin_cached = emb.sin()[None, :, :].to(x.dtype)
    return self._cos_cached, self._sin_cached


def _keep_rotary_float32(model: torch.nn.Module) -> None:
    """Rotary position tables in float32 whatever the model's dtype.

    Cast to bfloat16, fair-esm's rotary ``inv_freq`` and positions round (bfloat16 holds
    integers exactly only to 256; under autocast its einsum runs in bfloat16 too), which
    blurs positions beyond a few hundred residues. On the tiny test model this doubles the
    bfloat16 error at positions > 512. ``inv_freq`` is recomputed as fair-esm defines it.
    """
    for module in model.modules():
        if isinstance(module, RotaryEmbedding):
            dim = 2 * module.inv_freq.numel()
            inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
            module.inv_freq = inv_freq.to(module.inv_freq.device)
            module._update_cos_sin_tables = types.MethodType(_rotary_tables_float32, module)
            module._seq_len_cached = None


@dataclass(frozen=True)
class _Piece:
    """One model input: residues ``start:start + length`` of sequence ``index``."""

    index: int
    start: int
    length: int


class ESMEmbedder:
    """Per-residue embeddings of one ESM model layer, for many sequences at once.

    The embedder takes over ``model``: it moves it to ``device``, casts it to ``dtype``
    (rotary position tables stay float32, see :func:`_keep_rotary_float32`) and puts it in
    eval mode.

    Parameters
    ----------
    model, alphabet
        From :func:`molgraph.esm.load_esm` (or fair-esm).
    name
        The model's name (e.g. ``esm2_t33_650M_UR50D``); part of :attr:`key`.
    layer
        Representation layer, 0 (token embeddings) to ``num_layers``; -1 = the last.
    toks_per_batch
        Token budget of a batch: sequences sorted by length are grouped while
        ``batch size × longest tokens (residues + BOS/EOS)`` stays within it (and padding
        stays within a quarter of the batch).
    window, overlap
        Sequences longer than ``window`` residues are embedded in windows of ``window``
        residues starting every ``window - overlap``; each residue takes its embedding
        from the window where it is farthest from a window edge (see
        :func:`window_choice`). 1022 is ESM's training length.
    dtype
        Compute dtype; default bfloat16 on CUDA, float32 on CPU.
    device
        Default CUDA when available, else CPU.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        alphabet: esm.data.Alphabet,
        name: str,
        layer: int = -1,
        toks_per_batch: int = 16384,
        window: int = 1022,
        overlap: int = 256,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        args = getattr(model, "args", None)
        self._num_layers = int(getattr(model, "num_layers", None) or args.layers)
        self._dim = int(getattr(model, "embed_dim", None) or args.embed_dim)
        if not -self._num_layers - 1 <= layer <= self._num_layers:
            raise ConfigError(f"ESM layer {layer} not in 0..{self._num_layers} (or -1 = last)")
        if not 0 <= overlap < window:
            raise ConfigError(f"ESM window overlap {overlap} must be in 0..window-1 ({window})")
        pad = int(alphabet.prepend_bos) + int(alphabet.append_eos)
        if toks_per_batch < window + pad:
            raise ConfigError(
                f"toks_per_batch {toks_per_batch} cannot hold one window of {window} residues"
            )
        if "/" in name or "\\" in name:
            raise ConfigError(f"ESM model name {name!r} must not contain path separators")
        self.name = name
        self._layer = layer % (self._num_layers + 1)
        self.toks_per_batch = toks_per_batch
        self.window = window
        self.overlap = overlap
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        if dtype is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.dtype = dtype
        self.model = model.eval().to(device=self.device, dtype=dtype)
        _keep_rotary_float32(self.model)
        self.alphabet = alphabet
        self._bos = int(alphabet.prepend_bos)
        self._eos = int(alphabet.append_eos)
        # Byte -> token lookup: lower case as upper case, everything else as X.
        table = np.full(256, alphabet.get_idx("X"), dtype=np.int64)
        for letter in STANDARD_AMINO_ACIDS:
            table[ord(letter)] = table[ord(letter.lower())] = alphabet.get_idx(letter)
        self._token_table = table

    @property
    def dim(self) -> int:
        """Embedding width."""
        return self._dim

    @property
    def num_layers(self) -> int:
        """Number of transformer layers of the model."""
        return self._num_layers

    @property
    def layer(self) -> int:
        """Representation layer used, 0..num_layers."""
        return self._layer

    @property
    def key(self) -> str:
        """Cache key: model name and layer, e.g. ``esm2_t33_650M_UR50D-L33``."""
        return f"{self.name}-L{self._layer}"

    def _tokens(self, sequence: str) -> np.ndarray:
        data = sequence.encode("ascii", errors="replace")  # non-ASCII -> '?' -> X
        return self._token_table[np.frombuffer(data, dtype=np.uint8)]

    def _pieces(self, sequences: Sequence[str]) -> list[_Piece]:
        pieces = []
        for index, sequence in enumerate(sequences):
            if not isinstance(sequence, str) or not sequence:
                raise FeaturizationError(
                    f"sequence {index}", f"nothing to embed ({sequence!r} is not a protein)"
                )
            for start in window_starts(len(sequence), self.window, self.overlap):
                pieces.append(_Piece(index, start, min(self.window, len(sequence) - start)))
        return pieces

    def _batches(self, pieces: list[_Piece]) -> list[list[_Piece]]:
        """Length-sorted batches within the token budget, at most 1/4 padding each.

        Longest first, so that a batch that does not fit in memory fails at once. The
        padding bound only splits batches where lengths are sparse (a small or very mixed
        set, the long tail); it keeps one large budget from padding everything to the
        longest sequence.
        """
        extra = self._bos + self._eos
        batches: list[list[_Piece]] = []
        real = 0
        for piece in sorted(pieces, key=lambda p: -p.length):
            if batches:
                longest = batches[-1][0].length + extra
                padded = (len(batches[-1]) + 1) * longest
                if padded <= self.toks_per_batch and real + piece.length + extra >= 0.75 * padded:
                    batches[-1].append(piece)
                    real += piece.length + extra
                    continue
            batches.append([piece])
            real = piece.length + extra
        return batches

    @torch.inference_mode()
    def _forward(self, tokens: list[np.ndarray]) -> Tensor:
        """Representations ``[B, T, dim]`` (float32, CPU) of one padded batch."""
        width = max(len(t) for t in tokens) + self._bos + self._eos
        batch = np.full((len(tokens), width), self.alphabet.padding_idx, dtype=np.int64)
        for row, tok in enumerate(tokens):
            if self._bos:
                batch[row, 0] = self.alphabet.cls_idx
            batch[row, self._bos : self._bos + len(tok)] = tok
            if self._eos:
                batch[row, self._bos + len(tok)] = self.alphabet.eos_idx
        toks = torch.from_numpy(batch).to(self.device, non_blocking=True)
        out = self.model(toks, repr_layers=[self._layer])["representations"][self._layer]
        return out.float().cpu()

    def embed(self, sequences: Sequence[str], progress: bool = False) -> list[Tensor]:
        """Embed ``sequences``; one float32 CPU tensor ``[L_i, dim]`` each, in input order.

        Row ``j`` is residue ``j`` (BOS/EOS stripped). Lower case counts as upper case;
        letters outside the 20 standard amino acids are embedded as ``X``.

        Raises
        ------
        FeaturizationError
            An empty sequence (or not a string), naming its index.
        """
        sequences = list(sequences)
        pieces = self._pieces(sequences)
        tokens = {i: self._tokens(s) for i, s in enumerate(sequences)}
        outputs: dict[tuple[int, int], Tensor] = {}
        bar = tqdm(
            total=sum(p.length for p in pieces), unit="res", desc=self.key, disable=not progress
        )
        for batch in self._batches(pieces):
            reps = self._forward([tokens[p.index][p.start : p.start + p.length] for p in batch])
            for row, p in enumerate(batch):
                # clone outside inference mode: callers may train on these tensors
                outputs[p.index, p.start] = reps[row, self._bos : self._bos + p.length].clone()
            bar.update(sum(p.length for p in batch))
        bar.close()
        return [self._stitch(outputs, i, len(s)) for i, s in enumerate(sequences)]

    def _stitch(self, outputs: dict[tuple[int, int], Tensor], index: int, length: int) -> Tensor:
        starts = window_starts(length, self.window, self.overlap)
        if len(starts) == 1:
            return outputs[index, 0]
        choice = torch.from_numpy(window_choice(length, self.window, starts))
        result = torch.empty(length, self._dim)
        for w, start in enumerate(starts):
            rows = torch.nonzero(choice == w).squeeze(1)
            result[rows] = outputs[index, start][rows - start]
        return result

    def __repr__(self) -> str:
        return (
            f"ESMEmbedder({self.key}, dim={self.dim}, toks_per_batch={self.toks_per_batch}, "
            f"window={self.window}, overlap={self.overlap}, dtype={self.dtype}, "
            f"device={self.device})"
        )
