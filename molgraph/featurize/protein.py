"""Protein structures (PDB / mmCIF, optionally gzipped) → residue graphs.

One node per kept amino-acid residue, in file order; its position is the CA atom (Å).
:func:`read_structure` makes every parsing choice explicit and records what it skipped or
mapped in :attr:`Residues.notes`; :class:`ProteinFeaturizer` turns :class:`Residues` into
arrays for :class:`~molgraph.packed.PackedGraphs`, vectorised with numpy over residues and
edges (no Python runs per residue in the feature math).

Parsing policies
----------------
- Model: index ``model`` (0 = first; NMR ensembles hold several).
- Alternate locations: the most occupied one. Biopython's ``DisorderedAtom`` selects the
  altloc of highest occupancy as it reads (ties: the first listed); residues present
  with different names under different altlocs (``DisorderedResidue``) are resolved here
  the same way, by the occupancy of their CA.
- Insertion codes: kept; ``100`` and ``100A`` are two residues (two nodes).
- Waters and ligands are dropped. A hetero residue is a ligand unless it is a modified
  amino acid: mapped to its parent through the file's MODRES records (PDB) or
  ``_pdbx_struct_mod_residue`` (mmCIF), else through :data:`MODIFIED_RESIDUES`; an
  unmapped hetero residue with backbone atoms (N, CA, C) peptide-bonded to its chain is a
  non-canonical amino acid, kept with type unknown (``X``).
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from molgraph.errors import FeaturizationError, StructureError
from molgraph.featurize.base import GraphFeaturizer
from molgraph.featurize.residues import (
    BACKBONE_ATOMS as _BACKBONE,
)
from molgraph.featurize.residues import (
    CA_STEP_MAX as _CA_STEP_MAX,
)
from molgraph.featurize.residues import (
    MODIFIED_RESIDUES,
    RESIDUE_TYPES,
    THREE_TO_ONE,
)
from molgraph.featurize.residues import (
    NUCLEOTIDES as _NUCLEOTIDES,
)
from molgraph.featurize.residues import (
    PEPTIDE_BOND_MAX as _PEPTIDE_BOND_MAX,
)
from molgraph.featurize.residues import (
    UNKNOWN_AMINO_ACIDS as _UNKNOWN_AMINO_ACIDS,
)
from molgraph.featurize.residues import (
    WATERS as _WATERS,
)
from molgraph.geometry import (
    dihedrals,
    local_frames,
    neighbour_pairs,
    norms,
    rbf,
    rotation_quaternions,
    unit_vectors,
    virtual_cb_directions,
)

_SEQUENCE_BUCKETS = 32  # separations clipped to [-32, 32]: 65 one-hot columns
EdgeRule = Literal["knn", "radius", "sequence"]
EDGE_RULES: tuple[str, ...] = ("knn", "radius", "sequence")


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


Item = str | Path | tuple[str | Path, str | Sequence[str] | None] | Residues


# --- parsing ------------------------------------------------------------------------------


def _format(path: Path) -> Literal["pdb", "cif"]:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    kind = {".pdb": "pdb", ".ent": "pdb", ".cif": "cif", ".mmcif": "cif"}.get(
        suffixes[-1] if suffixes else ""
    )
    if kind is None:
        raise StructureError(
            str(path), "unknown file type: expected .pdb, .ent, .cif or .mmcif (optionally .gz)"
        )
    return kind  # type: ignore[return-value]


def _parse(path: Path) -> tuple[Any, dict[str, str]]:
    """Biopython structure and the file's modified-residue map (name → parent)."""
    from Bio.PDB import MMCIFParser, PDBParser
    from Bio.PDB.MMCIF2Dict import MMCIF2Dict

    kind, source = _format(path), str(path)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise StructureError(source, f"cannot be read: {exc}") from None
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
    return structure, modres


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
    return float(np.linalg.norm(a["C"].coord - b["N"].coord)) <= _PEPTIDE_BOND_MAX


