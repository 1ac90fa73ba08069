"""Protein structure files (PDB / mmCIF, optionally gzipped) → the kept amino-acid residues.

:func:`read_structure` makes every parsing choice explicit and records what it skipped or
mapped in :attr:`Residues.notes`; :class:`~molgraph.featurize.protein.ProteinFeaturizer`
turns :class:`Residues` into a residue graph.

Parsing policies
----------------
- Model: index ``model`` (0 = first; NMR ensembles hold several).
- Alternate locations: the most occupied one. Biopython's ``DisorderedAtom`` selects the
  altloc of highest occupancy as it reads (ties: the first listed); residues present
  with different names under different altlocs (``DisorderedResidue``) are resolved here
  the same way, by the occupancy of their CA.
- Insertion codes: kept; ``100`` and ``100A`` are two residues (two nodes).
- Segments: in a PDB file with blank chain IDs, each segment ID (columns 73-76, as
  CHARMM/NAMD write them) is a chain named after it; a residue id that reappears apart
  within one chain raises (two residues are never merged); see
  :mod:`~molgraph.featurize.segments`.
- Force-field residue names (HSD/HSE/HSP, HID/HIE/HIP, CYX, CYM, ASH, GLH, LYN, ...) are
  their standard residue (:data:`~molgraph.featurize.residues.FORCE_FIELD_RESIDUES`).
- Waters and ligands are dropped. A hetero residue is a ligand unless it is a modified
  amino acid: mapped to its parent through the file's MODRES records (PDB) or
  ``_pdbx_struct_mod_residue`` (mmCIF), else through
  :data:`~molgraph.featurize.residues.MODIFIED_RESIDUES`; an unmapped hetero residue with
  backbone atoms (N, CA, C) peptide-bonded to its chain is a non-canonical amino acid,
  kept with type unknown (``X``).
- DNA/RNA residues are skipped (a chain of them with a note); a file without any
  amino-acid residue raises :class:`~molgraph.errors.StructureError`.
- Missing backbone atoms: a residue without CA is dropped (note); a missing N, C or O is
  NaN in :attr:`Residues.backbone`, and the features that need it are masked (zero).
- CA-only models work: dihedrals are masked, residue frames (N, CA, C) are missing, so
  frame-based edge features are zero; CA-CA features (distances, the previous / next CA
  directions) remain. Frames are not rebuilt from consecutive CAs: one column would then
  mean two different things.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from Bio.PDB import MMCIFParser, PDBParser
from Bio.PDB.MMCIF2Dict import MMCIF2Dict

from molgraph.errors import StructureError
from molgraph.featurize.residues import (
    BACKBONE_ATOMS,
    FORCE_FIELD_RESIDUES,
    MODIFIED_RESIDUES,
    NUCLEOTIDES,
    PEPTIDE_BOND_MAX,
    THREE_TO_ONE,
    UNKNOWN_AMINO_ACIDS,
    UNKNOWN_LETTER,
    WATERS,
)
from molgraph.featurize.segments import segments_as_chains

StructureFormat = Literal["pdb", "cif"]
_SUFFIXES: dict[str, StructureFormat] = {
    ".pdb": "pdb",
    ".ent": "pdb",
    ".cif": "cif",
    ".mmcif": "cif",
}
# one kept residue: chain id, Biopython residue, residue name, one-letter code
_Row = tuple[str, Any, str, str]
# a residue that may be kept: residue, name, one-letter code, whether it must be linked
_Candidate = tuple[Any, str, str, bool]


@dataclass(frozen=True, eq=False)
class Residues:
    """The kept residues of one structure, one row per residue in file order.

    Shapes
    ------
    chain_ids, numbers, insertion_codes, names, bfactors: ``[R]``; backbone: ``[R, 4, 3]``
    float64 coordinates (Å) of N, CA, C, O with NaN where an atom is missing;
    ``len(sequence) == R``.
    """

    source: str
    chain_ids: np.ndarray
    numbers: np.ndarray
    insertion_codes: np.ndarray
    names: np.ndarray
    sequence: str
    backbone: np.ndarray
    bfactors: np.ndarray
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.sequence)

    @property
    def ca(self) -> np.ndarray:
        """CA coordinates ``[R, 3]`` (never NaN: residues without CA are not kept)."""
        return self.backbone[:, 1]


def structure_format(path: Path) -> StructureFormat:
    """``"pdb"`` or ``"cif"`` from the file name (a final ``.gz`` is looked through).

    Raises
    ------
    StructureError
        Any other suffix.
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    kind = _SUFFIXES.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise StructureError(
            str(path), "unknown file type: expected .pdb, .ent, .cif or .mmcif (optionally .gz)"
        )
    return kind


