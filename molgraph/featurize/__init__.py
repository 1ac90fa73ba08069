"""Featurizers: inputs → small graphs. Each reports its output widths."""

from molgraph.featurize.encodings import OneHot, Scaled
from molgraph.featurize.molecule import AtomFeaturizer, BondFeaturizer, MoleculeFeaturizer
from molgraph.featurize.protein import ProteinFeaturizer
from molgraph.featurize.residues import RESIDUE_TYPES
from molgraph.featurize.structure import Residues, read_structure


def featurizer_from_dict(d: dict) -> MoleculeFeaturizer | ProteinFeaturizer:
    """The featurizer a recipe's ``to_dict()`` describes (its ``kind`` picks the class)."""
    kinds = {"molecule": MoleculeFeaturizer, "protein": ProteinFeaturizer}
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in kinds:
        raise ValueError(f"unknown featurizer kind {kind!r}; known: {', '.join(kinds)}")
    return kinds[kind].from_dict(d)


__all__ = [
    "RESIDUE_TYPES",
    "AtomFeaturizer",
    "BondFeaturizer",
    "MoleculeFeaturizer",
    "OneHot",
    "ProteinFeaturizer",
    "Residues",
    "Scaled",
    "featurizer_from_dict",
    "read_structure",
]
