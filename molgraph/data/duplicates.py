"""Identical items in a dataset: found by canonical SMILES (sequences as they are),
counted, with conflicting targets reported, and kept in one part of every split."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from rdkit import Chem, rdBase

from molgraph.data.splits import SplitIndices
from molgraph.types import ItemName

log = logging.getLogger(__name__)
_PARTS = ("train", "val", "test")


def identity_keys(items: Sequence[str], item_name: ItemName) -> np.ndarray:
    """Group number of each item: items with one canonical isomeric SMILES (molecules)
    or one sequence (proteins) share it; numbered in order of first appearance. A SMILES
    RDKit cannot parse is its own key."""
    if item_name == "smiles":
        with rdBase.BlockLogs():
            mols = [Chem.MolFromSmiles(s) for s in items]
        keys = [s if m is None else Chem.MolToSmiles(m) for s, m in zip(items, mols, strict=True)]
    else:
        keys = list(items)
    first: dict[str, int] = {}
    return np.array([first.setdefault(k, len(first)) for k in keys], dtype=np.int64)


def report_duplicates(
    groups: np.ndarray, y: np.ndarray, items: Sequence[str], row_ids: np.ndarray
) -> tuple[int, int, int]:
    """Log (a warning) how many items occur more than once and how many of those carry
    conflicting targets, with the first conflict's rows; returns (repeated items, rows
    holding them, items with conflicting targets)."""
    counts = np.bincount(groups) if len(groups) else np.zeros(0, dtype=np.int64)
    repeated = np.flatnonzero(counts > 1)
    if not len(repeated):
        return 0, 0, 0
    conflicts = [g for g in repeated if _conflicting(y[groups == g])]
    rows = int(counts[repeated].sum())
    message = (f"{len(repeated)} item(s) occur more than once ({rows} rows; identical "
               "items are kept in one part of the split)")  # fmt: skip
    if conflicts:
        members = np.flatnonzero(groups == conflicts[0])
        example = ", ".join(f"row {row_ids[i]} {items[i]!r} {y[i].tolist()}" for i in members[:3])
        message += f"; {len(conflicts)} with conflicting targets, e.g. {example}"
    log.warning(message)
    return len(repeated), rows, len(conflicts)


def _conflicting(labels: np.ndarray) -> bool:
    """Whether some target has two different labels among these rows (NaN = none)."""
    for column in labels.T:
        present = column[~np.isnan(column)]
        if len(np.unique(present)) > 1:
            return True
    return False


def keep_together(split: SplitIndices, groups: np.ndarray) -> tuple[SplitIndices, int]:
    """``split`` with every group of identical items in one part: the part of the group's
    first item (in dataset order), so a random split's expected part sizes are kept (a
    majority rule would favour train). Returns the split and how many items moved; a
    split that keeps groups together comes back unchanged."""
    part_of = np.full(len(groups), -1)
    for p, name in enumerate(_PARTS):
        part_of[getattr(split, name)] = p
    placed = np.flatnonzero(part_of >= 0)
    first: dict[int, int] = {}
    target = np.array([first.setdefault(int(groups[i]), int(part_of[i])) for i in placed])
    moved = int((part_of[placed] != target).sum()) if len(placed) else 0
    if not moved:
        return split, 0
    part_of[placed] = target
    return SplitIndices(*(np.flatnonzero(part_of == p) for p in range(3))), moved
