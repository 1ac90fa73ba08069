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

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from molgraph.batch import GraphBatch
from molgraph.data.dataset import (
    TaskKind,
    check_labels_source,
    featurize_all,
    hash_file,
    labels_of,
    read_table,
    write_atomically,
)
from molgraph.data.mutations import sequences_of
from molgraph.data.variants import VariantGraphs
from molgraph.errors import ConfigError, MolgraphError
from molgraph.packed import PackedGraphs, Padding

log = logging.getLogger(__name__)

_CACHE_FORMAT = 1


def check_protein_featurizer(featurizer: object, source: str) -> None:
    """Raise ConfigError unless ``featurizer`` builds residue graphs from structures."""
    from molgraph.featurize.protein import ProteinFeaturizer

    if not isinstance(featurizer, ProteinFeaturizer):
        raise ConfigError(
            f"data source {source} holds protein structures: it needs a ProteinFeaturizer "
            f"(featurizer=protein), got {type(featurizer).__name__}"
        )


@dataclass(frozen=True)
class ProteinDataset:
    """Featurized proteins with their labels.

    Shapes
    ------
    y: ``[G, T]`` float32, NaN where a label is missing; row_ids: ``[G]``, the 0-based
    data row of each item in the labels CSV; sequences: the one-letter sequence of the
    residues each graph kept (node i = residue i, as ESM tokens are); table: the CSV's
    rows of the kept items (index 0..G-1), for splitters that split on its columns.
    """

    graphs: PackedGraphs | VariantGraphs
    y: Tensor
    sequences: tuple[str, ...]
    row_ids: np.ndarray
    target_names: tuple[str, ...]
    task: TaskKind = "regression"
    failures: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["row", "item", "reason"])
    )
    table: pd.DataFrame | None = None

    item_name = "sequence"

    @property
    def items(self) -> tuple[str, ...]:
        return self.sequences

    def __len__(self) -> int:
        return len(self.graphs)

    def batch(self, indices: Tensor | Sequence[int], padding: Padding | None = None) -> GraphBatch:
        return self.graphs.batch(indices, self.y, padding)

    def to(self, device: torch.device | str) -> ProteinDataset:
        return replace(self, graphs=self.graphs.to(device), y=self.y.to(device))

    def with_embeddings(self, embeddings: Sequence[Tensor]) -> ProteinDataset:
        """This dataset with per-residue embeddings ``[L_i, D]`` (one per graph, in order)
        carried into every batch as ``node_embeddings``."""
        return replace(self, graphs=attach_embeddings(self.graphs, embeddings))


def graph_sequences(graphs: PackedGraphs | VariantGraphs, columns: slice) -> list[str]:
    """The sequence of each graph (node i = residue i), from its residue one-hot."""
    if isinstance(graphs, VariantGraphs):
        return sequences_of(graphs.residue_types.cpu().numpy())
    return list(residue_sequences(graphs, columns))


def attach_embeddings(
    graphs: PackedGraphs | VariantGraphs, embeddings: Sequence[Tensor]
) -> PackedGraphs | VariantGraphs:
    """``graphs`` with per-residue embeddings ``[L_i, D]`` (one per graph, in order,
    ``L_i`` = the graph's node count), which batches carry as ``node_embeddings``."""
    if isinstance(graphs, VariantGraphs):
        counts = [graphs.num_residues] * len(graphs)
    else:
        counts = graphs.node_counts.tolist()
    if len(embeddings) != len(counts):
        raise ValueError(f"{len(embeddings)} embeddings for {len(counts)} graphs")
    for i, (e, n) in enumerate(zip(embeddings, counts, strict=True)):
        if e.ndim != 2 or e.shape[0] != n:
            raise ValueError(f"graph {i}: embedding of shape {tuple(e.shape)} for {n} residues")
    if isinstance(graphs, VariantGraphs):
        return replace(graphs, embeddings=torch.stack(list(embeddings)))
    return replace(graphs, node_embeddings=torch.cat(list(embeddings)))


def cached(
    name: str,
    folder: Path | None,
    build: Callable[[], ProteinDataset],
    save: Callable[[Path, ProteinDataset], None],
    load: Callable[[Path], ProteinDataset],
) -> ProteinDataset:
    """``load(folder)`` if the cache exists, else ``build()`` and ``save`` it; logs the
    counts of items and failed rows and where the failures are listed."""
    if folder is not None and (folder / "graphs.bin").is_file():
        dataset = load(folder)
        log.info(
            "%s: loaded %d graphs from cache %s (%d failed rows, listed in failures.csv there)",
            name, len(dataset), folder, len(dataset.failures),
        )  # fmt: skip
        return dataset
    dataset = build()
    if folder is not None:
        write_atomically(folder, lambda staging: save(staging, dataset))
    where = f"listed in {folder / 'failures.csv'}" if folder else "see dataset.failures"
    log.info(
        "%s: %d rows → %d graphs, %d rows failed (%s)",
        name, len(dataset) + len(dataset.failures), len(dataset), len(dataset.failures), where,
    )  # fmt: skip
    return dataset


def cache_folder(
    cache_dir: str | Path | None, stem: str, files: Sequence[Path], settings: dict[str, Any]
) -> Path | None:
    """``cache_dir/<stem>-<key>``, keyed by the files' content and ``settings``."""
    if not cache_dir:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        hash_file(path, digest)
    digest.update(json.dumps({"format": _CACHE_FORMAT, **settings}, sort_keys=True).encode())
    return Path(cache_dir).expanduser() / f"{stem}-{digest.hexdigest()[:20]}"


