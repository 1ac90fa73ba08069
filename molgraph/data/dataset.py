"""Molecule datasets: a CSV of SMILES and targets → cached packed graphs and labels.

Also the pieces every dataset shares: the :class:`GraphDataset` protocol, parallel
featurization (:func:`featurize_all`) and the content-keyed, atomically written cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from molgraph.batch import GraphBatch
from molgraph.errors import ConfigError, FeaturizationError, MolgraphError
from molgraph.featurize import MoleculeFeaturizer
from molgraph.packed import PackedGraphs, Padding
from molgraph.types import TaskKind

log = logging.getLogger(__name__)

_CACHE_FORMAT = 2  # 2: ETKDG with bounded attempts and a random-coordinate retry
_CHUNK = 1024
_MIN_CHUNK = 32


def check_labels_source(source: Any) -> None:
    """Freeze a data source's ``target_columns`` to a tuple and check them and its ``task``
    (call from a frozen dataclass's ``__post_init__``)."""
    object.__setattr__(source, "target_columns", tuple(source.target_columns))
    if source.task not in ("regression", "classification"):
        raise ConfigError(f"task must be regression or classification, got {source.task!r}")
    if not source.target_columns:
        raise ConfigError(f"{source.path}: no target columns given")


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
        ``regression`` or ``classification`` (binary labels 0/1 per task).
    """

    path: str
    target_columns: Sequence[str]
    smiles_column: str = "smiles"
    task: TaskKind = "regression"

    def __post_init__(self) -> None:
        check_labels_source(self)

    def check_featurizer(self, featurizer: object) -> None:
        """Raise ConfigError unless ``featurizer`` turns SMILES into graphs."""
        if not isinstance(featurizer, MoleculeFeaturizer):
            raise ConfigError(
                f"data source {self.path} holds SMILES: it needs a MoleculeFeaturizer "
                f"(featurizer=default, canonical, ...), got {type(featurizer).__name__}"
            )

    def load(
        self,
        featurizer: MoleculeFeaturizer,
        cache_dir: str | Path | None = None,
        num_workers: int | None = None,
        progress: bool = True,
    ) -> MoleculeDataset:
        """:func:`load_molecule_csv` of this source."""
        self.check_featurizer(featurizer)
        return load_molecule_csv(self, featurizer, cache_dir, num_workers, progress)


class GraphDataset(Protocol):
    """What training reads from a dataset (molecules, structures, variants).

    ``items`` holds one string per graph (a SMILES, a sequence), written to prediction
    files under the column ``item_name``; ``table`` holds per-item columns of the source
    (e.g. split assignments) for splitters that need them, or None.
    """

    y: Tensor
    row_ids: np.ndarray
    target_names: tuple[str, ...]
    task: TaskKind
    failures: pd.DataFrame

    @property
    def items(self) -> Sequence[str]: ...

    @property
    def item_name(self) -> str: ...

    @property
    def table(self) -> pd.DataFrame | None: ...

    def __len__(self) -> int: ...

    def batch(
        self, indices: Tensor | Sequence[int], padding: Padding | None = None
    ) -> GraphBatch: ...

    def to(self, device: torch.device | str) -> GraphDataset: ...


@dataclass(frozen=True)
class MoleculeDataset:
    """Featurized molecules with their labels.

    Shapes
    ------
    y: ``[G, T]`` float32, NaN where a label is missing; row_ids: ``[G]``, the 0-based
    data row of each item in the source file (as pandas counts rows: blank lines skipped).
    """

    graphs: PackedGraphs
    y: Tensor
    smiles: tuple[str, ...]
    row_ids: np.ndarray
    target_names: tuple[str, ...]
    task: TaskKind = "regression"
    failures: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["row", "smiles", "reason"])
    )

    item_name = "smiles"
    table = None  # no per-item columns beyond SMILES and targets

    @property
    def items(self) -> tuple[str, ...]:
        return self.smiles

    def __len__(self) -> int:
        return len(self.graphs)

    def batch(self, indices: Tensor | Sequence[int], padding: Padding | None = None) -> GraphBatch:
        return self.graphs.batch(indices, self.y, padding)

    def to(self, device: torch.device | str) -> MoleculeDataset:
        return replace(self, graphs=self.graphs.to(device), y=self.y.to(device))


def featurize_all(
    featurizer: Any,
    items: Sequence[Any],
    num_workers: int | None = None,
    progress: bool = True,
    chunk_size: int = _CHUNK,
    unit: str = "mol",
) -> tuple[PackedGraphs | None, list[FeaturizationError | None]]:
    """Featurize ``items`` in chunks, in parallel processes when there is more than one chunk.

    ``featurizer.encode(chunk)`` must return ``(arrays, errors)`` as the molecule and
    protein featurizers do. Returns the packed graphs of the items that succeeded (None
    if none did) and one entry per item: None or its error.
    """
    cores = num_workers or _available_cores()
    # at least four chunks per process, so slow items (conformers) spread over all of them
    chunk_size = max(_MIN_CHUNK, min(chunk_size, math.ceil(len(items) / (4 * cores))))
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    workers = min(cores, len(chunks))
    bar = tqdm(total=len(items), unit=unit, desc="featurizing", disable=not progress)
    parts, errors = [], []
    with contextlib.ExitStack() as stack:
        stack.enter_context(bar)
        results = map(featurizer.encode, chunks)
        if workers > 1:
            # fork where available: workers inherit the imported modules and start at once
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            pool = stack.enter_context(multiprocessing.get_context(method).Pool(workers))
            results = pool.imap(featurizer.encode, chunks)
        for arrays, errs in results:
            parts.append(arrays)
            errors += errs
            bar.update(len(errs))
    parts = [PackedGraphs.from_arrays(a) for a in parts if len(a["node_counts"])]
    return (PackedGraphs.concat(parts) if parts else None), errors


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def read_table(path: str | Path, columns: Sequence[str], text: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV (``.csv`` or ``.csv.gz``) that must hold ``columns``; ``text`` columns are
    read as strings.

    Raises
    ------
    MolgraphError
        The file is missing, or lacks a column (the message lists those present).
    """
    path = Path(path)
    if not path.is_file():
        raise MolgraphError(f"{path}: no such file")
    table = pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=True)
    missing = [c for c in columns if c not in table]
    if missing:
        raise MolgraphError(
            f"{path}: missing column(s) {missing}; columns present: {list(table.columns)}"
        )
    return table


