"""Residue identity: the amino-acid alphabet and the names a structure file gives residues.

The one home of the residue alphabet (the featurizer's one-hot order, mutation strings,
ESM fusion's token map) and of the residue-name tables a parser needs: three-letter
codes, modified amino acids and their parents, waters, nucleotides. numpy only: anything
may use it without pulling in a structure parser.
"""

from __future__ import annotations

import numpy as np

#: The 20 standard amino acids in one-letter code; index 20 is "unknown".
RESIDUE_TYPES = "ACDEFGHIKLMNPQRSTVWY"
#: One-letter code of an unknown or non-canonical residue (index :data:`UNKNOWN`).
UNKNOWN_LETTER = "X"
#: :data:`RESIDUE_TYPES` plus the unknown letter: letter ``ALPHABET[i]`` is residue type i.
ALPHABET = RESIDUE_TYPES + UNKNOWN_LETTER
#: Index of the unknown residue type (the last column of the residue one-hot).
UNKNOWN = len(RESIDUE_TYPES)
#: One-letter code of a stop codon (nonsense variant): residue type :data:`STOP`, a one-hot
#: column only featurizers built with ``stop_residue=True`` have.
STOP_LETTER = "*"
#: Index of the stop/truncation residue type (after :data:`UNKNOWN`).
STOP = UNKNOWN + 1

# byte → residue type; every byte that is not a standard one-letter code → unknown
_TYPE_OF_BYTE = np.full(256, UNKNOWN, dtype=np.int64)
_TYPE_OF_BYTE[np.frombuffer(RESIDUE_TYPES.encode(), np.uint8)] = np.arange(len(RESIDUE_TYPES))


def residue_type_indices(sequence: str) -> np.ndarray:
    """Residue type of each letter of an ASCII ``sequence`` ``[L]`` int64 (case-insensitive;
    any letter outside :data:`RESIDUE_TYPES`, ``X`` included, is :data:`UNKNOWN`)."""
    return _TYPE_OF_BYTE[np.frombuffer(sequence.upper().encode(), np.uint8)]


_THREE = "ALA CYS ASP GLU PHE GLY HIS ILE LYS LEU MET ASN PRO GLN ARG SER THR VAL TRP TYR"
#: Three-letter code → one-letter code, for the 20 standard amino acids.
THREE_TO_ONE = dict(zip(_THREE.split(), RESIDUE_TYPES, strict=True))
#: Modified amino acids → parent, used where the file has no MODRES record for them.
MODIFIED_RESIDUES = {
    "MSE": "MET",  # selenomethionine
    "SEP": "SER",  # phosphoserine
    "TPO": "THR",  # phosphothreonine
    "PTR": "TYR",  # phosphotyrosine
    "HYP": "PRO",  # hydroxyproline
    "MLY": "LYS",  # N-dimethyl-lysine
    "M3L": "LYS",  # N-trimethyl-lysine
    "KCX": "LYS",  # carboxylated lysine
    "LLP": "LYS",  # lysine-pyridoxal phosphate
    "ALY": "LYS",  # acetyl-lysine
    "CSO": "CYS",  # S-hydroxycysteine
    "CSD": "CYS",  # cysteine sulfinic acid
    "OCS": "CYS",  # cysteine sulfonic acid
    "CME": "CYS",  # S,S-(2-hydroxyethyl)thiocysteine
    "SEC": "CYS",  # selenocysteine
    "PYL": "LYS",  # pyrrolysine
    "PCA": "GLU",  # pyroglutamic acid
    "FME": "MET",  # N-formylmethionine
    "CGU": "GLU",  # gamma-carboxyglutamic acid
    "HIC": "HIS",  # 4-methylhistidine
}
#: Force-field names of protonation / bonding states (CHARMM, AMBER, GROMACS) → standard.
FORCE_FIELD_RESIDUES = {
    **dict.fromkeys(
        ("HSD", "HSE", "HSP", "HID", "HIE", "HIP", "HIS1", "HIS2", "HISD", "HISE", "HISH", "HSH"),
        "HIS",
    ),
    **dict.fromkeys(("CYX", "CYM", "CYS2", "CYN"), "CYS"),
    **dict.fromkeys(("ASH", "ASPP", "ASPH"), "ASP"),
    **dict.fromkeys(("GLH", "GLUP", "GLUH"), "GLU"),
    **dict.fromkeys(("LYN", "LSN", "LYSN"), "LYS"),
    "ARN": "ARG",
    "TYM": "TYR",
}
#: Residue names of amino acids of unknown type, kept as :data:`UNKNOWN_LETTER`.
UNKNOWN_AMINO_ACIDS = frozenset({"UNK"})
#: DNA and RNA residue names (skipped by the residue-graph parser).
NUCLEOTIDES = frozenset("A C G U I T N DA DC DG DT DI DU DN".split())
#: Water residue names.
WATERS = frozenset({"HOH", "WAT", "DOD", "H2O"})

#: Backbone atoms, in the order of :attr:`~molgraph.featurize.structure.Residues.backbone`.
BACKBONE_ATOMS = ("N", "CA", "C", "O")
#: Longest C(i)-N(i+1) still a peptide bond (Å); it is 1.33 Å, so a longer one is a break.
PEPTIDE_BOND_MAX = 2.0
#: Longest CA(i)-CA(i+1) of consecutive residues (Å): 3.8 Å trans, 2.9 Å cis.
CA_STEP_MAX = 4.2
