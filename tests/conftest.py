"""Shared fixtures: a fixed handful of SMILES, the shared data folder, the embedded ESOL.

``tests/`` is put on ``sys.path`` here so that test files in sub-folders can write
``from helpers import ...`` whatever pytest's import mode (pyproject.toml is not the
place: it belongs to the package build).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helpers import SmilesFixtures  # noqa: E402  (needs tests/ on sys.path)


@pytest.fixture(scope="session")
def smiles_fixtures() -> SmilesFixtures:
    return SmilesFixtures()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` beside the repository checkout (real MoleculeNet files)."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent (real-data tests need it)")
    return path


@pytest.fixture(scope="session")
def esol() -> pd.DataFrame:
    """ESOL (1128 rows) as embedded in the package, so no test needs the network."""
    with resources.as_file(resources.files("molgraph.datasets") / "esol.csv") as path:
        return pd.read_csv(path)