def _summary(counter: Counter) -> str:
    return ", ".join(f"{name} x{n}" for name, n in sorted(counter.items()))


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
    structure, modres = _parse(Path(path))
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
    rows: list[tuple[str, Any, str, str]] = []  # chain, residue, name, one-letter code
    waters, ligands, mapped, noncanonical = Counter(), Counter(), Counter(), Counter()
    notes: list[str] = []
    no_ca: list[str] = []
    for chain in chosen:
        if wanted is not None and chain.id not in wanted:
            continue
        candidates: list[tuple[Any, str, str, bool]] = []
        nucleotides = 0
        for residue in map(_most_occupied, chain):
            name = residue.get_resname().strip()
            hetero = residue.id[0].strip() != ""
            if residue.id[0] == "W" or name in _WATERS:
                waters[name] += 1
                continue
            parent = (
                name if name in THREE_TO_ONE else modres.get(name) or MODIFIED_RESIDUES.get(name)
            )
            if parent in THREE_TO_ONE:
                if parent != name:
                    mapped[f"{name}->{parent}"] += 1
                candidates.append((residue, parent, THREE_TO_ONE[parent], False))
            elif name in _NUCLEOTIDES or parent in _NUCLEOTIDES:
                nucleotides += 1
            elif name in _UNKNOWN_AMINO_ACIDS or all(a in residue for a in ("N", "CA", "C")):
                # unknown or non-canonical amino acid; a hetero one only if in the chain
                candidates.append((residue, name, "X", hetero and name not in _UNKNOWN_AMINO_ACIDS))
            else:
                ligands[name] += 1
        kept_here = 0
        for i, (residue, name, letter, needs_link) in enumerate(candidates):
            if needs_link:
                before = i > 0 and _bonded(candidates[i - 1][0], residue)
                after = i + 1 < len(candidates) and _bonded(residue, candidates[i + 1][0])
                if not (before or after):
                    ligands[name] += 1
                    continue
                noncanonical[name] += 1
            if "CA" not in residue:
                no_ca.append(f"{_label(chain.id, residue)} {name}")
                continue
            rows.append((chain.id, residue, name, letter))
            kept_here += 1
        if nucleotides:
            what = "skipped" if not kept_here else "skipped in a chain with amino acids"
            notes.append(f"chain {chain.id}: {nucleotides} nucleotide (DNA/RNA) residues {what}")
    if waters:
        notes.append(f"dropped waters: {_summary(waters)}")
    if ligands:
        notes.append(f"dropped ligands / other hetero residues: {_summary(ligands)}")
    if mapped:
        notes.append(f"modified residues mapped to their parent: {_summary(mapped)}")
    if noncanonical:
        notes.append(f"non-canonical amino acids kept as unknown (X): {_summary(noncanonical)}")
    if no_ca:
        notes.append(f"dropped residues without a CA atom: {', '.join(no_ca)}")
    if not rows:
        where = "" if wanted is None else f" in chain(s) {', '.join(wanted)}"
        skipped = "".join(f"; {note}" for note in notes if "nucleotide" in note)
        raise StructureError(source, f"no amino-acid residues{where} (model {model}){skipped}")
    backbone = np.full((len(rows), 4, 3), np.nan)
    missing: list[str] = []
    for r, (chain_id, residue, name, _) in enumerate(rows):
        absent = [atom for atom in _BACKBONE if atom not in residue]
        for a, atom in enumerate(_BACKBONE):
            if atom in residue:
                backbone[r, a] = residue[atom].coord
        if absent and len(absent) < 3:  # CA-only models are summarised below
            missing.append(f"{_label(chain_id, residue)} {name} ({' '.join(absent)})")
    ca_only = int(np.isnan(backbone[:, [0, 2, 3], 0]).all(axis=1).sum())
    if ca_only:
        notes.append(f"{ca_only} residues have CA only: dihedrals and frames masked")
    if missing:
        notes.append(f"missing backbone atoms set to NaN: {', '.join(missing)}")
    return Residues(
        source=source,
        chain_ids=np.array([row[0] for row in rows], dtype=str),
        numbers=np.array([row[1].id[1] for row in rows], dtype=np.int64),
        insertion_codes=np.array([row[1].id[2].strip() for row in rows], dtype=str),
        names=np.array([row[2] for row in rows], dtype=str),
        sequence="".join(row[3] for row in rows),
        backbone=backbone,
        bfactors=np.array([row[1]["CA"].get_bfactor() for row in rows], dtype=np.float64),
        notes=tuple(notes),
    )


