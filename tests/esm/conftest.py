"""Fixtures of the ESM tests: tiny checkpoints (see esm_checkpoints.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from esm_checkpoints import write_checkpoint

from molgraph.featurize.protein import read_structure


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """``esm2_t2_tiny_UR50D.pt`` with its contact-regression file beside it."""
    return write_checkpoint(tmp_path_factory.mktemp("esm_with_regression"))


@pytest.fixture(scope="session")
def tiny_checkpoint_bare(tmp_path_factory) -> Path:
    """``esm2_t2_tiny_UR50D.pt`` alone (no contact-regression file)."""
    return write_checkpoint(tmp_path_factory.mktemp("esm_bare"), regression=False)


@pytest.fixture(scope="session")
def gb1() -> str:
    """GB1 (56 residues) as read from the packaged 2QMT structure."""
    path = Path(__file__).resolve().parents[2] / "molgraph" / "datasets" / "gb1_2qmt.pdb"
    return read_structure(path).sequence
