"""The on-disk cache of featurized sources: one folder per content and settings.

A folder ``<cache_dir>/<stem>-<key>`` holds ``graphs.bin`` (the packed graphs, or a
variant scan's wild-type graph, with the labels, row ids and variant residue types),
``failures.csv`` (row, item, reason of every row without a graph) and, for sources that
keep their items as text, an items JSON file. The key hashes the content of the source's
files, its settings (featurizer included) and the source's format number, so any change
misses the cache; a folder is written under a temporary name and renamed, so a
half-written cache is never seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from molgraph import paths
from molgraph.data.tables import hash_file
from molgraph.data.variants import VariantGraphs
from molgraph.packed import PackedGraphs

log = logging.getLogger(__name__)

GRAPHS_FILE = "graphs.bin"
FAILURES_FILE = "failures.csv"


@dataclass(frozen=True)
class FeaturizedRows:
    """What a cache folder holds: the rows of a source that became graphs, and those
    that did not.

    Shapes
    ------
    y: ``[G, T]`` float32, NaN where a label is missing; row_ids: ``[G]`` int64, the
    0-based data row of each graph in the source's table; failures: one row per failed
    source row (``row``, the item's column, ``reason``); items: one string per graph, or
    None where the source derives them from the graphs.
    """

    graphs: PackedGraphs | VariantGraphs
    y: Tensor
    row_ids: np.ndarray
    failures: pd.DataFrame
    items: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CacheLayout:
    """How one kind of source stores its rows.

    Parameters
    ----------
    item_column
        The failures' column naming each row's item (``smiles``, ``file``, ``variant``),
        read back as text.
    items_file
        JSON file of the items, or None when they are derived from the graphs.
    type_columns
        ``(start, stop)`` residue one-hot columns for a scan's :class:`VariantGraphs`;
        None for packed graphs.
    """

    item_column: str
    items_file: str | None = None
    type_columns: tuple[int, int] | None = None


def cache_folder(
    cache_dir: str | Path | None,
    stem: str,
    files: Sequence[Path],
    settings: dict[str, Any],
    version: int,
    hash_names: bool = True,
) -> Path | None:
    """``cache_dir/<stem>-<key>`` (None without ``cache_dir``): the key is a hash of
    every file's content (preceded by its name when ``hash_names``), ``settings`` and
    the format ``version``."""
    if not cache_dir:
        return None
    digest = hashlib.sha256()
    for path in files:
        if hash_names:
            digest.update(path.name.encode())
        hash_file(path, digest)
    digest.update(json.dumps({"format": version, **settings}, sort_keys=True).encode())
    return Path(cache_dir).expanduser() / f"{stem}-{digest.hexdigest()[:20]}"


def write_atomically(folder: Path, write: Callable[[Path], None]) -> None:
    """``write(staging)`` fills a fresh folder that then becomes ``folder`` in one rename,
    so a half-written cache is never seen; if another process finished first, its
    folder is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    paths.remove_stale(folder.parent)  # left by killed writers (dead pid, or a day old)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=paths.staging_prefix()))
    write(staging)
    try:
        staging.rename(folder)  # atomic: a half-written cache is never seen
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)


def save_rows(folder: Path, rows: FeaturizedRows, layout: CacheLayout) -> None:
    """Write ``rows`` to ``folder`` atomically."""

    def write(staging: Path) -> None:
        labels = {"y": rows.y, "row_ids": torch.from_numpy(rows.row_ids)}
        graphs = rows.graphs
        if isinstance(graphs, VariantGraphs):
            labels["residue_types"] = graphs.residue_types
            graphs = graphs.wild_type
        graphs.save(staging / GRAPHS_FILE, labels)
        if layout.items_file is not None:
            (staging / layout.items_file).write_text(json.dumps(list(rows.items or ())))
        rows.failures.to_csv(staging / FAILURES_FILE, index=False)

    write_atomically(folder, write)


def load_rows(folder: Path, layout: CacheLayout) -> FeaturizedRows:
    """The rows :func:`save_rows` wrote to ``folder``."""
    graphs, labels = PackedGraphs.load(folder / GRAPHS_FILE)
    stored: PackedGraphs | VariantGraphs = graphs
    if layout.type_columns is not None:
        stored = VariantGraphs(graphs, labels["residue_types"], layout.type_columns)
    failures = pd.read_csv(
        folder / FAILURES_FILE, dtype={layout.item_column: str}, keep_default_na=False
    )
    items = None
    if layout.items_file is not None:
        items = tuple(json.loads((folder / layout.items_file).read_text()))
    return FeaturizedRows(stored, labels["y"], labels["row_ids"].numpy(), failures, items)


def load_or_build(
    name: str,
    folder: Path | None,
    build: Callable[[], FeaturizedRows],
    layout: CacheLayout,
) -> FeaturizedRows:
    """The rows cached in ``folder`` if it holds them, else ``build()`` (saved there when
    ``folder`` is given). Logs the counts of graphs and failed rows, and where the
    failures are listed."""
    if folder is not None and (folder / GRAPHS_FILE).is_file():
        rows = load_rows(folder, layout)
        log.info(
            "%s: loaded %d graphs from cache %s (%d failed rows, listed in %s there)",
            name, len(rows.graphs), folder, len(rows.failures), FAILURES_FILE,
        )  # fmt: skip
        return rows
    rows = build()
    if folder is not None:
        save_rows(folder, rows, layout)
    where = f"listed in {folder / FAILURES_FILE}" if folder else "see dataset.failures"
    graphs, failed = len(rows.graphs), len(rows.failures)
    log.info(
        "%s: %d rows → %d graphs, %d rows failed (%s)",
        name, graphs + failed, graphs, failed, where,
    )  # fmt: skip
    return rows