def residue_sequences(graphs: PackedGraphs, columns: slice) -> tuple[str, ...]:
    """The sequence of each graph, read back from its residue one-hot columns."""
    types = graphs.x[:, columns].argmax(1).to(torch.uint8).cpu().numpy()
    bounds = np.cumsum(graphs.node_counts.numpy())[:-1]
    return tuple(s for part in np.split(types, bounds) for s in sequences_of(part[None]))


def _stem(path: str | Path) -> str:
    name = Path(path).name
    return name.split(".")[0] or name


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
        ``regression`` or ``classification`` (binary labels 0/1 per task).
    """

    path: str
    target_columns: Sequence[str]
    structures: str | None = None
    file_column: str = "file"
    chain_column: str | None = "chain"
    task: TaskKind = "regression"

    def __post_init__(self) -> None:
        check_labels_source(self)

    def check_featurizer(self, featurizer: object) -> None:
        check_protein_featurizer(featurizer, self.path)

    def load(
        self,
        featurizer: Any,
        cache_dir: str | Path | None = None,
        num_workers: int | None = None,
        progress: bool = True,
    ) -> ProteinDataset:
        """Read, featurize and cache the structures (see the module docstring)."""
        self.check_featurizer(featurizer)
        table = self._table()
        files = self._files(table)
        settings = {
            "featurizer": featurizer.to_dict(),
            "source": {k: v for k, v in vars(self).items() if k not in ("path", "structures")},
        }
        present = sorted({f for f in files if f.is_file()})
        folder = cache_folder(cache_dir, _stem(self.path), [Path(self.path), *present], settings)

        def load(folder: Path) -> ProteinDataset:
            graphs, labels = PackedGraphs.load(folder / "graphs.bin")
            failures = pd.read_csv(folder / "failures.csv", keep_default_na=False)
            return self._dataset(table, graphs, labels["y"], labels["row_ids"].numpy(),
                                 failures, featurizer)  # fmt: skip

        def save(staging: Path, dataset: ProteinDataset) -> None:
            row_ids = torch.from_numpy(dataset.row_ids)
            assert isinstance(dataset.graphs, PackedGraphs)
            dataset.graphs.save(staging / "graphs.bin", {"y": dataset.y, "row_ids": row_ids})
            dataset.failures.to_csv(staging / "failures.csv", index=False)

        build = lambda: self._build(table, files, featurizer, num_workers, progress)  # noqa: E731
        return cached(Path(self.path).name, folder, build, save, load)

    def _table(self) -> pd.DataFrame:
        columns = [self.file_column, *self.target_columns]
        text = [self.file_column]
        if self.chain_column is not None:
            columns.append(self.chain_column)
            text.append(self.chain_column)
        return read_table(self.path, columns, text)

    def _files(self, table: pd.DataFrame) -> list[Path]:
        root = Path(self.structures) if self.structures else Path(self.path).parent
        return [root / str(name) for name in table[self.file_column].fillna("")]

    def _chains(self, table: pd.DataFrame) -> list[tuple[str, ...] | None]:
        if self.chain_column is None:
            return [None] * len(table)
        cells = table[self.chain_column].fillna("")
        return [tuple(c for c in cell.replace(",", " ").split()) or None for cell in cells]

    def _build(
        self,
        table: pd.DataFrame,
        files: list[Path],
        featurizer: Any,
        num_workers: int | None,
        progress: bool,
    ) -> ProteinDataset:
        y, failed = labels_of(table, self)
        for row, path in enumerate(files):
            if not path.is_file():
                failed.setdefault(row, f"no such file: {path}")
        chains = self._chains(table)
        candidates = [i for i in range(len(table)) if i not in failed]
        items = [str(files[i]) if chains[i] is None else (str(files[i]), chains[i])
                 for i in candidates]  # fmt: skip
        graphs, errors = featurize_all(featurizer, items, num_workers, progress, unit="structure")
        for row, error in zip(candidates, errors, strict=True):
            if error is not None:
                failed[row] = error.reason
        kept = np.array([i for i, e in zip(candidates, errors, strict=True) if e is None], np.int64)
        if graphs is None:
            raise MolgraphError(
                f"{self.path}: no structure could be featurized ({len(failed)} failed)"
            )
        names = table[self.file_column].fillna("").astype(str)
        failures = pd.DataFrame(
            [(row, names.iloc[row], failed[row]) for row in sorted(failed)],
            columns=["row", "file", "reason"],
        )
        y_kept = torch.from_numpy(y[kept]).float()
        return self._dataset(table, graphs, y_kept, kept, failures, featurizer)

    def _dataset(
        self,
        table: pd.DataFrame,
        graphs: PackedGraphs,
        y: Tensor,
        kept: np.ndarray,
        failures: pd.DataFrame,
        featurizer: Any,
    ) -> ProteinDataset:
        return ProteinDataset(
            graphs=graphs,
            y=y,
            sequences=residue_sequences(graphs, featurizer.residue_type_columns),
            row_ids=kept,
            target_names=tuple(self.target_columns),
            task=self.task,
            failures=failures,
            table=table.iloc[kept].reset_index(drop=True),
        )
