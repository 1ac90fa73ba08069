"""Datasets, splits and batch loaders."""

from molgraph.data.dataset import (
    MoleculeCSV,
    MoleculeDataset,
    featurize_all,
    load_molecule_csv,
)
from molgraph.data.loader import GraphDataModule, GraphLoader
from molgraph.data.splits import (
    IndexFileSplit,
    KFoldSplit,
    RandomSplit,
    ScaffoldSplit,
    SplitIndices,
    StratifiedSplit,
)

__all__ = [
    "GraphDataModule",
    "GraphLoader",
    "IndexFileSplit",
    "KFoldSplit",
    "MoleculeCSV",
    "MoleculeDataset",
    "RandomSplit",
    "ScaffoldSplit",
    "SplitIndices",
    "StratifiedSplit",
    "featurize_all",
    "load_molecule_csv",
]
