"""Closed string choices shared across the package (a leaf: imports nothing of molgraph)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

#: What a dataset's targets are: real values, or binary 0/1 labels per target.
TaskKind = Literal["regression", "classification"]
TASK_KINDS: tuple[TaskKind, ...] = ("regression", "classification")

#: A run's task as configs give it: one kind for every target, one per target in the
#: order of the target columns, or a mapping from target column to kind.
TaskKinds = TaskKind | Sequence[TaskKind] | Mapping[str, TaskKind]

#: The column a dataset's items are written under: SMILES strings or residue sequences.
ItemName = Literal["smiles", "sequence"]


def task_kinds(task: TaskKinds, names: Sequence[str]) -> tuple[TaskKind, ...]:
    """One kind per target of ``names``, from any form of :data:`TaskKinds`.

    Raises
    ------
    ValueError
        An unknown kind, a list of the wrong length, or a mapping whose keys are not the
        target names.
    """
    if isinstance(task, str):
        kinds = (task,) * len(names)
    elif isinstance(task, Mapping):
        if set(task) != set(names):
            raise ValueError(f"task maps {sorted(task)} but the targets are {list(names)}")
        kinds = tuple(task[name] for name in names)
    else:
        kinds = tuple(task)
        if len(kinds) != len(names):
            raise ValueError(
                f"task lists {len(kinds)} kinds for {len(names)} targets {list(names)}"
            )
    unknown = [k for k in (task,) if isinstance(k, str)] + list(kinds)
    for kind in unknown:
        if kind not in TASK_KINDS:
            raise ValueError(f"task kind must be regression or classification, got {kind!r}")
    return kinds  # type: ignore[return-value]


def compact_kinds(kinds: Sequence[TaskKind]) -> TaskKind | tuple[TaskKind, ...]:
    """A task's stored form: one kind when every target has it, else the tuple."""
    return kinds[0] if kinds and len(set(kinds)) == 1 else tuple(kinds)


__all__ = ["TASK_KINDS", "ItemName", "TaskKind", "TaskKinds", "compact_kinds", "task_kinds"]
