"""Train/validation/test splits of a dataset's items.

Every splitter is a frozen dataclass called as ``splitter(items, labels, row_ids,
table=None)`` and returns :class:`SplitIndices`: positions into the dataset, not CSV row
numbers. Items are SMILES or sequences; ``table`` holds a dataset's other per-item
columns, read by the splitters that split on them (:class:`ColumnSplit`,
:class:`MutationCountSplit`). Part sizes come from one rule shared by the fraction
splitters (:func:`part_sizes`), and all randomness is drawn from
``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from molgraph.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "IndexFileSplit",
    "KFoldSplit",
    "RandomSplit",
    "SplitIndices",
    "Splitter",
    "StratifiedSplit",
    "part_sizes",
]

_PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitIndices:
    """Positions of the train, validation and test items.

    Parameters
    ----------
    train, val, test
        Positions into the dataset, shape ``[n_part]``; stored as int64, sorted ascending.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        for name in _PARTS:
            part = np.asarray(getattr(self, name))
            if part.ndim != 1:
                raise ConfigError(f"split part {name!r} must be 1-D, got shape {part.shape}")
            object.__setattr__(self, name, np.sort(part.astype(np.int64)))

    def save(self, path: str | Path, row_ids: np.ndarray) -> None:
        """Write the split as JSON ``{"train": [...], "val": [...], "test": [...]}``.

        The file holds ``row_ids[positions]`` (the CSV row numbers of the items), so it is
        readable by a person and stays valid if the dataset drops failed rows.

        Parameters
        ----------
        path
            File to write.
        row_ids
            Row id of each dataset item, shape ``[n_items]``.
        """
        row_ids = np.asarray(row_ids)
        record = {name: row_ids[getattr(self, name)].tolist() for name in _PARTS}
        Path(path).write_text(json.dumps(record))

    @classmethod
    def load(
        cls, path: str | Path, row_ids: np.ndarray, skip_missing: bool = False
    ) -> SplitIndices:
        """Read a file written by :meth:`save`, mapping row ids back to positions.

        Parameters
        ----------
        path
            JSON file with keys ``train``, ``val``, ``test``.
        row_ids
            Row id of each dataset item, shape ``[n_items]``; must be unique.
        skip_missing
            Leave out (with a warning naming them) row ids the dataset lacks, such as the
            molecules another featurizer could not embed, instead of raising.

        Raises
        ------
        ConfigError
            The file lacks a part, ``row_ids`` repeats an id, or the file names row ids
            that are not in ``row_ids``.
        """
        record = json.loads(Path(path).read_text())
        missing = [name for name in _PARTS if name not in record]
        if missing:
            raise ConfigError(f"split file {str(path)!r} lacks part(s) {missing}")
        position = {int(r): i for i, r in enumerate(np.asarray(row_ids).tolist())}
        if len(position) != len(row_ids):
            raise ConfigError("row_ids must be unique to map a split file onto positions")
        unknown = [r for name in _PARTS for r in record[name] if r not in position]
        if unknown and skip_missing:
            log.warning(
                "split file %s: %d row id(s) not in the dataset left out: %s",
                path, len(unknown), sorted(unknown),
            )  # fmt: skip
        elif unknown:
            shown = sorted(set(unknown))
            raise ConfigError(
                f"split file {str(path)!r} names {len(shown)} row id(s) not in the dataset: "
                f"{shown[:20]}{' ...' if len(shown) > 20 else ''}"
            )
        parts = {name: [position[r] for r in record[name] if r in position] for name in _PARTS}
        return cls(**parts)


class Splitter(Protocol):
    """What every splitter is: a callable from the dataset's items to a split.

    ``items`` (SMILES or sequences), ``labels`` ``[n, T]`` and ``row_ids`` ``[n]`` describe
    the items; ``table`` holds the dataset's other per-item columns (one row per item, in
    order) for splitters that split on them, or None where the dataset has none.
    """

    def __call__(
        self,
        items: Sequence[str],
        labels: np.ndarray,
        row_ids: np.ndarray,
        /,
        table: pd.DataFrame | None = None,
    ) -> SplitIndices: ...


def _count(fraction: float, n_items: int) -> int:
    """``round(fraction * n_items)``: Python's round, halves to even."""
    return round(float(fraction) * n_items)


def part_sizes(sizes: tuple[float, float, float], n_items: int) -> tuple[int, int, int]:
    """Item counts of the three parts.

    ``train = round(f_train * n)``, ``val = round(f_val * n)`` (Python's round,
    halves to even; val capped at what train leaves) and ``test`` is the rest, so the
    counts always sum to ``n``.
    """
    n_train = _count(sizes[0], n_items)
    n_val = min(_count(sizes[1], n_items), n_items - n_train)
    return n_train, n_val, n_items - n_train - n_val


def _check_sizes(sizes: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in sizes)
    if (
        len(values) != 3
        or not all(math.isfinite(f) and f >= 0 for f in values)
        or abs(sum(values) - 1.0) > 1e-6
    ):
        raise ConfigError(
            f"split sizes must be three non-negative fractions summing to 1, got {tuple(sizes)}"
        )
    return values  # type: ignore[return-value]


def _check_val_fraction(fraction: float) -> None:
    if not 0 <= fraction < 1:
        raise ConfigError(f"val_fraction must lie in [0, 1), got {fraction}")


def _n_items(smiles: Sequence[str], labels: np.ndarray, row_ids: np.ndarray) -> int:
    n = len(row_ids)
    if len(smiles) != n or len(labels) != n:
        raise ConfigError(
            f"smiles, labels and row_ids differ in length: {len(smiles)}, {len(labels)}, {n}"
        )
    return n