def _parse(path: Path) -> tuple[Any, dict[str, str], list[str]]:
    """Biopython structure, the file's modified-residue map (name → parent) and notes on
    segments read as chains."""
    kind, source = structure_format(path), str(path)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise StructureError(source, f"cannot be read: {exc}") from None
    notes: list[str] = []
    if kind == "pdb":
        text, segments, notes = segments_as_chains(text, source)
    try:
        if kind == "pdb":
            structure = PDBParser(QUIET=True).get_structure(path.name, io.StringIO(text))
            # MODRES: columns 13-15 modified name, 25-27 standard parent (PDB format v3.3)
            modres = {
                line[12:15].strip(): line[24:27].strip()
                for line in text.splitlines()
                if line.startswith("MODRES")
            }
        else:
            parser = MMCIFParser(QUIET=True)
            structure = parser.get_structure(path.name, io.StringIO(text))
            table = getattr(parser, "_mmcif_dict", None) or MMCIF2Dict(io.StringIO(text))
            names = table.get("_pdbx_struct_mod_residue.label_comp_id", [])
            parents = table.get("_pdbx_struct_mod_residue.parent_comp_id", [])
            modres = dict(zip(names, parents, strict=False))
    except Exception as exc:  # Biopython raises several unrelated types on bad files
        raise StructureError(source, f"Biopython could not parse it: {exc}") from None
    if kind == "pdb" and segments:
        for chain in [c for m in structure for c in m if c.id in segments]:
            chain.id = segments[chain.id]
    return structure, modres, notes


def _most_occupied(residue: Any) -> Any:
    """A point mutation (one residue id, several names by altloc): the one whose CA is
    most occupied (ties: the first listed)."""
    if residue.is_disordered() != 2:
        return residue
    children = list(residue.disordered_get_list())
    occupancy = [c["CA"].get_occupancy() if "CA" in c else -1.0 for c in children]
    return children[int(np.argmax(occupancy))]


def _label(chain: str, residue: Any) -> str:
    _, number, icode = residue.id
    return f"{chain}{number}{icode.strip()}"


def _bonded(a: Any, b: Any) -> bool:
    """Residue ``a``'s C within peptide-bond length of residue ``b``'s N."""
    if "C" not in a or "N" not in b:
        return False
    return float(np.linalg.norm(a["C"].coord - b["N"].coord)) <= PEPTIDE_BOND_MAX


def _summary(counter: Counter) -> str:
    return ", ".join(f"{name} x{n}" for name, n in sorted(counter.items()))


@dataclass
class _Tally:
    """What a read skipped or mapped, for :attr:`Residues.notes` (in this order)."""

    chain_notes: list[str] = field(default_factory=list)
    waters: Counter = field(default_factory=Counter)
    ligands: Counter = field(default_factory=Counter)
    mapped: Counter = field(default_factory=Counter)
    renamed: Counter = field(default_factory=Counter)
    noncanonical: Counter = field(default_factory=Counter)
    no_ca: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        notes = list(self.chain_notes)
        if self.waters:
            notes.append(f"dropped waters: {_summary(self.waters)}")
        if self.ligands:
            notes.append(f"dropped ligands / other hetero residues: {_summary(self.ligands)}")
        if self.mapped:
            notes.append(f"modified residues mapped to their parent: {_summary(self.mapped)}")
        if self.renamed:
            notes.append(f"force-field residue names read as standard: {_summary(self.renamed)}")
        if self.noncanonical:
            kept = _summary(self.noncanonical)
            notes.append(f"non-canonical amino acids kept as unknown (X): {kept}")
        if self.no_ca:
            notes.append(f"dropped residues without a CA atom: {', '.join(self.no_ca)}")
        return notes


def _select(
    structure: Any, source: str, chains: str | Sequence[str] | None, model: int
) -> tuple[Any, Sequence[str] | None]:
    """Model ``model`` of the structure and the wanted chain ids (None: all)."""
    models = list(structure)
    if not 0 <= model < len(models):
        raise StructureError(source, f"model {model} not in the file ({len(models)} models)")
    chosen = models[model]
    present = [c.id for c in chosen]
    wanted = None if chains is None else ((chains,) if isinstance(chains, str) else chains)
    for chain_id in wanted or ():
        if chain_id not in present:
            raise StructureError(
                source, f"chain {chain_id!r} not in the file (chains: {', '.join(present)})"
            )
    return chosen, wanted


