"""Data sources, datasets, splits, batch loaders and prediction inputs."""

from molgraph.data.dataset import DataSource, GraphDataset
from molgraph.data.featurization import featurize_all, featurize_rows
from molgraph.data.folds import ProteinGymFoldSplit
from molgraph.data.inputs import InputRows, VariantOptions, read_inputs
from molgraph.data.loader import GraphDataModule, GraphLoader
from molgraph.data.molecules import MoleculeCSV, load_molecule_csv
from molgraph.data.mutations import Mutation, VariantReader, parse_mutations
from molgraph.data.proteins import StructureFolder
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
    "DataSource",
    "GraphDataModule",
    "GraphDataset",
    "GraphLoader",
    "IndexFileSplit",
    "InputRows",
    "KFoldSplit",
    "MoleculeCSV",
    "Mutation",
    "MutationCountSplit",
    "MutationalScan",
    "ProteinGymFoldSplit",
    "RandomSplit",
    "ScaffoldSplit",
    "SplitIndices",
    "StratifiedSplit",
    "StructureFolder",
    "VariantGraphs",
    "VariantOptions",
    "VariantReader",
    "featurize_all",
    "featurize_rows",
    "load_molecule_csv",
    "parse_mutations",
    "read_inputs",
]
