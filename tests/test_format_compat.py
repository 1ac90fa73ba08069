"""Checkpoints and bundles written by molgraph 0.1.0 before the core redesign still load
and give the predictions and embeddings that version gave.

``tests/fixtures/format_v1/`` was written by the code of commit d5ad2d4: a 2-epoch GINE on
ESOL (``molecule_run/model.pt``, exported as ``molecule_bundle/``) and a 1-epoch GVP on the
embedded GB1 scan (``protein_run/model.pt``, exported encoder-only as ``protein_bundle/``);
the ``expected_*.csv`` files are what that code's ``molgraph predict`` and ``molgraph embed``
wrote for ``mols.csv`` and ``variants.csv``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molgraph.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures" / "format_v1"
STRUCTURE = str(files("molgraph.datasets") / "gb1_2qmt.pdb")
VARIANTS = ["--structure", STRUCTURE, "--mutations-column", "mutations_2qmt_numbering"]


def _assert_same_table(written: Path, expected: Path) -> None:
    got = pd.read_csv(written, keep_default_na=False)
    want = pd.read_csv(expected, keep_default_na=False)
    assert list(got.columns) == list(want.columns)
    for column in want.columns:
        if pd.api.types.is_float_dtype(want[column]):
            np.testing.assert_allclose(got[column], want[column], rtol=1e-5, atol=1e-6)
        else:
            assert got[column].astype(str).tolist() == want[column].astype(str).tolist()


@pytest.mark.parametrize("model", ["molecule_run", "molecule_run/model.pt", "molecule_bundle"])
def test_old_molecule_model_predicts_as_before(model: str, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    argv = ["predict", "--model", str(FIXTURES / model), "--input", str(FIXTURES / "mols.csv")]
    assert main([*argv, "--output", str(out), "--no-progress"]) == 0
    _assert_same_table(out, FIXTURES / "expected_molecule_predictions.csv")


def test_old_protein_checkpoint_predicts_as_before(tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    argv = ["predict", "--model", str(FIXTURES / "protein_run"), "--output", str(out)]
    assert main([*argv, "--input", str(FIXTURES / "variants.csv"), *VARIANTS, "--no-progress"]) == 0
    _assert_same_table(out, FIXTURES / "expected_protein_predictions.csv")


def test_old_encoder_only_bundle_embeds_as_before(tmp_path: Path) -> None:
    out = tmp_path / "emb.csv"
    argv = ["embed", "--model", str(FIXTURES / "protein_bundle"), "--output", str(out)]
    assert main([*argv, "--input", str(FIXTURES / "variants.csv"), *VARIANTS, "--no-progress"]) == 0
    _assert_same_table(out, FIXTURES / "expected_protein_embeddings.csv")
