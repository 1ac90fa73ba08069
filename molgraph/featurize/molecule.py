"""Molecules (SMILES or RDKit Mol) → atom graphs.

Atoms become nodes in RDKit's atom order; every bond becomes two directed edges, bond
``k`` giving edge ``2k`` (begin → end) and edge ``2k + 1`` (end → begin), both with the
bond's features. Properties are read from RDKit in one pass over atoms and bonds and
encoded for a whole chunk of molecules at once (see :mod:`molgraph.featurize.encodings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import AllChem

from molgraph.arrays import GraphArrays
from molgraph.errors import FeaturizationError
from molgraph.featurize.base import GraphFeaturizer
from molgraph.featurize.encodings import Encoder, Feature, feature_from_dict, feature_to_dict
from molgraph.featurize.presets import AtomFeaturizer, BondFeaturizer

Atom, Bond = Chem.rdchem.Atom, Chem.rdchem.Bond
_IMPLICIT = Chem.ValenceType.IMPLICIT
_EMBED_ATTEMPTS = 20  # ETKDG attempts per conformer (each of the two tries)

#: Raw atom properties a feature can read, and how RDKit gives each (enums are ints).
ATOM_GETTERS = {
    "atomic_num": Atom.GetAtomicNum,
    "degree": Atom.GetDegree,
    "formal_charge": Atom.GetFormalCharge,
    "chiral_tag": Atom.GetChiralTag,
    "total_hs": Atom.GetTotalNumHs,
    "hybridization": Atom.GetHybridization,
    "aromatic": Atom.GetIsAromatic,
    "in_ring": Atom.IsInRing,
    "mass": Atom.GetMass,
    "implicit_valence": lambda a: a.GetValence(_IMPLICIT),
    "radical_electrons": Atom.GetNumRadicalElectrons,
}
#: Raw bond properties a feature can read.
BOND_GETTERS = {
    "bond_type": Bond.GetBondType,
    "conjugated": Bond.GetIsConjugated,
    "in_ring": Bond.IsInRing,
    "stereo": Bond.GetStereo,
    "direction": Bond.GetBondDir,
}
ATOM_PROPS, BOND_PROPS = tuple(ATOM_GETTERS), tuple(BOND_GETTERS)
_BOND_AND_END_GETTERS = {
    "begin": Bond.GetBeginAtomIdx,
    "end": Bond.GetEndAtomIdx,
    **BOND_GETTERS,
}


class _Columns:
    """Raw property columns of many atoms (or bonds), filled one molecule at a time.

    Only the properties a featurizer reads are fetched, each with one ``map`` of RDKit's
    getter over the molecule's atoms: no Python bytecode runs per atom. (Atoms are
    fetched by index: RDKit's ``GetAtoms()`` sequence is a slow Python-level wrapper.)
    """

    def __init__(self, props: Sequence[str], getters: dict) -> None:
        self.getters = [getters[p] for p in props]
        self.columns: list[list] = [[] for _ in props]

    def add(self, items: list) -> None:
        for column, getter in zip(self.columns, self.getters, strict=True):
            column += map(getter, items)

    def matrix(self) -> np.ndarray:
        """``[n_items, n_props]`` float64."""
        return np.array(self.columns, dtype=np.float64).reshape(len(self.columns), -1).T


def _props(features: Sequence[Feature]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.prop for f in features))


def _rejection_reason(smiles: str) -> str:
    """Why RDKit refuses a SMILES: a syntax error, or the sanitization step that failed."""
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return "RDKit could not parse the SMILES"
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several unrelated types here
        return f"RDKit rejected the molecule: {exc}"
    return "RDKit rejected the molecule"


@dataclass(frozen=True)
class MoleculeFeaturizer(GraphFeaturizer):
    """SMILES or RDKit Mol → atom graph.

    Parameters
    ----------
    atoms, bonds
        Feature specs (presets: ``default``, ``organic``, ``canonical``, ``pretrain``).
    explicit_hydrogens
        Add hydrogens as nodes (``Chem.AddHs``).
    largest_fragment
        Keep only the fragment with the most atoms (salts, solvents dropped).
    conformer
        Embed one 3D conformer with RDKit ETKDG (v3) and store its coordinates (Å).
    conformer_seed
        ETKDG's random seed, so coordinates are reproducible.
    """

    atoms: AtomFeaturizer = field(default_factory=AtomFeaturizer.default)
    bonds: BondFeaturizer = field(default_factory=BondFeaturizer.default)
    explicit_hydrogens: bool = False
    largest_fragment: bool = False
    conformer: bool = False
    conformer_seed: int = 0

    @classmethod
    def preset(cls, name: str, **options: Any) -> MoleculeFeaturizer:
        """Atom and bond presets of the same ``name`` with the given options."""
        atoms = getattr(AtomFeaturizer, name, None)
        bonds = getattr(BondFeaturizer, name, BondFeaturizer.default)
        if atoms is None:
            raise ValueError(f"unknown preset {name!r}: default, organic, canonical, pretrain")
        return cls(atoms(), bonds(), **options)

    @property
    def node_dim(self) -> int:
        return self.atoms.width

    @property
    def edge_dim(self) -> int:
        return self.bonds.width

    @property
    def node_vector_dim(self) -> int:
        """0: atom graphs carry no node vectors."""
        return 0

    @property
    def has_coordinates(self) -> bool:
        return self.conformer

    @cached_property
    def _atom_encoder(self) -> Encoder:
        return Encoder(self.atoms.features, _props(self.atoms.features))

    @cached_property
    def _bond_encoder(self) -> Encoder:
        return Encoder(self.bonds.features, _props(self.bonds.features))

    def molecule(self, item: str | Chem.Mol) -> Chem.Mol:
        """Parse and prepare one input (a new Mol; the caller's is never modified)."""
        if isinstance(item, Chem.Mol):
            mol = Chem.Mol(item)
        elif isinstance(item, str):
            if not item.strip():
                raise FeaturizationError(item, "empty SMILES")
            mol = Chem.MolFromSmiles(item.strip())
            if mol is None:
                raise FeaturizationError(item, _rejection_reason(item.strip()))
        else:
            raise FeaturizationError(
                item, f"expected a SMILES string or an RDKit Mol, got {type(item).__name__}"
            )
        if mol.GetNumAtoms() == 0:
            raise FeaturizationError(item, "the molecule has no atoms")
        if self.largest_fragment:
            mol = max(Chem.GetMolFrags(mol, asMols=True), key=Chem.Mol.GetNumAtoms)
        if self.conformer:
            mol = self._embed(item, mol)
        elif self.explicit_hydrogens:
            mol = Chem.AddHs(mol)
        return mol

    def _embed(self, item: object, mol: Chem.Mol) -> Chem.Mol:
        with_h = Chem.AddHs(mol)  # hydrogens appended after the heavy atoms
        params = AllChem.ETKDGv3()
        params.randomSeed = self.conformer_seed
        # RDKit's default (10 x atoms attempts) spends up to a minute on a molecule whose
        # stereo tags cannot be met; 20 attempts embed every molecule it embeds in our sets
        params.maxIterations = _EMBED_ATTEMPTS
        if AllChem.EmbedMolecule(with_h, params) != 0:
            # RDKit's advice for molecules whose eigenvalue start fails
            params.useRandomCoords = True
            if AllChem.EmbedMolecule(with_h, params) != 0:
                raise FeaturizationError(
                    item,
                    "RDKit ETKDG could not embed a 3D conformer, also from random coordinates "
                    f"(seed {self.conformer_seed})",
                )
        return with_h if self.explicit_hydrogens else Chem.RemoveHs(with_h)

    def encode(
        self, items: Iterable[str | Chem.Mol]
    ) -> tuple[GraphArrays, list[FeaturizationError | None]]:
        """Featurize many inputs at once.

        Returns
        -------
        arrays
            Packed arrays of the inputs that succeeded (``pos`` with ``conformer``).
        errors
            One entry per input: None, or the error that input raised.
        """
        atom_props, bond_props = _props(self.atoms.features), _props(self.bonds.features)
        # degree and ring membership of atoms follow from the bonds: no per-atom call
        fetched_atom = [p for p in atom_props if p not in ("degree", "in_ring")]
        fetched_bond = ["begin", "end", *dict.fromkeys([*bond_props, "in_ring"])]
        atom_columns = _Columns(fetched_atom, ATOM_GETTERS)
        bond_columns = _Columns(fetched_bond, _BOND_AND_END_GETTERS)
        node_counts, bond_counts, positions, errors = self._read(items, atom_columns, bond_columns)
        bonds_raw = dict(zip(fetched_bond, bond_columns.matrix().T, strict=True))
        bond_ends = np.stack([bonds_raw["begin"], bonds_raw["end"]], axis=1).astype(np.int64)
        atoms_raw = dict(zip(fetched_atom, atom_columns.matrix().T, strict=True))
        num_atoms = sum(node_counts)
        offsets = np.cumsum(node_counts) - np.array(node_counts, dtype=np.int64)
        global_ends = bond_ends + np.repeat(offsets, bond_counts).astype(np.int64)[:, None]
        atoms_raw["degree"] = np.bincount(global_ends.ravel(), minlength=num_atoms)
        ring_ends = global_ends[bonds_raw["in_ring"] > 0].ravel()
        atoms_raw["in_ring"] = np.bincount(ring_ends, minlength=num_atoms) > 0
        atom_matrix = np.column_stack([atoms_raw[p] for p in atom_props]).astype(np.float64)
        bond_matrix = np.column_stack([bonds_raw[p] for p in bond_props]).reshape(
            -1, len(bond_props)
        )
        pos = None
        if self.conformer:
            pos = np.concatenate(positions or [np.zeros((0, 3))]).astype(np.float32)
        arrays = GraphArrays(
            x=self._atom_encoder(atom_matrix.reshape(num_atoms, len(atom_props))),
            src=bond_ends.reshape(-1),
            dst=bond_ends[:, ::-1].reshape(-1),
            edge_attr=np.repeat(self._bond_encoder(bond_matrix), 2, axis=0),
            node_counts=np.array(node_counts, dtype=np.int64),
            edge_counts=2 * np.array(bond_counts, dtype=np.int64),
            pos=pos,
        )
        return arrays, errors

    def _read(
        self, items: Iterable[str | Chem.Mol], atom_columns: _Columns, bond_columns: _Columns
    ) -> tuple[list[int], list[int], list[np.ndarray], list[FeaturizationError | None]]:
        """Parse each input and add its atoms' and bonds' raw properties to the columns.

        Returns the atom and bond counts and conformer coordinates of the molecules that
        parsed, and one entry per input: None or its error.
        """
        node_counts: list[int] = []
        bond_counts: list[int] = []
        positions: list[np.ndarray] = []
        errors: list[FeaturizationError | None] = []
        with rdBase.BlockLogs():
            for item in items:
                try:
                    mol = self.molecule(item)
                except FeaturizationError as exc:
                    errors.append(exc)
                    continue
                atoms = list(map(mol.GetAtomWithIdx, range(mol.GetNumAtoms())))
                bonds = list(map(mol.GetBondWithIdx, range(mol.GetNumBonds())))
                atom_columns.add(atoms)
                bond_columns.add(bonds)
                node_counts.append(len(atoms))
                bond_counts.append(len(bonds))
                if self.conformer:
                    positions.append(mol.GetConformer().GetPositions())
                errors.append(None)
        return node_counts, bond_counts, positions, errors

    # recipe ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Complete settings (every feature spelled out), JSON-serialisable."""
        return {
            "kind": "molecule",
            "atoms": [feature_to_dict(f) for f in self.atoms.features],
            "bonds": [feature_to_dict(f) for f in self.bonds.features],
            "explicit_hydrogens": self.explicit_hydrogens,
            "largest_fragment": self.largest_fragment,
            "conformer": self.conformer,
            "conformer_seed": self.conformer_seed,
        }

    def graph_settings(self) -> dict[str, Any]:
        """The settings that change the graphs (a cache key): :meth:`to_dict`, with the
        conformer seed only where conformers are made (``conformer_seed: ${seed}`` in the
        configs must not re-featurize a run whose model seed changes)."""
        settings = self.to_dict()
        if not self.conformer:
            settings["conformer_seed"] = 0  # seed-0 caches written so far still hit
        return settings

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MoleculeFeaturizer:
        if d.get("kind") != "molecule":
            raise ValueError(f"not a molecule featurizer recipe: kind={d.get('kind')!r}")
        return cls(
            atoms=AtomFeaturizer(tuple(feature_from_dict(f) for f in d["atoms"])),
            bonds=BondFeaturizer(tuple(feature_from_dict(f) for f in d["bonds"])),
            explicit_hydrogens=bool(d["explicit_hydrogens"]),
            largest_fragment=bool(d["largest_fragment"]),
            conformer=bool(d["conformer"]),
            conformer_seed=int(d["conformer_seed"]),
        )
