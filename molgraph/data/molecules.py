"""Molecule datasets: a CSV of SMILES and targets → cached packed graphs and labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from molgraph.data.cache import CacheLayout, FeaturizedRows, cache_folder, load_or_build
from molgraph.data.dataset import GraphDataset
from molgraph.data.featurization import featurize_rows
from molgraph.data.tables import check_labels_source, failures_table, labels_of, read_table
from molgraph.errors import ConfigError, MolgraphError
from molgraph.featurize import Featurizer, MoleculeFeaturizer
from molgraph.types import TaskKinds

_FORMAT = 2  # 2: ETKDG with bounded attempts and a random-coordinate retry
_LAYOUT = CacheLayout(item_column="smiles", items_file="smiles.json")


def molecule_featurizer(featurizer: object, source: str) -> MoleculeFeaturizer:
    """``featurizer``, checked to turn SMILES into graphs.

    Raises
    ------
    ConfigError
        It is not a :class:`~molgraph.featurize.MoleculeFeaturizer`.
    """
    if not isinstance(featurizer, MoleculeFeaturizer):
        raise ConfigError(
            f"data source {source} holds SMILES: it needs a MoleculeFeaturizer "
            f"(featurizer=default, canonical, ...), got {type(featurizer).__name__}"
        )
    return featurizer


@dataclass(frozen=True)
class MoleculeCSV:
    """Where a molecule dataset lives and what to read from it.

    Parameters
    ----------
    path
        CSV file (``.csv`` or ``.csv.gz``).
    target_columns
        One column per task; empty cells are missing labels.
    smiles_column
        Column holding SMILES.
    task
        ``regression`` or ``classification`` (binary labels 0/1) for every target, or one
        kind per target: a list in column order or a mapping from column to kind.
    """

    path: str
    target_columns: Sequence[str]
    smiles_column: str = "smiles"
    task: TaskKinds = "regression"

    def __post_init__(self) -> None:
        check_labels_source(self)

    def check_featurizer(self, featurizer: object) -> None:
        """Raise ConfigError unless ``featurizer`` turns SMILES into graphs."""
        molecule_featurizer(featurizer, self.path)

    def load(
        self,
        featurizer: Featurizer,
        cache_dir: str | Path | None = None,
        num_workers: int | None = None,
        progress: bool = True,
    ) -> GraphDataset:
        """:func:`load_molecule_csv` of this source."""
        featurizer = molecule_featurizer(featurizer, self.path)
        return load_molecule_csv(self, featurizer, cache_dir, num_workers, progress)


def load_molecule_csv(
    source: MoleculeCSV,
    featurizer: MoleculeFeaturizer,
    cache_dir: str | Path | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> GraphDataset:
    """Read, featurize and cache a molecule CSV; a second call loads the cache.

    The cache lives in ``cache_dir/<file stem>-<key>``, keyed by the file's content and
    every featurizer and column setting (see :mod:`molgraph.data.cache`). Rows that fail
    (unparseable SMILES, non-numeric labels) are listed with row, SMILES and reason in
    ``failures.csv`` beside the cache and counted in the log; no row is dropped silently.
    """
    path = Path(source.path)
    folder = None
    if path.is_file():  # else building says the file is missing
        settings = {
            "featurizer": featurizer.graph_settings(),
            "smiles_column": source.smiles_column,
            "target_columns": list(source.target_columns),
            "task": source.task,
        }
        # keys hash the CSV's content without its name: caches written so far still hit
        folder = cache_folder(cache_dir, path.stem, [path], settings, _FORMAT, hash_names=False)

    def build() -> FeaturizedRows:
        return _featurize(source, featurizer, num_workers, progress)

    rows = load_or_build(path.name, folder, build, _LAYOUT)
    return GraphDataset.from_rows(rows, source, "smiles", rows.items or ())


def _featurize(
    source: MoleculeCSV,
    featurizer: MoleculeFeaturizer,
    num_workers: int | None,
    progress: bool,
) -> FeaturizedRows:
    columns = (source.smiles_column, *source.target_columns)
    table = read_table(source.path, columns, text=[source.smiles_column])
    smiles = table[source.smiles_column].fillna("").astype(str).tolist()
    y, refused = labels_of(table, source)
    graphs, kept, failed = featurize_rows(featurizer, smiles, refused, num_workers, progress)
    if graphs is None:
        raise MolgraphError(f"{source.path}: no row could be featurized ({len(failed)} failed)")
    return FeaturizedRows(
        graphs=graphs,
        y=torch.from_numpy(y[kept]).float(),
        row_ids=kept,
        failures=failures_table(failed, smiles, "smiles"),
        items=tuple(smiles[i] for i in kept),
    )
