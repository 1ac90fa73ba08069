"""Protein datasets: a folder of structures with a labels CSV → cached residue graphs.

The labels CSV names one structure file per row (relative to ``structures``), optionally
the chains to keep, and the targets. Files are featurized once, in parallel, and cached
under a key of the CSV's and every named structure's content plus the featurizer's and
source's settings. Rows that fail (missing or unreadable file, non-numeric label) are
listed with row, file and reason in ``failures.csv`` beside the cache and counted in the
log; no row is dropped silently. Mutational scans (one structure, many variants) live in
:mod:`molgraph.data.scans`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from molgraph.data.cache import CacheLayout, FeaturizedRows, cache_folder, load_or_build
from molgraph.data.dataset import GraphDataset
from molgraph.data.embeddings import graph_sequences
from molgraph.data.featurization import featurize_rows
from molgraph.data.tables import (
    check_labels_source,
    failures_table,
    file_stem,
    labels_of,
    read_table,
)
from molgraph.errors import ConfigError, MolgraphError
from molgraph.featurize import Featurizer, ProteinFeaturizer
from molgraph.types import TaskKinds

__all__ = [
    "StructureFolder",
    "StructureItem",
    "missing_structures",
    "protein_featurizer",
    "structure_items",
]

_FORMAT = 1
_LAYOUT = CacheLayout(item_column="file")

#: A structure file, alone or with the chains to keep.
StructureItem = str | tuple[str, tuple[str, ...]]


def protein_featurizer(featurizer: object, source: str) -> ProteinFeaturizer:
    """``featurizer``, checked to build residue graphs from structures.

    Raises
    ------
    ConfigError
        It is not a :class:`~molgraph.featurize.ProteinFeaturizer`.
    """
    if not isinstance(featurizer, ProteinFeaturizer):
        raise ConfigError(
            f"data source {source} holds protein structures: it needs a ProteinFeaturizer "
            f"(featurizer=protein), got {type(featurizer).__name__}"
        )
    return featurizer


def structure_items(
    table: pd.DataFrame, file_column: str, chain_column: str | None, root: Path
) -> list[StructureItem]:
    """The featurizer item of each row of ``table``: the path ``root / <file cell>``,
    paired with the chains of the row's chain cell (``A`` or ``A,B``) when it names any.
    Empty cells give the path ``root`` and no chains."""
    names = table[file_column].fillna("")
    files = [str(root / str(name)) for name in names]
    if chain_column is None:
        return list(files)
    cells = table[chain_column].fillna("")
    chains = [tuple(str(cell).replace(",", " ").split()) for cell in cells]
    return [f if not c else (f, c) for f, c in zip(files, chains, strict=True)]


def structure_path(item: StructureItem) -> Path:
    """The file of a structure item."""
    return Path(item if isinstance(item, str) else item[0])


def missing_structures(items: Sequence[StructureItem]) -> dict[int, Path]:
    """The path of every item whose file does not exist, by row."""
    paths = {row: structure_path(item) for row, item in enumerate(items)}
    return {row: path for row, path in paths.items() if not path.is_file()}


@dataclass(frozen=True)
class StructureFolder:
    """A labels CSV naming one structure file (PDB/mmCIF, gzipped or not) per row.

    Parameters
    ----------
    path
        Labels CSV (``.csv`` or ``.csv.gz``).
    target_columns
        One column per task; empty cells are missing labels.
    structures
        Folder the file names are relative to; default: the CSV's folder.
    file_column
        Column naming each row's structure file.
    chain_column
        Column of the chains to keep (``A`` or ``A,B``; empty = the featurizer's
        ``chains``), or None.
    task
        ``regression`` or ``classification`` (binary labels 0/1) for every target, or one
        kind per target: a list in column order or a mapping from column to kind.
    """

    path: str
    target_columns: Sequence[str]
    structures: str | None = None
    file_column: str = "file"
    chain_column: str | None = "chain"
    task: TaskKinds = "regression"

    def __post_init__(self) -> None:
        check_labels_source(self)

    def check_featurizer(self, featurizer: object) -> None:
        """Raise ConfigError unless ``featurizer`` builds residue graphs."""
        protein_featurizer(featurizer, self.path)

    @classmethod
    def from_folder(
        cls,
        folder: str,
        labels: str,
        target_columns: Sequence[str] | None = None,
        file_column: str = "file",
        chain_column: str | None = "chain",
        task: TaskKinds = "regression",
    ) -> StructureFolder:
        """A folder of structures and its labels CSV (``data=structures``); without
        ``target_columns``, every column of the CSV but the file and chain columns; the
        chain column is optional."""
        if not Path(folder).is_dir():
            raise ConfigError(f"data.folder={folder}: not a folder of structure files")
        if not Path(labels).is_file():
            raise ConfigError(f"data.labels={labels}: no such labels CSV")
        header = pd.read_csv(labels, nrows=0).columns
        if chain_column not in header:
            chain_column = None
        if target_columns is None:
            target_columns = [c for c in header if c not in (file_column, chain_column)]
        return cls(labels, target_columns, folder, file_column, chain_column, task)

    def load(
        self,
        featurizer: Featurizer,
        cache_dir: str | Path | None = None,
        num_workers: int | None = None,
        progress: bool = True,
    ) -> GraphDataset:
        """Read, featurize and cache the structures (see the module docstring)."""
        protein = protein_featurizer(featurizer, self.path)
        table = self._table()
        root = Path(self.structures) if self.structures else Path(self.path).parent
        items = structure_items(table, self.file_column, self.chain_column, root)
        settings = {
            "featurizer": protein.to_dict(),
            "source": {k: v for k, v in vars(self).items() if k not in ("path", "structures")},
        }
        missing = missing_structures(items)
        present = sorted({structure_path(f) for i, f in enumerate(items) if i not in missing})
        files = [Path(self.path), *present]
        folder = cache_folder(cache_dir, file_stem(self.path), files, settings, _FORMAT)

        def build() -> FeaturizedRows:
            return self._featurize(table, items, protein, num_workers, progress)

        rows = load_or_build(Path(self.path).name, folder, build, _LAYOUT)
        sequences = tuple(graph_sequences(rows.graphs, protein.residue_type_columns))
        kept = table.iloc[rows.row_ids].reset_index(drop=True)
        return GraphDataset.from_rows(rows, self, "sequence", sequences, kept)

    def _table(self) -> pd.DataFrame:
        columns = [self.file_column, *self.target_columns]
        text = [self.file_column]
        if self.chain_column is not None:
            columns.append(self.chain_column)
            text.append(self.chain_column)
        return read_table(self.path, columns, text)

    def _featurize(
        self,
        table: pd.DataFrame,
        items: list[StructureItem],
        featurizer: ProteinFeaturizer,
        num_workers: int | None,
        progress: bool,
    ) -> FeaturizedRows:
        y, refused = labels_of(table, self)
        for row, path in missing_structures(items).items():
            refused.setdefault(row, f"no such file: {path}")
        graphs, kept, failed = featurize_rows(
            featurizer, items, refused, num_workers, progress, unit="structure"
        )
        if graphs is None:
            raise MolgraphError(
                f"{self.path}: no structure could be featurized ({len(failed)} failed)"
            )
        names = table[self.file_column].fillna("").astype(str).tolist()
        return FeaturizedRows(
            graphs=graphs,
            y=torch.from_numpy(y[kept]).float(),
            row_ids=kept,
            failures=failures_table(failed, names, "file"),
        )
