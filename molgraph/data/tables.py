"""Reading the tables of data sources: columns, labels, refused rows, file content."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from molgraph.data.sniffing import (
    choose_separator,
    decode_sample,
    decompressed,
    not_utf8,
    open_bytes,
    read_sample,
)
from molgraph.errors import ConfigError, InputError, MolgraphError
from molgraph.types import TaskKinds, compact_kinds, task_kinds

log = logging.getLogger(__name__)
#: Largest magnitude a target may have: targets are trained as float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class LabelledSource(Protocol):
    """A source's file and the columns it reads as targets."""

    @property
    def path(self) -> str: ...

    @property
    def target_columns(self) -> Sequence[str]: ...

    @property
    def task(self) -> TaskKinds: ...


def check_labels_source(source: LabelledSource) -> None:
    """Freeze a data source's ``target_columns`` to a tuple and check them and its
    ``task`` (call from a frozen dataclass's ``__post_init__``). A task given per target
    (a list in column order, or a mapping from column to kind) is stored as one kind when
    every target has it, else as a tuple in column order.

    Raises
    ------
    ConfigError
        An unknown task, a task that does not match the targets, or no target column.
    """
    object.__setattr__(source, "target_columns", tuple(source.target_columns))
    task = source.task
    try:
        kinds = task_kinds(task, source.target_columns)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source.path}: {exc}") from None
    if not source.target_columns:
        raise ConfigError(f"{source.path}: no target columns given")
    if not isinstance(task, str):
        object.__setattr__(source, "task", compact_kinds(kinds))


def read_table(path: str | Path, columns: Sequence[str], text: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV (``.csv`` or ``.csv.gz``) that must hold ``columns``; ``text`` columns are
    read as strings, empty cells as NaN.

    The delimiter is the suffix's (``,``; ``\t`` for ``.tsv``) unless the header says
    otherwise, as for prediction (a tab-separated file named ``.csv`` is read as one).

    Raises
    ------
    MolgraphError
        The file is missing, or lacks a column (the message lists those present).
    InputError
        The file is empty, has a header but no rows, or is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise MolgraphError(f"{path}: no such file")
    table = _read_csv(path, text)
    missing = [c for c in columns if c not in table]
    if missing:
        raise MolgraphError(
            f"{path}: missing column(s) {missing}; columns present: {list(table.columns)}"
        )
    return table


def _read_csv(path: Path, text: Sequence[str]) -> pd.DataFrame:
    compression = "gzip" if path.name.endswith(".gz") else None
    with open_bytes(str(path)) as (raw, _):
        sample, _whole = read_sample(str(path), decompressed(raw, compression))
    if not sample.strip():
        raise InputError(path, "is empty: expected a header line and one row per item")
    named = "\t" if ".tsv" in path.suffixes else ","
    separator = choose_separator(decode_sample(str(path), sample, compression), named)
    if separator != named:
        log.info("%s: read with delimiter %r, which its header uses", path, separator)
    try:
        table = pd.read_csv(path, sep=separator, dtype=dict.fromkeys(text, str),
                            keep_default_na=True)  # fmt: skip
    except UnicodeDecodeError as error:
        raise InputError(path, not_utf8(str(path), error.object[error.start], error.start,
                                        compression)) from None  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(path, f"cannot be read as a table: {str(error).strip()}") from None
    if table.empty:
        raise InputError(path, f"has a header ({', '.join(map(str, table.columns))}) but no rows")
    return table


def labels_of(table: pd.DataFrame, source: LabelledSource) -> tuple[np.ndarray, dict[int, str]]:
    """Targets as float ``[n, T]`` (NaN = missing) and the reason each refused row (a
    cell that is not a number, not finite in float32, or not 0/1 for a classification
    target) is refused, by row.

    Raises
    ------
    ConfigError
        A target column whose values contradict it: mostly text, or set to classification
        while most of its values are not 0/1 (see :func:`check_column_kind`).
    """
    kinds = task_kinds(source.task, source.target_columns)
    y = np.full((len(table), len(source.target_columns)), np.nan)
    bad: dict[int, str] = {}
    for t, (column, kind) in enumerate(zip(source.target_columns, kinds, strict=True)):
        raw = table[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        text = np.flatnonzero(np.isnan(values) & raw.notna().to_numpy())
        check_column_kind(source.path, column, kind, values, raw.iloc[text].tolist())
        for row in text:
            bad.setdefault(int(row), f"target {column!r} is not a number: {raw.iloc[row]!r}")
        for row in np.flatnonzero(np.abs(values) > FLOAT32_MAX):
            bad.setdefault(int(row), f"target {column!r} is not finite in float32: {values[row]:g}")
        if kind == "classification":
            for row in np.flatnonzero(~np.isnan(values) & ~np.isin(values, (0.0, 1.0))):
                bad.setdefault(int(row), f"target {column!r} is not a 0/1 label: {values[row]}")
        y[:, t] = values
    return y, bad


def check_column_kind(
    path: str, column: str, kind: str, values: np.ndarray, text: Sequence[Any]
) -> None:
    """Refuse a target column whose values contradict its kind; hint at classification
    for a regression column of 0/1 values.

    ``values`` are the column's numbers (NaN where empty or not a number); ``text`` the
    cells that are not numbers. A column is refused when more than half of its filled
    cells are text, or (classification) more than half of its numbers are not 0/1 or it
    holds two classes other than 0 and 1 (1/2, -1/1); fewer such cells are refused row by
    row.
    """
    numbers = values[~np.isnan(values)]
    if len(text) > len(numbers):
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(text))[:3])
        raise ConfigError(
            f"{path}: target column {column!r} holds text, not numbers ({len(text)} of "
            f"{len(text) + len(numbers)} filled cells, e.g. {shown}); targets must be numbers"
            + (" (0/1 for classification)" if kind == "classification" else "")
        )
    if kind == "classification":
        odd = numbers[~np.isin(numbers, (0.0, 1.0))]
        distinct = np.unique(numbers)
        if 2 * len(odd) > len(numbers) or (len(distinct) == 2 and len(odd)):
            advice = (f"its values are {distinct.tolist()}: recode them as 0/1"
                      if len(distinct) <= 10 else
                      f"it looks continuous ({len(distinct)} distinct values): "
                      "set its task to regression")  # fmt: skip
            raise ConfigError(
                f"{path}: target column {column!r} is set to classification, but "
                f"{len(odd)} of its {len(numbers)} values are not 0/1 labels; {advice}"
            )
    elif len(numbers) and np.isin(numbers, (0.0, 1.0)).all():
        log.warning("%s: target column %r holds only 0 and 1 but is set to regression; "
                    "for a binary label set its task to classification", path, column)  # fmt: skip


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
