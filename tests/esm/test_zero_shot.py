"""Zero-shot variant scores against the tiny ESM-2 run directly, and by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from esm_checkpoints import tiny_model

from molgraph.cli.main import main
from molgraph.esm import load_esm
from molgraph.esm.zero_shot import cached_log_probabilities, log_probabilities, substitution_score
from molgraph.featurize.residues import RESIDUE_TYPES

SEQUENCE = "MKTAYIAKQR"


def _direct(model, alphabet, tokens: list[str], position: int, letter: str) -> float:
    """log p(letter) at ``position`` (0-based in the sequence) of the model on ``tokens``."""
    ids = torch.tensor(
        [[alphabet.cls_idx, *(alphabet.get_idx(t) for t in tokens), alphabet.eos_idx]]
    )
    with torch.no_grad():
        logits = model(ids)["logits"][0, position + 1].double()
    return float(logits.log_softmax(-1)[alphabet.get_idx(letter)])


def test_marginals_match_the_model_run_directly(tiny_checkpoint: Path) -> None:
    model, alphabet = load_esm(path=tiny_checkpoint, download=False)
    wt = log_probabilities(model, alphabet, SEQUENCE, "wt_marginal")
    masked = log_probabilities(model, alphabet, SEQUENCE, "masked_marginal")
    assert wt.shape == masked.shape == (len(SEQUENCE), 20)
    # K2A: wild-type marginal from the unmasked sequence
    expected = _direct(model, alphabet, list(SEQUENCE), 1, "A") - _direct(
        model, alphabet, list(SEQUENCE), 1, "K"
    )
    assert substitution_score(wt, SEQUENCE, [(1, "K", "A")]) == pytest.approx(expected, abs=1e-6)
    # T3W:R10G masked marginal: each position masked on its own, the two summed
    total = 0.0
    for index, wild_type, mutant in [(2, "T", "W"), (9, "R", "G")]:
        tokens = list(SEQUENCE)
        tokens[index] = "<mask>"
        total += _direct(model, alphabet, tokens, index, mutant) - _direct(
            model, alphabet, tokens, index, wild_type
        )
    assert substitution_score(masked, SEQUENCE, [(2, "T", "W"), (9, "R", "G")]) == pytest.approx(
        total, abs=1e-6
    )
    # the weights are the seeded tiny model's, so the checkpoint round trip changed nothing
    reference = log_probabilities(tiny_model(), alphabet, SEQUENCE, "wt_marginal")
    np.testing.assert_allclose(wt, reference, atol=1e-6)


def test_substitution_score_by_hand() -> None:
    matrix = np.zeros((3, 20))
    matrix[0, RESIDUE_TYPES.index("M")] = -0.5
    matrix[0, RESIDUE_TYPES.index("A")] = -2.0
    matrix[2, RESIDUE_TYPES.index("G")] = -1.0
    matrix[2, RESIDUE_TYPES.index("W")] = -4.0
    # (-2.0 - -0.5) + (-4.0 - -1.0) = -1.5 - 3.0
    assert substitution_score(matrix, "MKG", [(0, "M", "A"), (2, "G", "W")]) == pytest.approx(-4.5)
    assert substitution_score(matrix, "MKG", []) == 0.0
    with pytest.raises(ValueError, match="the sequence has K"):
        substitution_score(matrix, "MKG", [(1, "A", "G")])
    with pytest.raises(ValueError, match="no score for residue"):
        substitution_score(matrix, "MKG", [(1, "K", "*")])


def test_cache_is_read_back(tiny_checkpoint: Path, tmp_path: Path) -> None:
    model, alphabet = load_esm(path=tiny_checkpoint, download=False)
    first = cached_log_probabilities(model, alphabet, "tiny", SEQUENCE, "masked_marginal", tmp_path)
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 1
    np.save(files[0], first + 1.0)  # a changed file proves the second call reads it
    second = cached_log_probabilities(
        model, alphabet, "tiny", SEQUENCE, "masked_marginal", tmp_path
    )
    np.testing.assert_allclose(second, first + 1.0)


def test_score_variants_command(tiny_checkpoint: Path, tmp_path: Path) -> None:
    variants = tmp_path / "dms.csv"
    pd.DataFrame(
        {"mutant": ["K2A", "T3W:R10G", "K2*", "A2G", ""], "DMS_score": [1, 2, 3, 4, 5]}
    ).to_csv(variants, index=False)
    out = tmp_path / "scores.csv"
    argv = ["score-variants", "--esm", str(tiny_checkpoint), "--input", str(variants), "--sequence", SEQUENCE,
            "--output", str(out), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == [
        "mutant",
        "DMS_score",
        "masked_marginal",
        "wt_marginal",
        "zero_shot_error",
    ]
    model, alphabet = load_esm(path=tiny_checkpoint, download=False)
    wt = log_probabilities(model, alphabet, SEQUENCE, "wt_marginal")
    assert float(table.wt_marginal[0]) == pytest.approx(
        substitution_score(wt, SEQUENCE, [(1, "K", "A")]), abs=1e-5
    )
    assert table.masked_marginal[2] == "" and "no score for residue '*'" in table.zero_shot_error[2]
    assert "the sequence has K" in table.zero_shot_error[3]
    assert float(table.wt_marginal[4]) == 0.0
