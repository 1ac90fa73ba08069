"""ProteinGym's cross-validation schemes for mutational scans: random, modulo, contiguous.

ProteinGym (Notin et al. 2023) scores supervised models on a deep mutational scan with
five folds under three schemes:

- ``random``: each variant goes to a fold at random (folds differ in size by at most one).
- ``modulo``: the mutated positions, sorted, go to folds by rank modulo ``k`` (position
  ``p`` to fold ``p mod k`` where every position is mutated); a variant's fold is that
  of its positions.
- ``contiguous``: the sorted mutated positions are cut into ``k`` consecutive blocks.

With the position schemes, a test fold's positions are never mutated in its training
(and validation) variants. A multi-mutant whose positions lie in several folds is tested
in the fold of its first (lowest) position and left out of training for every fold its
positions touch; the wild type (no position) is tested in a seeded random fold. So every
variant is in exactly one test fold, and a fold's training set is the variants that touch
none of its positions and are not in its test part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from molgraph.data.mutations import parse_mutations
from molgraph.data.splits import SplitIndices, _check_val_fraction, _n_items
from molgraph.data.table_splits import _column
from molgraph.errors import ConfigError, FeaturizationError

Scheme = Literal["random", "modulo", "contiguous"]
SCHEMES = ("random", "modulo", "contiguous")


def variant_positions(variants: Sequence[str]) -> list[tuple[int, ...]]:
    """Mutated positions of each variant string, sorted (``()`` for the wild type).

    Raises
    ------
    ConfigError
        A variant string cannot be parsed (naming the row and the reason).
    """
    out = []
    for row, text in enumerate(variants):
        try:
            out.append(tuple(sorted(m.position for m in parse_mutations(text))))
        except FeaturizationError as error:
            raise ConfigError(f"fold assignment: row {row} {text!r}: {error.reason}") from None
    return out


def position_folds(positions: Sequence[int], scheme: Scheme, k: int) -> dict[int, int]:
    """Fold of each distinct position under ``modulo`` or ``contiguous``."""
    unique = np.unique(np.asarray(list(positions), dtype=np.int64))
    if len(unique) < k:
        raise ConfigError(
            f"{scheme} folds over positions: {len(unique)} mutated position(s) "
            f"{unique.tolist()} cannot fill {k} folds (use fewer folds or scheme=random)"
        )
    if scheme == "modulo":
        return {int(p): i % k for i, p in enumerate(unique)}
    blocks = np.array_split(unique, k)
    return {int(p): f for f, block in enumerate(blocks) for p in block}


def assign_folds(
    variants: Sequence[str], scheme: Scheme, k: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Test fold of every variant ``[V]`` int64, and ``[V, k]`` bool: which folds' positions
    each variant touches (all False under ``random``)."""
    if scheme not in SCHEMES:
        raise ConfigError(f"fold scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if k < 2:
        raise ConfigError(f"cross-validation needs k >= 2 folds, got {k}")
    n = len(variants)
    rng = np.random.default_rng(seed)
    touches = np.zeros((n, k), dtype=bool)
    if scheme == "random":
        fold = np.empty(n, dtype=np.int64)
        for f, part in enumerate(np.array_split(rng.permutation(n), k)):
            fold[part] = f
        return fold, touches
    positions = variant_positions(variants)
    folds = position_folds([p for ps in positions for p in ps], scheme, k)
    fold = rng.integers(0, k, size=n)  # the wild type's; every other row is set below
    for row, ps in enumerate(positions):
        if ps:
            fold[row] = folds[ps[0]]
            touches[row, [folds[p] for p in ps]] = True
    return fold, touches


@dataclass(frozen=True)
class ProteinGymFoldSplit:
    """Fold ``fold`` of ``k`` under a ProteinGym scheme is the test part (see the module
    docstring); val is ``round(val_fraction * n_train_candidates)`` variants drawn with
    the seed from the variants training may use, train is the rest of them.

    Parameters
    ----------
    scheme
        ``random``, ``modulo`` or ``contiguous``.
    k, fold
        Number of folds and the test fold, ``0 <= fold < k``.
    seed
        Seed of the random scheme's assignment, the wild type's fold and the val draw.
    val_fraction
        Fraction of the usable training variants held out for validation.
    column
        The dataset table's column of mutation strings (``mutant`` in ProteinGym files).
    """

    scheme: Scheme = "random"
    k: int = 5
    fold: int = 0
    seed: int = 0
    val_fraction: float = 0.1
    column: str = "mutant"

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigError(
                f"split.scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}"
            )
        if self.k < 2 or not 0 <= int(self.fold) < self.k:
            raise ConfigError(
                f"folds need k >= 2 and 0 <= fold < k, got k={self.k}, fold={self.fold}"
            )
        _check_val_fraction(self.val_fraction)

    def __call__(
        self,
        items: Sequence[str],
        labels: np.ndarray,
        row_ids: np.ndarray,
        table: pd.DataFrame | None = None,
    ) -> SplitIndices:
        n = _n_items(items, labels, row_ids)
        column = _column(table, self.column, n, f"ProteinGymFoldSplit({self.column!r})")
        variants = column.fillna("").astype(str).tolist()
        fold, touches = assign_folds(variants, self.scheme, self.k, self.seed)
        test = np.flatnonzero(fold == self.fold)
        usable = np.flatnonzero((fold != self.fold) & ~touches[:, self.fold])
        rng = np.random.default_rng(self.seed + 1)
        usable = rng.permutation(usable)
        n_val = round(self.val_fraction * len(usable))
        return SplitIndices(usable[n_val:], usable[:n_val], test)
