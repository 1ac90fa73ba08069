"""load_esm: fair-esm checkpoints under weights_only, regression file optional, clear errors."""

from __future__ import annotations

import argparse
import shutil
import warnings
from pathlib import Path

import esm
import pytest
import torch
from esm_checkpoints import REGRESSION_KEYS, TINY_NAME, tiny_model, write_checkpoint

from molgraph.errors import ESMWeightsError
from molgraph.esm import ESM_MODELS, ESMEmbedder, load_esm
from molgraph.esm.load import model_url


def _assert_tiny_weights(model: torch.nn.Module, with_regression: bool) -> None:
    expected = tiny_model().state_dict()
    loaded = model.state_dict()
    for name, value in expected.items():
        if name in REGRESSION_KEYS and not with_regression:
            continue
        assert torch.equal(loaded[name], value), name


def test_load_with_regression_file(tiny_checkpoint: Path) -> None:
    model, alphabet = load_esm(path=tiny_checkpoint)
    assert (model.num_layers, model.embed_dim, model.attention_heads) == (2, 64, 4)
    assert not model.training
    assert alphabet.get_idx("X") == 24 and alphabet.prepend_bos and alphabet.append_eos
    _assert_tiny_weights(model, with_regression=True)


def test_load_without_regression_file_is_quiet(tiny_checkpoint_bare: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fair-esm's "Regression weights not found" is silenced
        model, _ = load_esm(path=str(tiny_checkpoint_bare))
    _assert_tiny_weights(model, with_regression=False)


def test_renamed_esm2_file_loads(tmp_path: Path, tiny_checkpoint_bare: Path) -> None:
    renamed = tmp_path / "my_finetuned.pt"
    shutil.copy(tiny_checkpoint_bare, renamed)
    model, _ = load_esm(path=renamed)
    _assert_tiny_weights(model, with_regression=False)


def _write_marker(path: str) -> None:
    Path(path).write_text("code from the checkpoint ran")


class _Payload:
    """Unpickling this calls ``_write_marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_write_marker, (self.marker,))


def test_refuses_checkpoint_with_other_globals(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path, regression=False)
    marker = tmp_path / "marker.txt"
    with torch.serialization.safe_globals([argparse.Namespace]):
        data = torch.load(path, weights_only=True)
    data["extra"] = _Payload(marker)
    torch.save(data, path)

    with pytest.raises(ESMWeightsError, match="refused") as error:
        load_esm(path=path)
    assert str(path) in str(error.value) and "_write_marker" in str(error.value)
    assert not marker.exists()
    # Control: full unpickling does run the payload, so the refusal above is what stopped it.
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code from the checkpoint ran"


def test_not_a_fair_esm_file(tmp_path: Path) -> None:
    path = tmp_path / "esm2_t2_tiny_UR50D.pt"
    torch.save(tiny_model().state_dict(), path)  # a bare state dict, no "model"/"cfg"
    with pytest.raises(ESMWeightsError, match="not a fair-esm checkpoint"):
        load_esm(path=path)


def test_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "esm2_t33_650M_UR50D.pt"
    with pytest.raises(ESMWeightsError) as error:
        load_esm(path=missing)
    assert str(missing) in str(error.value) and "esm.path" in str(error.value)


def test_no_weights_reachable_names_paths_and_url(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ESMWeightsError) as error:
        load_esm("esm2_t6_8M_UR50D", download=False)
    message = str(error.value)
    assert str(tmp_path / "hub" / "checkpoints" / "esm2_t6_8M_UR50D.pt") in message
    assert "esm.path" in message and "download=False" in message

    def offline(url: str, dst: str, *args, **kwargs) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ESMWeightsError) as error:
        load_esm("esm2_t6_8M_UR50D")
    assert model_url("esm2_t6_8M_UR50D") in str(error.value)
    assert "network unreachable" in str(error.value)


def test_hub_cache_and_download(tmp_path: Path, monkeypatch) -> None:
    """A file in the hub cache is used as is; otherwise fair-esm's URLs are fetched there."""
    source = write_checkpoint(tmp_path / "server")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    requested = []

    def fake_download(url: str, dst: str, *args, **kwargs) -> None:
        requested.append(url)
        shutil.copy(source.parent / Path(url).name, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model, _ = load_esm(TINY_NAME)
    assert requested == [
        f"https://dl.fbaipublicfiles.com/fair-esm/models/{TINY_NAME}.pt",
        f"https://dl.fbaipublicfiles.com/fair-esm/regression/{TINY_NAME}-contact-regression.pt",
    ]
    _assert_tiny_weights(model, with_regression=True)
    load_esm(TINY_NAME)  # now cached: no second download
    assert len(requested) == 2


def test_esm_models_table() -> None:
    assert ESM_MODELS["esm2_t33_650M_UR50D"] == (33, 1280, 20)
    assert ESM_MODELS["esm2_t30_150M_UR50D"] == (30, 640, 20)
    for name, (layers, _, _) in ESM_MODELS.items():
        assert name.startswith(f"esm2_t{layers}_")


def test_esm1b_style_checkpoint_with_args(tmp_path: Path) -> None:
    """ESM-1b files keep their settings in ``args`` and weights under
    ``encoder.sentence_encoder.``; fair-esm's own builder handles them."""
    args = argparse.Namespace(
        arch="roberta_large",
        encoder_layers=2,
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=4,
        max_positions=1024,
    )
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    torch.manual_seed(0)
    reference = esm.ProteinBertModel(
        argparse.Namespace(
            arch="roberta_large", layers=2, embed_dim=32, ffn_embed_dim=64, attention_heads=4,
            max_positions=1024, emb_layer_norm_before=False,
        ),
        alphabet,
    ).eval()  # fmt: skip
    state = {
        f"encoder.sentence_encoder.{k}": v
        for k, v in reference.state_dict().items()
        if k not in REGRESSION_KEYS
    }
    path = tmp_path / "esm1b_t2_tiny_UR50S.pt"
    torch.save({"args": args, "model": state}, path)

    model, _ = load_esm(path=path)
    assert isinstance(model, esm.ProteinBertModel)
    sequence = "MQYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"
    (out,) = ESMEmbedder(model, alphabet, path.stem, device="cpu").embed([sequence])
    _, _, tokens = alphabet.get_batch_converter()([("gb1", sequence)])
    with torch.no_grad():
        expected = reference(tokens, repr_layers=[2])["representations"][2][0, 1:-1]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
