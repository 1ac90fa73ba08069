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


# --- the small encoder test set: a few ESOL molecules plus a single atom, a salt (two
# edgeless one-atom graphs in one) and an aromatic ring; index 8 is the single atom,
# 9 the salt, 10 phenol -------------------------------------------------------------------

ENCODER_EXTRA = ("C", "[Na+].[Cl-]", "c1ccccc1O")


@pytest.fixture(scope="module")
def one_thread():
    """These graphs are tiny: one thread. With torch's default of one OpenMP thread per
    core, a 150 x 135 matmul took 300 times longer (8 ms) on the busy 2-core test machine,
    spin-waiting threads competing with other processes. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _encoder_packed(esol: pd.DataFrame, conformer: bool):
    from molgraph.featurize import MoleculeFeaturizer

    smiles = [*esol["smiles"].iloc[:8], *ENCODER_EXTRA]
    return MoleculeFeaturizer(conformer=conformer).packed(smiles)


@pytest.fixture(scope="session")
def packed_2d(esol: pd.DataFrame):
    """The encoder test set as PackedGraphs, without coordinates (11 graphs)."""
    return _encoder_packed(esol, conformer=False)


@pytest.fixture(scope="session")
def packed_3d(esol: pd.DataFrame):
    """The encoder test set as PackedGraphs, with one ETKDG conformer per molecule."""
    return _encoder_packed(esol, conformer=True)


@pytest.fixture(scope="module")
def batch_2d(packed_2d):
    """All 11 graphs of ``packed_2d`` as one float64 GraphBatch."""
    import torch

    return packed_2d.batch(range(len(packed_2d))).with_dtype(torch.float64)


@pytest.fixture(scope="module")
def batch_3d(packed_3d):
    """All 11 graphs of ``packed_3d`` as one float64 GraphBatch."""
    import torch

    return packed_3d.batch(range(len(packed_3d))).with_dtype(torch.float64)