# --- the featurizer -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProteinFeaturizer(GraphFeaturizer):
    """PDB / mmCIF structures → residue graphs (nodes at CA, edges by proximity and
    sequence), invariant scalar features plus rotating node vectors.

    Node features ``x`` (:attr:`node_dim` columns)
        0-20 residue type one-hot (20 + unknown, :attr:`residue_type_columns`);
        21-26 sin, cos of φ, ψ, ω (zero where masked); 27-29 masks of φ, ψ, ω (1 where
        defined); 30 CA B-factor / 100 (pLDDT / 100 for predicted models) if
        ``bfactor``. φ_i = C(i-1) N CA C, ψ_i = N CA C N(i+1), ω_i = CA C N(i+1) CA(i+1);
        an angle needs all its atoms and a peptide bond (same chain, C-N <= 2 Å).
    Node vectors ``vec`` ``[R, 3, 3]``
        Unit vectors to the previous and the next CA (zero at chain ends and breaks,
        CA-CA > 4.2 Å), and to the ideal virtual Cβ (GVP / ProteinMPNN geometry; zero
        without N or C).
    Edge features ``e`` for an edge ``src → dst`` (:attr:`edge_dim` columns)
        ``rbf_bins`` Gaussian RBF of the CA-CA distance on [0, ``rbf_max``] Å; 65 one-hot
        of the signed sequence separation ``dst - src`` (position within the chain among
        kept residues, so insertion codes count as residues) clipped to [-32, 32], all
        zero between chains; 1 same-chain flag; 3 direction of ``dst``'s CA in ``src``'s
        frame; 4 quaternion (w >= 0) of the rotation from ``src``'s frame to ``dst``'s;
        one column per rule in ``edges`` (which rules produced the edge). Frame features
        are zero where a frame is missing (residues without N or C).

    Parameters
    ----------
    chains, model
        Passed to :func:`read_structure` for path inputs.
    edges
        Any of ``"knn"`` (the ``k`` nearest CAs of each residue), ``"radius"`` (CAs within
        ``radius`` Å) and ``"sequence"`` (same chain, up to ``sequence_window`` positions
        apart); their union, each edge once.
    bfactor
        Add the CA B-factor / 100 as a node feature.
    """

    chains: tuple[str, ...] | None = None
    model: int = 0
    edges: tuple[EdgeRule, ...] = ("knn", "sequence")
    k: int = 30
    radius: float = 10.0
    sequence_window: int = 1
    rbf_bins: int = 16
    rbf_max: float = 20.0
    bfactor: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.chains, str):
            object.__setattr__(self, "chains", (self.chains,))
        elif self.chains is not None:
            object.__setattr__(self, "chains", tuple(self.chains))
        object.__setattr__(self, "edges", tuple(self.edges))
        unknown = [e for e in self.edges if e not in EDGE_RULES]
        if not self.edges or unknown or len(set(self.edges)) != len(self.edges):
            raise ValueError(
                f"edges must be distinct choices of {', '.join(EDGE_RULES)}, got {self.edges}"
            )
        if self.k < 1 or self.radius <= 0 or self.sequence_window < 1 or self.model < 0:
            raise ValueError("k, radius and sequence_window must be positive, model >= 0")

    @property
    def node_dim(self) -> int:
        return len(RESIDUE_TYPES) + 1 + 9 + int(self.bfactor)

    @property
    def edge_dim(self) -> int:
        return self.rbf_bins + 2 * _SEQUENCE_BUCKETS + 1 + 1 + 3 + 4 + len(self.edges)

    @property
    def node_vector_dim(self) -> int:
        return 3

    @property
    def has_coordinates(self) -> bool:
        return True

    @property
    def residue_type_columns(self) -> slice:
        """The columns of ``x`` holding the 21-way residue-type one-hot."""
        return slice(0, len(RESIDUE_TYPES) + 1)

    # inputs -----------------------------------------------------------------------------

    def residues(self, item: Item) -> Residues:
        """Parse one input: a path, a ``(path, chains)`` pair, or :class:`Residues`."""
        if isinstance(item, Residues):
            return item
        if isinstance(item, tuple) and len(item) == 2:
            return read_structure(item[0], item[1], self.model)
        if isinstance(item, str | Path):
            return read_structure(item, self.chains, self.model)
        raise FeaturizationError(
            item, f"expected a path, (path, chains) or Residues, got {type(item).__name__}"
        )

    # features ---------------------------------------------------------------------------

    def _residue_types(self, residues: Residues, sequence: str | None) -> np.ndarray:
        seq = residues.sequence if sequence is None else sequence
        if len(seq) != len(residues) or not seq.isascii():
            raise FeaturizationError(
                residues.source,
                f"sequence of length {len(seq)} does not match the {len(residues)} residues",
            )
        table = np.full(256, len(RESIDUE_TYPES), dtype=np.int64)
        table[np.frombuffer(RESIDUE_TYPES.encode(), np.uint8)] = np.arange(len(RESIDUE_TYPES))
        return table[np.frombuffer(seq.upper().encode(), np.uint8)]

    def _edges(self, ca: np.ndarray, chain: np.ndarray) -> tuple[np.ndarray, ...]:
        """Union of the edge rules: src, dst (sorted by dst, then src), rule multi-hot."""
        n = len(ca)
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for rule in self.edges:
            if rule == "knn":
                found.append(neighbour_pairs(ca, k=self.k))
            elif rule == "radius":
                found.append(neighbour_pairs(ca, radius=self.radius))
            else:
                found.append(_sequence_pairs(chain, self.sequence_window))
        keys = [d * n + s for s, d in found]
        unique = np.unique(np.concatenate(keys)) if n else np.zeros(0, np.int64)
        types = np.zeros((len(unique), len(self.edges)))
        for r, key in enumerate(keys):
            types[np.searchsorted(unique, key), r] = 1.0
        return unique % max(n, 1), unique // max(n, 1), types

    def encode_residues(
        self, residues: Residues, sequence: str | None = None, *, dtype: Any = np.float32
    ) -> dict[str, np.ndarray]:
        """One graph's arrays (``x``, ``src``, ``dst``, ``edge_attr``, ``node_counts``,
        ``edge_counts``, ``pos``, ``node_vectors``), as :meth:`encode` packs them.

        ``sequence`` (one letter per residue) replaces the residue types, e.g. for the
        variants of one structure; ``dtype`` is the float type of the features (computed in
        float64 in any case).
        """
        types = self._residue_types(residues, sequence)
        bb = residues.backbone
        n_res = len(residues)
        n, ca, c = bb[:, 0], bb[:, 1], bb[:, 2]
        _, chain = np.unique(residues.chain_ids, return_inverse=True)
        same_next = chain[1:] == chain[:-1]
        with np.errstate(invalid="ignore"):
            peptide = same_next & (norms(n[1:] - c[:-1]) <= _PEPTIDE_BOND_MAX)
            ca_step = same_next & (norms(ca[1:] - ca[:-1]) <= _CA_STEP_MAX)
        # dihedrals: phi_i (i >= 1), psi_i and omega_i (i <= R - 2)
        angles = np.full((n_res, 3, 2), np.nan)
        angles[1:, 0] = dihedrals(c[:-1], n[1:], ca[1:], c[1:])
        angles[:-1, 1] = dihedrals(n[:-1], ca[:-1], c[:-1], n[1:])
        angles[:-1, 2] = dihedrals(ca[:-1], c[:-1], n[1:], ca[1:])
        linked = np.zeros((n_res, 3), bool)
        linked[1:, 0], linked[:-1, 1], linked[:-1, 2] = peptide, peptide, peptide
        mask = linked & np.isfinite(angles).all(-1)
        angles = np.where(mask[..., None], angles, 0.0)
        x = np.zeros((n_res, self.node_dim))
        x[np.arange(n_res), types] = 1.0
        x[:, 21:27] = angles.reshape(n_res, 6)
        x[:, 27:30] = mask
        if self.bfactor:
            x[:, 30] = residues.bfactors / 100.0
        # node vectors: previous CA, next CA, virtual C-beta
        vec = np.zeros((n_res, 3, 3))
        vec[1:, 0] = np.where(ca_step[:, None], unit_vectors(ca[:-1] - ca[1:]), 0.0)
        vec[:-1, 1] = np.where(ca_step[:, None], unit_vectors(ca[1:] - ca[:-1]), 0.0)
        vec[:, 2] = virtual_cb_directions(n, ca, c)
        # edges
        src, dst, rules = self._edges(ca, chain)
        frames, valid = local_frames(n, ca, c)
        diff = ca[dst] - ca[src]
        dist = norms(diff)
        position = _positions(chain)
        same = (chain[src] == chain[dst]).astype(np.float64)
        offset = np.clip(position[dst] - position[src], -_SEQUENCE_BUCKETS, _SEQUENCE_BUCKETS)
        separation = np.zeros((len(src), 2 * _SEQUENCE_BUCKETS + 1))
        separation[np.arange(len(src)), offset + _SEQUENCE_BUCKETS] = same
        direction = np.einsum("eji,ej->ei", frames[src], unit_vectors(diff))
        both = (valid[src] & valid[dst])[:, None]
        relative = np.einsum("eki,ekj->eij", frames[src], frames[dst])
        quaternion = (
            np.where(both, rotation_quaternions(relative), 0.0) if len(src) else np.zeros((0, 4))
        )
        radial = rbf(torch.from_numpy(dist), 0.0, self.rbf_max, self.rbf_bins).numpy()
        edge_attr = np.concatenate(
            [radial, separation, same[:, None], direction, quaternion, rules], axis=1
        )
        return {
            "x": x.astype(dtype),
            "src": src,
            "dst": dst,
            "edge_attr": edge_attr.reshape(len(src), self.edge_dim).astype(dtype),
            "node_counts": np.array([n_res], dtype=np.int64),
            "edge_counts": np.array([len(src)], dtype=np.int64),
            "pos": ca.astype(dtype),
            "node_vectors": vec.astype(dtype),
        }

    # batch interface --------------------------------------------------------------------

    def encode(
        self, items: Iterable[Item]
    ) -> tuple[dict[str, np.ndarray], list[FeaturizationError | None]]:
        """Featurize many inputs at once.

        Returns
        -------
        arrays
            Packed arrays of the inputs that succeeded (see :class:`PackedGraphs`).
        errors
            One entry per input: None, or the error that input raised.
        """
        graphs: list[dict[str, np.ndarray]] = []
        errors: list[FeaturizationError | None] = []
        for item in items:
            try:
                graphs.append(self.encode_residues(self.residues(item)))
            except FeaturizationError as exc:
                errors.append(exc)
                continue
            errors.append(None)
        if not graphs:
            graphs.append(self._empty())
        return {key: np.concatenate([g[key] for g in graphs]) for key in graphs[0]}, errors

    def _empty(self) -> dict[str, np.ndarray]:
        f, i = np.float32, np.int64
        return {
            "x": np.zeros((0, self.node_dim), f),
            "src": np.zeros(0, i),
            "dst": np.zeros(0, i),
            "edge_attr": np.zeros((0, self.edge_dim), f),
            "node_counts": np.zeros(0, i),
            "edge_counts": np.zeros(0, i),
            "pos": np.zeros((0, 3), f),
            "node_vectors": np.zeros((0, 3, 3), f),
        }

    # recipe -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Complete settings, JSON-serialisable (cache keys, bundles)."""
        return {
            "kind": "protein",
            "chains": None if self.chains is None else list(self.chains),
            "model": self.model,
            "edges": list(self.edges),
            "k": self.k,
            "radius": self.radius,
            "sequence_window": self.sequence_window,
            "rbf_bins": self.rbf_bins,
            "rbf_max": self.rbf_max,
            "bfactor": self.bfactor,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProteinFeaturizer:
        if d.get("kind") != "protein":
            raise ValueError(f"not a protein featurizer recipe: kind={d.get('kind')!r}")
        chains = d["chains"]
        return cls(
            chains=None if chains is None else tuple(chains),
            model=int(d["model"]),
            edges=tuple(d["edges"]),
            k=int(d["k"]),
            radius=float(d["radius"]),
            sequence_window=int(d["sequence_window"]),
            rbf_bins=int(d["rbf_bins"]),
            rbf_max=float(d["rbf_max"]),
            bfactor=bool(d["bfactor"]),
        )


def _positions(chain: np.ndarray) -> np.ndarray:
    """Position of each residue within its chain ``[R]`` (chains are contiguous)."""
    starts = np.flatnonzero(np.r_[True, chain[1:] != chain[:-1]])
    return np.arange(len(chain)) - np.repeat(starts, np.diff(np.r_[starts, len(chain)]))


def _sequence_pairs(chain: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every pair of residues 1..``window`` apart in the same chain."""
    n = len(chain)
    a = np.concatenate([np.arange(n - s) for s in range(1, min(window, n - 1) + 1)] or [[]])
    s = np.concatenate([np.full(n - s, s) for s in range(1, min(window, n - 1) + 1)] or [[]])
    a, b = a.astype(np.int64), (a + s).astype(np.int64)
    keep = chain[a] == chain[b]
    a, b = a[keep], b[keep]
    return np.concatenate([a, b]), np.concatenate([b, a])
