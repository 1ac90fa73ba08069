"""What every data source gives (a :class:`GraphDataset`) and what every data source is
(a :class:`DataSource`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from molgraph.batch import GraphBatch
from molgraph.data.cache import FeaturizedRows
from molgraph.data.embeddings import attach_embeddings
from molgraph.data.tables import LabelledSource
from molgraph.data.variants import VariantGraphs
from molgraph.featurize import Featurizer
from molgraph.packed import PackedGraphs, Padding
from molgraph.types import ItemName, TaskKinds

__all__ = ["DataSource", "GraphDataset"]


@dataclass(frozen=True)
class GraphDataset:
    """Featurized items (molecules, structures, variants) with their labels.

    ``items`` holds one string per graph (a SMILES, or the sequence of the residues the
    graph kept: node i = residue i, as ESM tokens are), written to prediction files under
    the column ``item_name``; ``table`` holds the source's rows of the kept items (index
    0..G-1) for splitters that split on its columns, or None.

    Shapes
    ------
    y: ``[G, T]`` float32, NaN where a label is missing; row_ids: ``[G]`` int64, the
    0-based data row of each item in the source file (as pandas counts rows: blank lines
    skipped); failures: one row per failed source row (``row``, the item's column,
    ``reason``).
    """

    graphs: PackedGraphs | VariantGraphs
    y: Tensor
    items: tuple[str, ...]
    item_name: ItemName
    row_ids: np.ndarray
    target_names: tuple[str, ...]
    task: TaskKinds = "regression"
    failures: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["row", "item", "reason"])
    )
    table: pd.DataFrame | None = None

    @classmethod
    def from_rows(
        cls,
        rows: FeaturizedRows,
        source: LabelledSource,
        item_name: ItemName,
        items: tuple[str, ...],
        table: pd.DataFrame | None = None,
    ) -> GraphDataset:
        """The dataset of a source's featurized ``rows``, named by ``source``'s targets."""
        return cls(
            graphs=rows.graphs,
            y=rows.y,
            items=items,
            item_name=item_name,
            row_ids=rows.row_ids,
            target_names=tuple(source.target_columns),
            task=source.task,
            failures=rows.failures,
            table=table,
        )

    @property
    def smiles(self) -> tuple[str, ...]:
        """The SMILES of each graph (molecule datasets only)."""
        if self.item_name != "smiles":
            raise AttributeError("a dataset of sequences has no SMILES")
        return self.items

    @property
    def sequences(self) -> tuple[str, ...]:
        """The residue sequence of each graph (protein datasets only)."""
        if self.item_name != "sequence":
            raise AttributeError("a dataset of SMILES has no sequences")
        return self.items

    def __len__(self) -> int:
        return len(self.graphs)

    def batch(self, indices: Tensor | Sequence[int], padding: Padding | None = None) -> GraphBatch:
        """Graphs ``indices`` with their labels as one batch."""
        return self.graphs.batch(indices, self.y, padding)

    def to(self, device: torch.device | str) -> GraphDataset:
        """This dataset with its graphs and labels on ``device``."""
        return replace(self, graphs=self.graphs.to(device), y=self.y.to(device))

    def with_embeddings(self, embeddings: Sequence[Tensor]) -> GraphDataset:
        """This dataset with per-residue embeddings ``[L_i, D]`` (one per graph, in order)
        carried into every batch as ``node_embeddings``."""
        return replace(self, graphs=attach_embeddings(self.graphs, embeddings))


@runtime_checkable
class DataSource(LabelledSource, Protocol):
    """Where a dataset lives and how to read it (:class:`~molgraph.data.MoleculeCSV`,
    :class:`~molgraph.data.StructureFolder`, :class:`~molgraph.data.MutationalScan`): its
    file, target columns and task (:class:`~molgraph.data.tables.LabelledSource`), and:"""

    def check_featurizer(self, featurizer: object) -> None:
        """Raise ConfigError unless ``featurizer`` builds graphs from this source's items."""
        ...

    def load(
        self,
        featurizer: Featurizer,
        cache_dir: str | Path | None = None,
        num_workers: int | None = None,
        progress: bool = True,
    ) -> GraphDataset:
        """Read, featurize (in ``num_workers`` processes) and cache the source; a second
        call with the same ``cache_dir`` loads the cache."""
        ...
