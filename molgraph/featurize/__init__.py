"""Featurizers: inputs → small graphs. Each reports its output widths."""

from molgraph.featurize.encodings import OneHot, Scaled
from molgraph.featurize.molecule import AtomFeaturizer, BondFeaturizer, MoleculeFeaturizer

__all__ = ["AtomFeaturizer", "BondFeaturizer", "MoleculeFeaturizer", "OneHot", "Scaled"]
