"""Datasets, splits and batch loaders."""

from molgraph.data.dataset import (
    GraphDataset,
    MoleculeCSV,
    MoleculeDataset,
    featurize_all,
    load_molecule_csv,
)
from molgraph.data.loader import GraphDataModule, GraphLoader
from molgraph.data.mutations import Mutation, VariantReader, parse_mutations
from molgraph.data.proteins import ProteinDataset, StructureFolder
from molgraph.data.scaffolds import ScaffoldSplit
from molgraph.data.scans import MutationalScan
from molgraph.data.splits import (
    IndexFileSplit,
    KFoldSplit,
    RandomSplit,
    SplitIndices,
    StratifiedSplit,
)
from molgraph.data.table_splits import ColumnSplit, MutationCountSplit
from molgraph.data.variants import VariantGraphs

__all__ = [
    "ColumnSplit",
    "GraphDataModule",
    "GraphDataset",
    "GraphLoader",
    "IndexFileSplit",
    "KFoldSplit",
    "MoleculeCSV",
    "MoleculeDataset",
    "Mutation",
    "MutationCountSplit",
    "MutationalScan",
    "ProteinDataset",
    "RandomSplit",
    "ScaffoldSplit",
    "SplitIndices",
    "StratifiedSplit",
    "StructureFolder",
    "VariantGraphs",
    "VariantReader",
    "featurize_all",
    "load_molecule_csv",
    "parse_mutations",
]
