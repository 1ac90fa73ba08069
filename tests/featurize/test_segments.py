"""CHARMM/NAMD files: segments as chains, force-field residue names, no silent merge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molgraph.errors import StructureError
from molgraph.featurize.structure import read_structure

DIMER = Path(__file__).parents[1] / "fixtures" / "structures" / "charmm_dimer.pdb"


def test_segments_of_blank_chains_are_two_chains_and_hsd_is_histidine() -> None:
    residues = read_structure(DIMER)
    assert len(residues) == 24  # two 12-residue copies, not one merged 12-residue chain
    assert list(dict.fromkeys(residues.chain_ids)) == ["PROA", "PROB"]
    assert residues.sequence == "MHYKLILNGKTL" * 2  # HSD / HSE → H, not X
    assert any("HSD->HIS" in note and "HSE->HIS" in note for note in residues.notes)
    b = read_structure(DIMER, chains="PROB")
    np.testing.assert_allclose(b.ca[:, 0] - residues.ca[:12, 0], 30.0, atol=1e-3)


def test_two_residues_with_one_id_are_refused_not_merged(tmp_path: Path) -> None:
    text = "".join(
        line[:72] + "    " + line[76:] if line.startswith("ATOM") else line
        for line in DIMER.read_text().splitlines(keepends=True)
    )  # segment IDs gone: both copies are chain ' ' with residues 1-12 twice
    path = tmp_path / "merged.pdb"
    path.write_text(text)
    with pytest.raises(StructureError, match="residue 1 of chain \\(blank\\) appears twice"):
        read_structure(path)
