"""Reading the tables of data sources: columns, labels, refused rows, file content."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from molgraph.errors import ConfigError, MolgraphError
from molgraph.types import TaskKind


class LabelledSource(Protocol):
    """A source's file and the columns it reads as targets."""

    @property
    def path(self) -> str: ...

    @property
    def target_columns(self) -> Sequence[str]: ...

    @property
    def task(self) -> TaskKind: ...


def check_labels_source(source: LabelledSource) -> None:
    """Freeze a data source's ``target_columns`` to a tuple and check them and its
    ``task`` (call from a frozen dataclass's ``__post_init__``).

    Raises
    ------
    ConfigError
        An unknown task, or no target column.
    """
    object.__setattr__(source, "target_columns", tuple(source.target_columns))
    if source.task not in ("regression", "classification"):
        raise ConfigError(f"task must be regression or classification, got {source.task!r}")
    if not source.target_columns:
        raise ConfigError(f"{source.path}: no target columns given")


def read_table(path: str | Path, columns: Sequence[str], text: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV (``.csv`` or ``.csv.gz``) that must hold ``columns``; ``text`` columns are
    read as strings, empty cells as NaN.

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


def labels_of(table: pd.DataFrame, source: LabelledSource) -> tuple[np.ndarray, dict[int, str]]:
    """Targets as float ``[n, T]`` (NaN = missing) and the reason each refused row (a
    cell that is not a number, or not 0/1 for classification) is refused, by row."""
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


def failures_table(failed: Mapping[int, str], names: Sequence[str], column: str) -> pd.DataFrame:
    """The failed rows as a table ``row, <column>, reason`` sorted by row, where
    ``names[row]`` is what the row held (its SMILES, file or variant)."""
    return pd.DataFrame(
        [(row, names[row], failed[row]) for row in sorted(failed)],
        columns=["row", column, "reason"],
    )


def hash_file(path: Path, digest: Any) -> None:
    """Feed the bytes of ``path`` into ``digest`` (a hashlib object)."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def file_stem(path: str | Path) -> str:
    """A file's name up to its first dot (``labels`` for ``labels.csv.gz``)."""
    name = Path(path).name
    return name.split(".")[0] or name
