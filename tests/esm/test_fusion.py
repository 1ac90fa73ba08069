"""ESM fusion: each mode's shapes and inputs, padding and node alignment, in-model ESM ==
precomputed embeddings, and every mode through a short training run."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import esm
import pandas as pd
import pytest
import torch
from esm_checkpoints import TINY, tiny_model
from helpers import TINY_TRAINING
from hydra import compose, initialize_config_dir

from molgraph.builder import config_dir, train_from_config
from molgraph.data.embeddings import residue_sequences
from molgraph.errors import ConfigError
from molgraph.esm import ESMEmbedder
from molgraph.featurize.protein import ProteinFeaturizer
from molgraph.models import PropertyModel, Recipe
from molgraph.nn import GINEncoder
from molgraph.nn.fusion import ESMResidueEmbedding, FusedEncoder
from molgraph.packed import PackedGraphs, Padding

ROOT = Path(__file__).parents[2]
DEMO_STRUCTURE = str(ROOT / "molgraph/datasets/gb1_2qmt.pdb")
LAYERS, DIM, HEADS = TINY.encoder_layers, TINY.encoder_embed_dim, TINY.encoder_attention_heads


@pytest.fixture(scope="module")
def proteins(shared_data: Path) -> tuple[PackedGraphs, list[str]]:
    """Graphs of different lengths (2QMT: 56 residues; Trp-cage 1L2Y: 20) and a 2QMT
    variant, with the sequence of each."""
    featurizer = ProteinFeaturizer(k=8)
    trp_cage = str(shared_data / "proteins/robustness/1l2y.pdb.gz")
    wild_type = featurizer.residues(DEMO_STRUCTURE)
    variant = "W" + wild_type.sequence[1:-1] + "K"
    arrays = featurizer.encode_residues(wild_type, variant)
    packed = PackedGraphs.concat(
        [featurizer.packed([DEMO_STRUCTURE, trp_cage]), PackedGraphs.from_arrays(arrays)]
    )
    return packed, list(residue_sequences(packed, featurizer.residue_type_columns))


@pytest.fixture(scope="module")
def language_model() -> ESMResidueEmbedding:
    """The tiny checkpoint's ESM inside the model, its last layer trainable."""
    lm = ESMResidueEmbedding(LAYERS, DIM, HEADS, residue_columns=(0, 21), finetune_layers=1)
    lm.model.load_state_dict(tiny_model().state_dict())
    return lm.eval()


def _embedded(packed: PackedGraphs, sequences: list[str], lm: ESMResidueEmbedding):
    """``packed`` with per-residue embeddings precomputed by the ESM embedder."""
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    embedder = ESMEmbedder(lm.model, alphabet, "tiny", device="cpu")
    embeddings = embedder.embed(sequences)
    return replace(packed, node_embeddings=torch.cat(embeddings)), embeddings


def _gin(in_dim: int, packed: PackedGraphs) -> GINEncoder:
    torch.manual_seed(1)
    return GINEncoder(in_dim, packed.edge_dim, hidden_dim=16, num_layers=2)


def test_in_model_esm_equals_precomputed_embeddings(proteins, language_model) -> None:
    # the in-model path reads each graph's sequence from its residue one-hot and must give
    # what the embedder gives for the sequence strings: node i = residue i, every graph
    packed, sequences = proteins
    embedded, embeddings = _embedded(packed, sequences, language_model)
    assert [e.shape for e in embeddings] == [(len(s), DIM) for s in sequences]
    batch = embedded.batch([0, 1, 2])
    with torch.no_grad():
        in_model = language_model(batch)
    torch.testing.assert_close(in_model, batch.node_embeddings, atol=1e-5, rtol=1e-5)


def test_in_model_esm_trains_only_its_last_layers(language_model) -> None:
    trained = {n for n, p in language_model.named_parameters() if p.requires_grad}
    assert trained and all(
        n.startswith(("model.layers.1.", "model.emb_layer_norm_after.")) for n in trained
    )