def _cut(order: np.ndarray, sizes: tuple[float, float, float]) -> SplitIndices:
    """Cut an ordering of all items into consecutive parts of :func:`part_sizes`."""
    n_train, n_val, _ = part_sizes(sizes, len(order))
    return SplitIndices(order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])


@dataclass(frozen=True)
class _FractionSplit:
    """Shared fields of the splitters that cut by fractions."""

    sizes: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", _check_sizes(self.sizes))


@dataclass(frozen=True)
class RandomSplit(_FractionSplit):
    """Items shuffled with the seed and cut into parts of :func:`part_sizes`.

    Parameters
    ----------
    sizes
        Fractions of (train, val, test); non-negative, summing to 1.
    seed
        Seed of the shuffle.
    """

    def __call__(
        self,
        smiles: Sequence[str],
        labels: np.ndarray,
        row_ids: np.ndarray,
        table: pd.DataFrame | None = None,
    ) -> SplitIndices:
        n = _n_items(smiles, labels, row_ids)
        return _cut(np.random.default_rng(self.seed).permutation(n), self.sizes)


@dataclass(frozen=True)
class StratifiedSplit(_FractionSplit):
    """Random split that keeps the class ratios of one task in every part.

    Each stratum (a class of ``labels[:, task]``; missing labels form their own) is
    shuffled with the seed. The strata are then interleaved in proportion to their size
    (the ``i``-th of ``m`` items of a stratum sits at ``(i + 0.5) / m``) and the merged
    order is cut into parts of :func:`part_sizes`. So every part holds exactly its
    declared count, and each stratum's count in a part is within about one item of its
    share.

    Parameters
    ----------
    sizes
        Fractions of (train, val, test); non-negative, summing to 1.
    seed
        Seed of the shuffles.
    task
        Column of ``labels`` (shape ``[n_items, n_tasks]``) whose classes are kept.
    """

    task: int = 0

    def __call__(
        self,
        smiles: Sequence[str],
        labels: np.ndarray,
        row_ids: np.ndarray,
        table: pd.DataFrame | None = None,
    ) -> SplitIndices:
        n = _n_items(smiles, labels, row_ids)
        labels = np.asarray(labels, dtype=float)
        if labels.ndim != 2 or not 0 <= self.task < labels.shape[1]:
            raise ConfigError(
                f"task {self.task} is not a column of labels with shape {labels.shape}"
            )
        column = labels[:, self.task]
        missing = np.isnan(column)
        _, stratum = np.unique(np.where(missing, 0.0, column), return_inverse=True)
        stratum = np.where(missing, -1, stratum)
        rng = np.random.default_rng(self.seed)
        place = np.empty(n)
        for s in np.unique(stratum):
            members = rng.permutation(np.flatnonzero(stratum == s))
            place[members] = (np.arange(len(members)) + 0.5) / len(members)
        # Random tie-break so equal places across strata do not favour one stratum.
        order = np.lexsort((rng.random(n), place))
        return _cut(order, self.sizes)


@dataclass(frozen=True)
class KFoldSplit:
    """Fold ``fold`` of ``k`` is the test part; val is drawn from the other folds.

    Items are shuffled with the seed and cut into ``k`` folds whose sizes differ by at
    most one (the first ``n % k`` folds hold one more). From the items outside the test
    fold, ``round(val_fraction * n_items)`` are drawn with the same generator as
    val; the rest are train. For one seed, the ``k`` test folds are disjoint and cover
    every item.

    Parameters
    ----------
    k
        Number of folds, at least 2.
    fold
        Which fold is the test part, ``0 <= fold < k``.
    seed
        Seed of the fold assignment and of the val draw.
    val_fraction
        Fraction of all items that go to val, ``0 <= val_fraction < 1``.
    """

    k: int = 5
    fold: int = 0
    seed: int = 0
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.k < 2 or not 0 <= self.fold < self.k:
            raise ConfigError(
                f"k-fold needs k >= 2 and 0 <= fold < k, got k={self.k}, fold={self.fold}"
            )
        _check_val_fraction(self.val_fraction)

    def __call__(
        self,
        smiles: Sequence[str],
        labels: np.ndarray,
        row_ids: np.ndarray,
        table: pd.DataFrame | None = None,
    ) -> SplitIndices:
        n = _n_items(smiles, labels, row_ids)
        if n < self.k:
            raise ConfigError(f"{self.k} folds need at least {self.k} items, got {n}")
        rng = np.random.default_rng(self.seed)
        folds = np.array_split(rng.permutation(n), self.k)
        test = folds[self.fold]
        rest = np.concatenate([f for i, f in enumerate(folds) if i != self.fold])
        n_val = _count(self.val_fraction, n)
        if n_val > len(rest):
            raise ConfigError(
                f"val_fraction {self.val_fraction} asks for {n_val} items, "
                f"but only {len(rest)} lie outside the test fold"
            )
        rest = rng.permutation(rest)
        return SplitIndices(rest[n_val:], rest[:n_val], test)


@dataclass(frozen=True)
class IndexFileSplit:
    """The split stored in a file written by :meth:`SplitIndices.save`.

    Parameters
    ----------
    path
        JSON file of row ids per part.
    skip_missing
        Leave out, with a warning, rows the dataset lacks (see :meth:`SplitIndices.load`).
    """

    path: str
    skip_missing: bool = False

    def __call__(
        self,
        smiles: Sequence[str],
        labels: np.ndarray,
        row_ids: np.ndarray,
        table: pd.DataFrame | None = None,
    ) -> SplitIndices:
        _n_items(smiles, labels, row_ids)
        return SplitIndices.load(self.path, row_ids, self.skip_missing)
