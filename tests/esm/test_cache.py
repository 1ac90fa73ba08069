"""EmbeddingCache: cached equals fresh, misses only computed once, keys kept apart."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import esm
import pytest
import torch
from esm_checkpoints import TINY_NAME, tiny_model

from molgraph.errors import CheckpointError, ConfigError
from molgraph.esm import EmbeddingCache, ESMEmbedder
from molgraph.esm import cache as cache_module

ALPHABET = esm.data.Alphabet.from_architecture("ESM-1b")


def gb1_variants(count: int) -> list[str]:
    with resources.files("molgraph.datasets").joinpath("gb1_demo.csv").open() as file:
        return [row["sequence"] for row in csv.DictReader(file)][:count]


class Spy:
    """Wraps ``embedder.embed`` and records the sequences of every call."""

    def __init__(self, embedder: ESMEmbedder, monkeypatch) -> None:
        self.calls: list[list[str]] = []
        original = embedder.embed

        def embed(sequences, progress=False):
            self.calls.append(list(sequences))
            return original(sequences, progress)

        monkeypatch.setattr(embedder, "embed", embed)


@pytest.fixture
def embedder() -> ESMEmbedder:
    return ESMEmbedder(tiny_model(), ALPHABET, TINY_NAME, device="cpu")


def test_cached_equals_fresh_and_second_call_computes_nothing(
    tmp_path: Path, embedder: ESMEmbedder, monkeypatch
) -> None:
    sequences = gb1_variants(5)
    spy = Spy(embedder, monkeypatch)
    first = EmbeddingCache(tmp_path, embedder.key).embed(embedder, sequences)
    assert len(spy.calls) == 1 and sorted(spy.calls[0]) == sorted(sequences)
    fresh = ESMEmbedder(tiny_model(), ALPHABET, TINY_NAME, device="cpu").embed(sequences)
    for out, reference in zip(first, fresh, strict=True):
        assert out.dtype == torch.float16 and out.shape == (56, 64)
        assert torch.equal(out, reference.to(torch.float16))

    again = EmbeddingCache(tmp_path, embedder.key).embed(embedder, sequences[::-1])
    assert len(spy.calls) == 1  # everything came from disk
    for out, cached in zip(first, again[::-1], strict=True):
        assert torch.equal(out, cached)
    assert EmbeddingCache(tmp_path, embedder.key).get(sequences[2]).equal(first[2])


def test_duplicates_computed_once(tmp_path: Path, embedder: ESMEmbedder, monkeypatch) -> None:
    a, b, c = gb1_variants(3)
    spy = Spy(embedder, monkeypatch)
    cache = EmbeddingCache(tmp_path, embedder.key)
    cache.embed(embedder, [a])
    out = cache.embed(embedder, [b, a, b, c, b])
    assert spy.calls == [[a], [b, c]]  # a from disk; b once
    assert torch.equal(out[0], out[2]) and torch.equal(out[0], out[4])
    assert not torch.equal(out[0], out[1])
    assert torch.equal(out[1], cache.get(a))


def test_other_layer_does_not_hit(tmp_path: Path, embedder: ESMEmbedder, monkeypatch) -> None:
    sequences = gb1_variants(2)
    EmbeddingCache(tmp_path, embedder.key).embed(embedder, sequences)
    layer1 = ESMEmbedder(tiny_model(), ALPHABET, TINY_NAME, layer=1, device="cpu")
    spy = Spy(layer1, monkeypatch)
    cache1 = EmbeddingCache(tmp_path, layer1.key)
    assert cache1.get(sequences[0]) is None
    out = cache1.embed(layer1, sequences)
    assert len(spy.calls) == 1
    assert torch.equal(out[0], layer1.embed(sequences[:1])[0].half())
    assert not torch.allclose(out[0], EmbeddingCache(tmp_path, embedder.key).get(sequences[0]))
    with pytest.raises(ConfigError, match="does not match"):
        EmbeddingCache(tmp_path, embedder.key).embed(layer1, sequences)


def test_compute_then_get_and_chunks(tmp_path: Path, embedder: ESMEmbedder, monkeypatch) -> None:
    sequences = gb1_variants(7)
    spy = Spy(embedder, monkeypatch)
    cache = EmbeddingCache(tmp_path, embedder.key, dtype=torch.float32)
    assert cache.compute(embedder, sequences, chunk_residues=120) == 7
    assert [len(c) for c in spy.calls] == [2, 2, 2, 1]  # 56 residues each, 120 per chunk
    assert cache.compute(embedder, sequences) == 0
    fresh = embedder.embed(sequences)
    for sequence, reference in zip(sequences, fresh, strict=True):
        torch.testing.assert_close(cache.get(sequence), reference, rtol=0, atol=1e-5)


def test_killed_write_leaves_no_entry(tmp_path: Path, embedder: ESMEmbedder, monkeypatch) -> None:
    (sequence,) = gb1_variants(1)
    cache = EmbeddingCache(tmp_path, embedder.key)
    real_save = cache_module.save_file

    def save_then_die(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata)
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "save_file", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        cache.embed(embedder, [sequence])
    assert cache.get(sequence) is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no temporary left either


def test_entry_of_another_sequence_is_refused(tmp_path: Path, embedder: ESMEmbedder) -> None:
    a, b = gb1_variants(2)
    cache = EmbeddingCache(tmp_path, embedder.key)
    cache.embed(embedder, [a])
    cache.path(b).parent.mkdir(parents=True, exist_ok=True)
    cache.path(a).rename(cache.path(b))
    with pytest.raises(CheckpointError, match="another sequence"):
        cache.get(b)


def test_bad_key() -> None:
    with pytest.raises(ConfigError, match="plain name"):
        EmbeddingCache("/tmp", "../escape")
