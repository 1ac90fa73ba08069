"""Tiny training runs (molecules and proteins) exported as bundles, shared by this folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import TINY_TRAINING

from molgraph.bundles import export_run
from molgraph.cli.main import main

#: protein_demo (GVP on embedded GB1 variants), as small as it goes
TINY_PROTEIN = (
    "experiment=protein_demo",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "encoder.hidden_dim=8",
    "encoder.hidden_vector_dim=4",
    "encoder.num_layers=1",
    "model.head.hidden_dim=8",
    "num_workers=1",
)


def _train(root: Path, name: str, *overrides: str) -> Path:
    """``molgraph train`` into ``root/name`` with the cache and outputs under ``root``."""
    run_dir = root / name
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOLGRAPH_CACHE", str(root / "cache"))
        patch.setenv("MOLGRAPH_OUTPUTS", str(root / "outputs"))
        patch.setattr(sys, "argv", list(sys.argv))  # the train command replaces it
        assert main(["train", f"hydra.run.dir={run_dir}", *overrides]) == 0
    return run_dir


@pytest.fixture(scope="session")
def molecule_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GINE trained for seconds on the embedded ESOL set (a run directory)."""
    return _train(tmp_path_factory.mktemp("runs"), "esol", *TINY_TRAINING)


@pytest.fixture(scope="session")
def molecule_bundle(molecule_run: Path) -> Path:
    return export_run(molecule_run, molecule_run.parent / "esol-bundle")


@pytest.fixture(scope="session")
def protein_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GVP trained for seconds on the embedded GB1 variants (a run directory)."""
    return _train(tmp_path_factory.mktemp("runs"), "gb1", *TINY_PROTEIN)


@pytest.fixture(scope="session")
def protein_bundle(protein_run: Path) -> Path:
    return export_run(protein_run, protein_run.parent / "gb1-bundle")


@pytest.fixture(scope="session")
def train():
    """``train(root, name, *overrides)``: a ``molgraph train`` run directory."""
    return _train


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty bundle registry (``MOLGRAPH_MODELS``) for one test."""
    root = tmp_path / "models"
    monkeypatch.setenv("MOLGRAPH_MODELS", str(root))
    return root