def _candidates(chain: Any, modres: dict[str, str], tally: _Tally) -> tuple[list[_Candidate], int]:
    """A chain's amino-acid candidates in file order, and its count of nucleotides;
    waters and ligands are counted in ``tally``."""
    candidates: list[_Candidate] = []
    nucleotides = 0
    for residue in map(_most_occupied, chain):
        name = residue.get_resname().strip()
        hetero = residue.id[0].strip() != ""
        if residue.id[0] == "W" or name in WATERS:
            tally.waters[name] += 1
            continue
        parent = name if name in THREE_TO_ONE else modres.get(name) or MODIFIED_RESIDUES.get(name)
        if name in FORCE_FIELD_RESIDUES:  # a protonation state, not a modification
            parent = FORCE_FIELD_RESIDUES[name]
            tally.renamed[f"{name}->{parent}"] += 1
            candidates.append((residue, parent, THREE_TO_ONE[parent], False))
        elif parent in THREE_TO_ONE:
            if parent != name:
                tally.mapped[f"{name}->{parent}"] += 1
            candidates.append((residue, parent, THREE_TO_ONE[parent], False))
        elif name in NUCLEOTIDES or parent in NUCLEOTIDES:
            nucleotides += 1
        elif name in UNKNOWN_AMINO_ACIDS or all(a in residue for a in ("N", "CA", "C")):
            # unknown or non-canonical amino acid; a hetero one only if in the chain
            linked = hetero and name not in UNKNOWN_AMINO_ACIDS
            candidates.append((residue, name, UNKNOWN_LETTER, linked))
        else:
            tally.ligands[name] += 1
    return candidates, nucleotides


def _chain_rows(chain: Any, modres: dict[str, str], tally: _Tally) -> list[_Row]:
    """The kept residues of one chain: candidates with a CA, non-canonical ones only where
    peptide-bonded to a neighbour."""
    candidates, nucleotides = _candidates(chain, modres, tally)
    rows: list[_Row] = []
    for i, (residue, name, letter, needs_link) in enumerate(candidates):
        if needs_link:
            before = i > 0 and _bonded(candidates[i - 1][0], residue)
            after = i + 1 < len(candidates) and _bonded(residue, candidates[i + 1][0])
            if not (before or after):
                tally.ligands[name] += 1
                continue
            tally.noncanonical[name] += 1
        if "CA" not in residue:
            tally.no_ca.append(f"{_label(chain.id, residue)} {name}")
            continue
        rows.append((chain.id, residue, name, letter))
    if nucleotides:
        what = "skipped" if not rows else "skipped in a chain with amino acids"
        tally.chain_notes.append(
            f"chain {chain.id}: {nucleotides} nucleotide (DNA/RNA) residues {what}"
        )
    return rows


def _backbone(rows: list[_Row]) -> tuple[np.ndarray, list[str]]:
    """Backbone coordinates ``[R, 4, 3]`` (NaN where missing) and notes on what is missing."""
    backbone = np.full((len(rows), 4, 3), np.nan)
    missing: list[str] = []
    for r, (chain_id, residue, name, _) in enumerate(rows):
        absent = [atom for atom in BACKBONE_ATOMS if atom not in residue]
        for a, atom in enumerate(BACKBONE_ATOMS):
            if atom in residue:
                backbone[r, a] = residue[atom].coord
        if absent and len(absent) < 3:  # CA-only models are summarised below
            missing.append(f"{_label(chain_id, residue)} {name} ({' '.join(absent)})")
    notes = []
    ca_only = int(np.isnan(backbone[:, [0, 2, 3], 0]).all(axis=1).sum())
    if ca_only:
        notes.append(f"{ca_only} residues have CA only: dihedrals and frames masked")
    if missing:
        notes.append(f"missing backbone atoms set to NaN: {', '.join(missing)}")
    return backbone, notes


def read_structure(
    path: str | Path, chains: str | Sequence[str] | None = None, model: int = 0
) -> Residues:
    """Read the amino-acid residues of one PDB or mmCIF file (``.gz`` too).

    Parameters
    ----------
    path
        ``.pdb``/``.ent``/``.cif``/``.mmcif``, optionally followed by ``.gz``.
    chains
        One chain id, several, or None for every chain with amino acids (author chain
        ids, as Biopython reads them from both formats).
    model
        Model index, 0 = the first (NMR ensembles, multi-model predictions).

    Raises
    ------
    StructureError
        Unreadable file, unknown chain or model, or no amino-acid residue; names the file.
    """
    source = str(path)
    structure, modres, segment_notes = _parse(Path(path))
    chosen, wanted = _select(structure, source, chains, model)
    tally = _Tally()
    rows: list[_Row] = []
    for chain in chosen:
        if wanted is None or chain.id in wanted:
            rows += _chain_rows(chain, modres, tally)
    notes = [*segment_notes, *tally.notes()]
    if not rows:
        where = "" if wanted is None else f" in chain(s) {', '.join(wanted)}"
        skipped = "".join(f"; {note}" for note in notes if "nucleotide" in note)
        raise StructureError(source, f"no amino-acid residues{where} (model {model}){skipped}")
    backbone, backbone_notes = _backbone(rows)
    return Residues(
        source=source,
        chain_ids=np.array([row[0] for row in rows], dtype=str),
        numbers=np.array([row[1].id[1] for row in rows], dtype=np.int64),
        insertion_codes=np.array([row[1].id[2].strip() for row in rows], dtype=str),
        names=np.array([row[2] for row in rows], dtype=str),
        sequence="".join(row[3] for row in rows),
        backbone=backbone,
        bfactors=np.array([row[1]["CA"].get_bfactor() for row in rows], dtype=np.float64),
        notes=(*notes, *backbone_notes),
    )