@pytest.mark.parametrize(
    ("mode", "combine", "width"),
    [
        ("early", "concat", 16),
        ("late", "concat", 16 + 8),
        ("late", "gated", 16),
        ("esm_only", "concat", 8),
    ],
)
def test_fusion_modes_shapes_and_inputs(proteins, language_model, mode, combine, width) -> None:
    packed, sequences = proteins
    embedded, _ = _embedded(packed, sequences, language_model)
    in_dim = packed.node_dim + (8 if mode == "early" else 0)
    encoder = None if mode == "esm_only" else _gin(in_dim, packed)
    fused = FusedEncoder(encoder, mode, DIM, proj_dim=8, combine=combine).eval()
    assert fused.out_dim == width
    batch = embedded.batch([0, 1, 2])
    out = fused(batch).graph
    assert out.shape == (3, width)
    # the embeddings matter: other embeddings, other graph outputs
    other = replace(batch, node_embeddings=torch.randn_like(batch.node_embeddings))
    assert not torch.allclose(fused(other).graph, out)
    # ESM-only ignores the structure; the other modes read it
    moved = replace(batch, edge_attr=torch.randn_like(batch.edge_attr))
    assert torch.allclose(fused(moved).graph, out) == (mode == "esm_only")
    with pytest.raises(ValueError, match="needs per-residue ESM embeddings"):
        fused(packed.batch([0]))


@pytest.mark.parametrize("mode", ["early", "late", "esm_only"])
def test_fusion_padded_batch_equals_plain_batch(proteins, language_model, mode) -> None:
    packed, sequences = proteins
    embedded, _ = _embedded(packed, sequences, language_model)
    in_dim = packed.node_dim + (8 if mode == "early" else 0)
    encoder = None if mode == "esm_only" else _gin(in_dim, packed)
    fused = FusedEncoder(encoder, mode, DIM, proj_dim=8).eval()
    plain = fused(embedded.batch([2, 0])).graph
    padded = embedded.batch([2, 0], padding=Padding(graphs=4, node_multiple=64))
    assert padded.node_embeddings.shape[0] == padded.num_nodes
    torch.testing.assert_close(fused(padded).graph[:2], plain, atol=1e-5, rtol=1e-5)


def test_fusion_node_permutation_within_graph_is_not_invariant_for_early(proteins, language_model):
    # early fusion is positional: swapping two residues' embeddings changes the output
    packed, sequences = proteins
    embedded, _ = _embedded(packed, sequences, language_model)
    fused = FusedEncoder(_gin(packed.node_dim + 8, packed), "early", DIM, proj_dim=8).eval()
    batch = embedded.batch([0])
    swapped = batch.node_embeddings.clone()
    swapped[[0, 30]] = swapped[[30, 0]]
    assert not torch.allclose(
        fused(replace(batch, node_embeddings=swapped)).graph, fused(batch).graph
    )


# training through the configs --------------------------------------------------------


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ["fusion=early"],
        ["fusion=late"],
        ["fusion=late", "fusion.combine=gated"],
        ["fusion=esm_only"],
        ["fusion=early", "esm.finetune_layers=1"],
    ],
    ids=["early", "late", "late-gated", "esm_only", "early-finetune"],
)
def test_every_fusion_mode_trains_and_reloads(tiny_checkpoint_bare, tmp_path, overrides) -> None:
    cfg = _compose(
        "experiment=protein_demo", *TINY_TRAINING, *overrides,
        f"esm.path={tiny_checkpoint_bare}", "esm.download=false", f"cache_dir={tmp_path / 'cache'}",
    )  # fmt: skip
    run_dir = tmp_path / "run"
    metrics = train_from_config(cfg, run_dir)
    assert all(math.isfinite(metrics[part]["rmse"]) for part in ("val", "test"))
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    recipe = saved["molgraph"]
    assert recipe["fusion"]["esm_model"] == "esm2_t2_tiny_UR50D"
    assert recipe["fusion"]["esm_dim"] == DIM
    # frozen ESM: embeddings precomputed into the cache; fine-tuned: computed in the model
    finetune = "esm.finetune_layers=1" in overrides
    assert any((tmp_path / "cache" / "esm").rglob("*")) != finetune
    model = PropertyModel.from_recipe(Recipe.from_dict(recipe), saved["state_dict"])  # strict
    assert isinstance(model.encoder, FusedEncoder)
    assert (model.encoder.language_model is not None) == finetune
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics


def test_fusion_needs_residue_graphs(tiny_checkpoint_bare, tmp_path) -> None:
    cfg = _compose(*TINY_TRAINING, "fusion=early", f"esm.path={tiny_checkpoint_bare}")
    with pytest.raises(ConfigError, match="needs residue graphs"):
        train_from_config(cfg, tmp_path / "run")


def test_embed_esm_fills_the_cache_that_training_reads(tiny_checkpoint_bare, tmp_path, monkeypatch):
    from molgraph.cli.main import main
    from molgraph.esm import EmbeddingCache

    settings = [f"esm.path={tiny_checkpoint_bare}", "esm.download=false", f"cache_dir={tmp_path}"]
    monkeypatch.chdir(tmp_path)
    assert main(["embed-esm", "experiment=protein_demo", *settings]) == 0
    calls = []
    original = ESMEmbedder.embed
    monkeypatch.setattr(
        ESMEmbedder,
        "embed",
        lambda self, seqs, **kw: calls.append(len(seqs)) or original(self, seqs, **kw),
    )
    cfg = _compose("experiment=protein_demo", *TINY_TRAINING, "fusion=late", *settings)
    train_from_config(cfg, tmp_path / "run")
    assert calls == []  # every embedding came from the cache
    cache = EmbeddingCache(tmp_path / "esm", "esm2_t2_tiny_UR50D-L2")
    tested = pd.read_csv(tmp_path / "run" / "predictions_test.csv")["sequence"]
    assert all(cache.get(s) is not None for s in tested)


def test_fused_model_predicts_and_embeds_new_inputs(tiny_checkpoint_bare, tmp_path, monkeypatch):
    # prediction recomputes the ESM embeddings of new inputs (through the cache) and gives
    # the predictions of training; a fused bundle embeds structures
    from molgraph.cli.main import main
    from molgraph.pretrained import load_encoder

    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    settings = [f"esm.path={tiny_checkpoint_bare}", "esm.download=false"]
    cfg = _compose("experiment=protein_demo", *TINY_TRAINING, "fusion=early", *settings,
                   f"cache_dir={tmp_path / 'cache'}")  # fmt: skip
    run_dir = tmp_path / "run"
    train_from_config(cfg, run_dir)
    demo = ROOT / "molgraph/datasets/gb1_demo.csv"
    out = tmp_path / "predicted.csv"
    args = ["--model", str(run_dir), "--input", str(demo), "--output", str(out)]
    assert main(["predict", *args, "--esm-path", str(tiny_checkpoint_bare), "--no-progress"]) == 0
    predicted = pd.read_csv(out)
    tested = pd.read_csv(run_dir / "predictions_test.csv")
    assert len(predicted) == len(pd.read_csv(demo)) and (predicted["error"].fillna("") == "").all()
    torch.testing.assert_close(
        torch.tensor(predicted["fitness_pred"].to_numpy()[tested["row"]]),
        torch.tensor(tested["fitness_pred"].to_numpy()),
        atol=1e-5,
        rtol=1e-5,
    )
    bundle = tmp_path / "bundle"
    assert main(["export", str(run_dir), "--output", str(bundle), "--encoder-only"]) == 0
    encoder = load_encoder(bundle, esm_path=tiny_checkpoint_bare)
    embedded = encoder.embed([DEMO_STRUCTURE, DEMO_STRUCTURE])
    assert embedded.shape == (2, encoder.out_dim) and torch.isfinite(embedded).all()
    torch.testing.assert_close(embedded[0], embedded[1])


def test_missing_esm_weights_fail_before_featurization(tmp_path, monkeypatch) -> None:
    from molgraph.errors import ESMWeightsError

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cfg = _compose("experiment=protein_demo", "fusion=late", "esm.download=false",
                   f"cache_dir={tmp_path / 'cache'}")  # fmt: skip
    with pytest.raises(ESMWeightsError, match=str(tmp_path / "hub")):
        train_from_config(cfg, tmp_path / "run")
    assert not (tmp_path / "cache").exists()  # nothing featurized
