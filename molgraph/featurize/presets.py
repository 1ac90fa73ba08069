"""Atom and bond feature specs (:class:`AtomFeaturizer`, :class:`BondFeaturizer`) and
their presets, chemprop-style: ``default``, ``organic``, ``canonical`` (DGL-LifeSci's) and
``pretrain`` (Hu et al. 2020). A spec is a tuple of :class:`OneHot` / :class:`Scaled`
features over the raw properties :mod:`molgraph.featurize.molecule` reads from RDKit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rdkit import Chem
from rdkit.Chem.rdchem import BondDir, BondStereo, BondType, ChiralType, HybridizationType

from molgraph.featurize.encodings import Feature, OneHot, Scaled


def _ints(*values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


_HYBRIDIZATIONS = _ints(
    HybridizationType.S,
    HybridizationType.SP,
    HybridizationType.SP2,
    HybridizationType.SP3,
    HybridizationType.SP3D,
    HybridizationType.SP3D2,
)
_BOND_TYPES = _ints(BondType.SINGLE, BondType.DOUBLE, BondType.TRIPLE, BondType.AROMATIC)
_STEREO = _ints(
    BondStereo.STEREONONE,
    BondStereo.STEREOANY,
    BondStereo.STEREOZ,
    BondStereo.STEREOE,
    BondStereo.STEREOCIS,
    BondStereo.STEREOTRANS,
)
_CHIRAL_TAGS = _ints(
    ChiralType.CHI_UNSPECIFIED,
    ChiralType.CHI_TETRAHEDRAL_CW,
    ChiralType.CHI_TETRAHEDRAL_CCW,
    ChiralType.CHI_OTHER,
)
# DGL-LifeSci's CanonicalAtomFeaturizer element list, in its order
_CANONICAL_ELEMENTS = (
    "C N O S F Si P Cl Br Mg Na Ca Fe As Al I B V K Tl Yb Sb Sn Ag Pd Co Se Ti Zn H Li Ge "
    "Cu Au Ni Cd In Mn Zr Cr Pt Hg Pb"
).split()
_ORGANIC_ELEMENTS = "H B C N O F Si P S Cl Br I".split()


def _atomic_numbers(symbols: Sequence[str]) -> tuple[int, ...]:
    table = Chem.GetPeriodicTable()
    return tuple(table.GetAtomicNumber(s) for s in symbols)


@dataclass(frozen=True)
class AtomFeaturizer:
    """Atom features: a tuple of :class:`OneHot` / :class:`Scaled` over the atom properties
    :data:`~molgraph.featurize.molecule.ATOM_PROPS`."""

    features: tuple[Feature, ...]

    @property
    def width(self) -> int:
        return sum(f.width for f in self.features)

    @classmethod
    def default(cls, elements: Sequence[int] = tuple(range(1, 101))) -> AtomFeaturizer:
        """Element, degree, formal charge, chirality, total H, hybridization (each
        one-hot with an unknown bucket), aromatic, in ring, mass / 100 (135 columns)."""
        return cls(
            (
                OneHot("atomic_num", tuple(elements)),
                OneHot("degree", tuple(range(6))),
                OneHot("formal_charge", (-2, -1, 0, 1, 2)),
                OneHot("chiral_tag", _CHIRAL_TAGS),
                OneHot("total_hs", tuple(range(5))),
                OneHot("hybridization", _HYBRIDIZATIONS),
                Scaled("aromatic"),
                Scaled("in_ring"),
                Scaled("mass", 0.01),
            )
        )

    @classmethod
    def organic(cls) -> AtomFeaturizer:
        """:meth:`default` over the organic subset H B C N O F Si P S Cl Br I (47 columns)."""
        return cls.default(_atomic_numbers(_ORGANIC_ELEMENTS))

    @classmethod
    def canonical(cls) -> AtomFeaturizer:
        """DGL-LifeSci's ``CanonicalAtomFeaturizer`` (74 columns, no unknown buckets)."""
        return cls(
            (
                OneHot("atomic_num", _atomic_numbers(_CANONICAL_ELEMENTS), unknown=False),
                OneHot("degree", tuple(range(11)), unknown=False),
                OneHot("implicit_valence", tuple(range(7)), unknown=False),
                Scaled("formal_charge"),
                Scaled("radical_electrons"),
                OneHot("hybridization", _HYBRIDIZATIONS[1:], unknown=False),
                Scaled("aromatic"),
                OneHot("total_hs", tuple(range(5)), unknown=False),
            )
        )

    @classmethod
    def pretrain(cls) -> AtomFeaturizer:
        """Hu et al. (2020) pretrained GINs: atomic number 1-118 (+ unknown) and chiral
        tag (4), as DGL-LifeSci's ``PretrainAtomFeaturizer`` indexes them (123 columns)."""
        return cls(
            (
                OneHot("atomic_num", tuple(range(1, 119))),
                OneHot("chiral_tag", _CHIRAL_TAGS, unknown=False),
            )
        )


@dataclass(frozen=True)
class BondFeaturizer:
    """Bond features: a tuple of :class:`OneHot` / :class:`Scaled` over the bond properties
    :data:`~molgraph.featurize.molecule.BOND_PROPS`."""

    features: tuple[Feature, ...]

    @property
    def width(self) -> int:
        return sum(f.width for f in self.features)

    @classmethod
    def default(cls) -> BondFeaturizer:
        """Bond type, conjugated, in ring, stereo (14 columns)."""
        return cls(
            (
                OneHot("bond_type", _BOND_TYPES),
                Scaled("conjugated"),
                Scaled("in_ring"),
                OneHot("stereo", _STEREO),
            )
        )

    @classmethod
    def canonical(cls) -> BondFeaturizer:
        """DGL-LifeSci's ``CanonicalBondFeaturizer`` (12 columns)."""
        return cls(
            (
                OneHot("bond_type", _BOND_TYPES, unknown=False),
                Scaled("conjugated"),
                Scaled("in_ring"),
                OneHot("stereo", _STEREO, unknown=False),
            )
        )

    @classmethod
    def pretrain(cls) -> BondFeaturizer:
        """Hu et al. (2020): bond type (4) and direction NONE/ENDUPRIGHT/ENDDOWNRIGHT (3)."""
        directions = _ints(BondDir.NONE, BondDir.ENDUPRIGHT, BondDir.ENDDOWNRIGHT)
        return cls(
            (
                OneHot("bond_type", _BOND_TYPES, unknown=False),
                OneHot("direction", directions, unknown=False),
            )
        )