def _read_csv(source: MoleculeCSV) -> pd.DataFrame:
    columns = (source.smiles_column, *source.target_columns)
    return read_table(source.path, columns, text=[source.smiles_column])


class _Targets(Protocol):
    target_columns: Sequence[str]
    task: TaskKind


def labels_of(table: pd.DataFrame, source: _Targets) -> tuple[np.ndarray, dict[int, str]]:
    """Targets as float ``[n, T]`` (NaN = missing) and the reasons rows must be refused."""
    y = np.full((len(table), len(source.target_columns)), np.nan)
    bad: dict[int, str] = {}
    for t, column in enumerate(source.target_columns):
        raw = table[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        for row in np.flatnonzero(np.isnan(values) & raw.notna().to_numpy()):
            bad.setdefault(int(row), f"target {column!r} is not a number: {raw.iloc[row]!r}")
        if source.task == "classification":
            for row in np.flatnonzero(~np.isnan(values) & ~np.isin(values, (0.0, 1.0))):
                bad.setdefault(int(row), f"target {column!r} is not a 0/1 label: {values[row]}")
        y[:, t] = values
    return y, bad


def hash_file(path: Path, digest: Any) -> None:
    """Feed the bytes of ``path`` into ``digest`` (a hashlib object)."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def _cache_key(path: Path, source: MoleculeCSV, featurizer: MoleculeFeaturizer) -> str:
    digest = hashlib.sha256()
    hash_file(path, digest)
    settings = {
        "format": _CACHE_FORMAT,
        "featurizer": featurizer.to_dict(),
        "smiles_column": source.smiles_column,
        "target_columns": list(source.target_columns),
        "task": source.task,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:20]


def load_molecule_csv(
    source: MoleculeCSV,
    featurizer: MoleculeFeaturizer,
    cache_dir: str | Path | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> MoleculeDataset:
    """Read, featurize and cache a molecule CSV; a second call loads the cache.

    The cache lives in ``cache_dir/<file stem>-<key>``, keyed by the file's content and
    every featurizer and column setting. Rows that fail (unparseable SMILES, non-numeric
    labels) are listed with row, SMILES and reason in ``failures.csv`` beside the cache
    and counted in the log; no row is dropped silently.
    """
    path = Path(source.path)
    key = _cache_key(path, source, featurizer) if path.is_file() else ""
    folder = Path(cache_dir).expanduser() / f"{path.stem}-{key}" if cache_dir else None
    if folder is not None and (folder / "graphs.bin").is_file():
        dataset = _load_cache(folder, source)
        log.info(
            "%s: loaded %d graphs from cache %s (%d failed rows, listed in failures.csv there)",
            path.name,
            len(dataset),
            folder,
            len(dataset.failures),
        )
        return dataset
    dataset = _build(source, featurizer, num_workers, progress)
    if folder is not None:
        _save_cache(folder, dataset)
    where = f"listed in {folder / 'failures.csv'}" if folder else "see dataset.failures"
    log.info(
        "%s: %d rows → %d graphs, %d rows failed (%s)",
        path.name,
        len(dataset) + len(dataset.failures),
        len(dataset),
        len(dataset.failures),
        where,
    )
    return dataset


def _build(
    source: MoleculeCSV,
    featurizer: MoleculeFeaturizer,
    num_workers: int | None,
    progress: bool,
) -> MoleculeDataset:
    table = _read_csv(source)
    smiles = table[source.smiles_column].fillna("").astype(str).tolist()
    y, refused = labels_of(table, source)
    candidates = [i for i in range(len(table)) if i not in refused]
    graphs, errors = featurize_all(
        featurizer, [smiles[i] for i in candidates], num_workers, progress
    )
    failed = dict(refused)
    for i, error in zip(candidates, errors, strict=True):
        if error is not None:
            failed[i] = error.reason
    kept = np.array([i for i, e in zip(candidates, errors, strict=True) if e is None], np.int64)
    if graphs is None:
        raise MolgraphError(f"{source.path}: no row could be featurized ({len(failed)} failed)")
    failures = pd.DataFrame(
        [(row, smiles[row], failed[row]) for row in sorted(failed)],
        columns=["row", "smiles", "reason"],
    )
    return MoleculeDataset(
        graphs=graphs,
        y=torch.from_numpy(y[kept]).float(),
        smiles=tuple(smiles[i] for i in kept),
        row_ids=kept,
        target_names=tuple(source.target_columns),
        task=source.task,
        failures=failures,
    )


def write_atomically(folder: Path, write: Callable[[Path], None]) -> None:
    """``write(staging)`` fills a fresh folder that then becomes ``folder`` in one rename,
    so a half-written cache is never seen; if another process finished first, its
    folder is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    write(staging)
    try:
        staging.rename(folder)  # atomic: a half-written cache is never seen
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)


def _save_cache(folder: Path, dataset: MoleculeDataset) -> None:
    def write(staging: Path) -> None:
        labels = {"y": dataset.y, "row_ids": torch.from_numpy(dataset.row_ids)}
        dataset.graphs.save(staging / "graphs.bin", labels)
        (staging / "smiles.json").write_text(json.dumps(list(dataset.smiles)))
        dataset.failures.to_csv(staging / "failures.csv", index=False)

    write_atomically(folder, write)


def _load_cache(folder: Path, source: MoleculeCSV) -> MoleculeDataset:
    graphs, labels = PackedGraphs.load(folder / "graphs.bin")
    failures = pd.read_csv(folder / "failures.csv", dtype={"smiles": str}, keep_default_na=False)
    return MoleculeDataset(
        graphs=graphs,
        y=labels["y"],
        smiles=tuple(json.loads((folder / "smiles.json").read_text())),
        row_ids=labels["row_ids"].numpy(),
        target_names=tuple(source.target_columns),
        task=source.task,
        failures=failures,
    )
