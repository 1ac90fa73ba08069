"""Featurizing the rows of a source: in parallel chunks, keeping every row's outcome."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from molgraph.errors import FeaturizationError
from molgraph.featurize import Featurizer
from molgraph.packed import PackedGraphs

_CHUNK = 1024
_MIN_CHUNK = 32


def featurize_all(
    featurizer: Featurizer,
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
    cores = num_workers or available_cores()
    # at least four chunks per process, so slow items (conformers) spread over all of them
    chunk_size = max(_MIN_CHUNK, min(chunk_size, math.ceil(len(items) / (4 * cores))))
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    workers = min(cores, len(chunks))
    bar = tqdm(total=len(items), unit=unit, desc="featurizing", disable=not progress)
    parts, errors = [], []
    with contextlib.ExitStack() as stack:
        stack.enter_context(bar)
        results: Iterator[tuple[dict[str, np.ndarray], list[FeaturizationError | None]]]
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
    packed = [PackedGraphs.from_arrays(a) for a in parts if a.num_graphs]
    return (PackedGraphs.concat(packed) if packed else None), errors


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def featurize_rows(
    featurizer: Featurizer,
    items: Sequence[Any],
    refused: Mapping[int, str],
    num_workers: int | None = None,
    progress: bool = True,
    unit: str = "mol",
) -> tuple[PackedGraphs | None, np.ndarray, dict[int, str]]:
    """Featurize the item of every row not already ``refused`` (row → reason).

    Returns
    -------
    graphs
        The graphs of the kept rows, in row order (None if no row was kept).
    kept
        ``[G]`` int64, the rows that have a graph.
    failed
        The reason of every row without a graph: ``refused`` and the featurizer's errors.
    """
    candidates = [i for i in range(len(items)) if i not in refused]
    graphs, errors = featurize_all(
        featurizer, [items[i] for i in candidates], num_workers, progress, unit=unit
    )
    failed = dict(refused)
    for row, error in zip(candidates, errors, strict=True):
        if error is not None:
            failed[row] = error.reason
    kept = np.array([i for i, e in zip(candidates, errors, strict=True) if e is None], np.int64)
    return graphs, kept, failed
