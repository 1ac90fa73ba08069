"""Featurizers: inputs → small graphs. Each reports its output widths.

Modules: :mod:`~molgraph.featurize.base` (the :class:`Featurizer` protocol),
:mod:`~molgraph.featurize.molecule` (atom graphs) with its feature specs in
:mod:`~molgraph.featurize.presets` and :mod:`~molgraph.featurize.encodings`,
:mod:`~molgraph.featurize.protein` (residue graphs) with :mod:`~molgraph.featurize.layout`
(its columns), :mod:`~molgraph.featurize.structure` (PDB / mmCIF parsing) and
:mod:`~molgraph.featurize.residues` (the residue alphabet), and
:mod:`~molgraph.featurize.recipe` (featurizers from their ``to_dict()``).
"""

from molgraph.arrays import GraphArrays
from molgraph.featurize.base import Featurizer
from molgraph.featurize.encodings import OneHot, Scaled
from molgraph.featurize.molecule import MoleculeFeaturizer
from molgraph.featurize.presets import AtomFeaturizer, BondFeaturizer
from molgraph.featurize.protein import ProteinFeaturizer
from molgraph.featurize.recipe import featurizer_from_dict
from molgraph.featurize.residues import RESIDUE_TYPES
from molgraph.featurize.structure import Residues, read_structure

__all__ = [
    "RESIDUE_TYPES",
    "AtomFeaturizer",
    "BondFeaturizer",
    "Featurizer",
    "GraphArrays",
    "MoleculeFeaturizer",
    "OneHot",
    "ProteinFeaturizer",
    "Residues",
    "Scaled",
    "featurizer_from_dict",
    "read_structure",
]
