"""Streaming molecule inputs for screening-scale prediction: checked first, read in chunks.

:func:`inspect_input` reads a bounded sample (64 KiB, completed to a line end) of a file or
of standard input and says what it is, or raises :class:`~molgraph.errors.InputError`
before any work. :func:`read_chunks` then yields the rows as :func:`molgraph.io.read_molecules`
reads them, a chunk at a time, so memory is bounded by the chunk size, not the library.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pandas as pd
from rdkit import Chem

import molgraph.io as molio
from molgraph.data import sniffing
from molgraph.data.sniffing import DELIMITER_NAMES, DELIMITERS, GZIP_MAGIC, STDIN, Kind
from molgraph.errors import InputError

Chunks = Iterator[pd.DataFrame]
SMILES = molio.SMILES_COLUMN
SKIP_STEP_ROWS = 10_000  # table rows parsed at a time while skipping
LINE_BATCH_BYTES = 1 << 20  # SMILES lines decoded at a time
# Met while reading past the sample: bytes that are not UTF-8, a malformed table row,
# a truncated or corrupt gzip stream.
READ_ERRORS = (UnicodeDecodeError, pd.errors.ParserError, OSError, EOFError, zlib.error)
# Suffix (without .gz) → kind and table separator; each may also end in .gz.
KINDS: dict[str, tuple[Kind, str | None]] = {
    **{s: ("table", sep) for s, sep in molio.TABLE_SEPARATORS.items() if not s.endswith(".gz")},
    **{s: ("smi", None) for s in molio.LINE_SUFFIXES},
    **{s.removesuffix(".gz"): ("sdf", None) for s in molio.SDF_SUFFIXES},
}
SUPPORTED_SUFFIXES = tuple(s + gz for s in KINDS for gz in ("", ".gz"))


class _StdinHead:
    """The bytes :func:`inspect_input` took from standard input, handed back once."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def take(self) -> bytes:
        if self._data is None:
            raise InputError(STDIN, "standard input was already read; it can be read only once")
        data, self._data = self._data, None
        return data


@dataclass(frozen=True)
class InputFormat:
    """What :func:`inspect_input` found an input to be.

    Parameters
    ----------
    path
        The file as given, or ``"-"`` for standard input.
    kind
        ``"table"`` (CSV/TSV), ``"smi"`` (``SMILES [whitespace id]`` per line) or ``"sdf"``.
    separator
        Tables only: the delimiter used (detected when the named one gives one column).
    compression
        ``"gzip"`` or None.
    smiles_column
        The input column holding SMILES (``"smiles"`` for SMILES and SD files).
    columns
        The input's columns: a table's header, ``("smiles", "id")`` for SMILES files, ``()``
        for SD files (their properties are found record by record).
    """

    path: str
    kind: Kind
    separator: str | None
    compression: Literal["gzip"] | None
    smiles_column: str
    columns: tuple[str, ...]
    # Standard input cannot be rewound: what inspection read is replayed before the rest.
    stdin_head: _StdinHead | None = field(default=None, repr=False, compare=False)


def inspect_input(path: str | Path, smiles_column: str | None = None) -> InputFormat:
    """Check an input before any work and describe it, reading only a bounded sample.

    Parameters
    ----------
    path
        A file (``.csv``, ``.tsv``, ``.smi``, ``.smiles``, ``.txt``, ``.sdf``, each optionally
        ``.gz``; case-insensitive) or ``"-"`` for standard input, whose kind (SDF if a line
        is ``$$$$``, a table if its header has a delimiter, else SMILES lines) and gzip
        compression are sniffed. A UTF-8 byte order mark is accepted.
    smiles_column
        Tables only: the SMILES column; detected as :func:`molgraph.io.read_molecules` does
        when omitted (from the first 200 rows).

    Raises
    ------
    InputError
        For a missing file, a directory, an empty file or a header without rows, bytes that
        are not UTF-8, an unsupported suffix, a named SMILES column that is absent (or given
        for a file that is not a table), or a table where no SMILES column is found.
    """
    path = str(path)
    if path == STDIN:
        return _inspect_stdin(smiles_column)
    if Path(path).is_dir():
        raise InputError(path, "is a directory, not a file of molecules")
    if not Path(path).exists():
        raise InputError(path, "no such file")
    kind, separator, compression = _kind_of(path)
    with sniffing.open_bytes(path) as (raw, _):
        head = raw.peek(2)[:2]
        if compression and head and head != GZIP_MAGIC:
            raise InputError(path, "is named .gz but is not gzip-compressed; drop the .gz")
        if not compression and head == GZIP_MAGIC:
            raise InputError(path, f"is gzip-compressed; name it {Path(path).name}.gz")
        sample, at_end = sniffing.read_sample(path, sniffing.decompressed(raw, compression))
    text = sniffing.decode_sample(path, sample, compression)
    return _described(path, kind, separator, compression, text, at_end, smiles_column)


def read_chunks(
    fmt: InputFormat, chunk_rows: int = 10_000, skip_rows: int = 0
) -> Iterator[pd.DataFrame]:
    """The input's rows, read lazily in consecutive chunks of at most ``chunk_rows``.

    Every row comes once, in input order, as :func:`molgraph.io.read_molecules` reads it:

    - tables: every column as strings (``""`` for empty cells; blank lines skipped) plus
      ``smiles``, a copy of the SMILES column when it has another name;
    - SMILES files: ``smiles`` and ``id``, one row per line, blank lines included;
    - SD files: one row per record, failed ones included: ``id``, the SD properties seen
      in that chunk, ``smiles``, ``mol`` (RDKit molecule or None), ``parse_error``.

    Each chunk's index is a ``pandas.RangeIndex`` of 0-based input row numbers (chunk ``k``
    starts at ``skip_rows + k * chunk_rows``), and ``chunk.attrs["bytes_read"]`` is how many
    bytes of the file (compressed ones for ``.gz``) or of standard input were consumed by
    then, a little ahead of the chunk's end (read buffers): with :func:`count_hint`, a
    progress bar's position.

    Parameters
    ----------
    fmt
        From :func:`inspect_input`; standard input can be read once.
    chunk_rows
        Rows per chunk (the last one may hold fewer).
    skip_rows
        Input rows skipped first, e.g. to resume; SMILES and SD records are not turned
        into rows (SD records are still parsed by RDKit to find their ends).

    Raises
    ------
    InputError
        While reading: bytes that are not UTF-8, a malformed table row, a broken gzip stream.
    """
    if chunk_rows < 1 or skip_rows < 0:
        raise ValueError(
            f"chunk_rows must be >= 1 and skip_rows >= 0, got {chunk_rows}, {skip_rows}"
        )
    return _chunks(fmt, chunk_rows, skip_rows)


def count_hint(fmt: InputFormat) -> int | None:
    """The input's size in bytes on disk (compressed for ``.gz``), or None for standard
    input: the total that ``chunk.attrs["bytes_read"]`` of :func:`read_chunks` reaches."""
    return None if fmt.path == STDIN else Path(fmt.path).stat().st_size


def _chunks(fmt: InputFormat, chunk_rows: int, skip_rows: int) -> Chunks:
    reader = {"table": _table_chunks, "smi": _line_chunks, "sdf": _sdf_chunks}[fmt.kind]
    start = skip_rows
    head = fmt.stdin_head.take() if fmt.stdin_head is not None else b""
    with sniffing.open_bytes(fmt.path, head) as (raw, tap):
        chunks = reader(fmt, sniffing.decompressed(raw, fmt.compression), chunk_rows, skip_rows)
        while True:
            try:
                chunk = next(chunks, None)
            except READ_ERRORS as error:
                raise InputError(fmt.path, _reading_failure(error, start, fmt)) from error
            if chunk is None:
                return
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            chunk.attrs["bytes_read"] = tap.consumed
            start += len(chunk)
            yield chunk


def _table_chunks(
    fmt: InputFormat, stream: io.BufferedIOBase, chunk_rows: int, skip_rows: int
) -> Chunks:
    options = {"sep": fmt.separator, "dtype": str, "keep_default_na": False}
    with pd.read_csv(stream, encoding="utf-8-sig", chunksize=chunk_rows, **options) as reader:
        while skip_rows > 0:
            try:
                skip_rows -= len(reader.get_chunk(min(skip_rows, SKIP_STEP_ROWS)))
            except StopIteration:
                return
        for table in reader:
            if fmt.smiles_column != SMILES:
                table[SMILES] = table[fmt.smiles_column]
            yield table


def _line_chunks(
    fmt: InputFormat, stream: io.BufferedIOBase, chunk_rows: int, skip_rows: int
) -> Chunks:
    rows: list[list[str]] = []
    offset = 0
    while lines := stream.readlines(LINE_BATCH_BYTES):  # whole lines: splits as on all text
        data = b"".join(lines)
        body = data.removeprefix(sniffing.UTF8_BOM) if offset == 0 else data
        try:
            parts = body.decode("utf-8").splitlines()  # as io.read_molecules splits
        except UnicodeDecodeError as error:
            at = len(data) - len(body) + error.start
            reason = sniffing.not_utf8(fmt.path, data[at], offset + at, fmt.compression)
            raise InputError(fmt.path, reason) from None
        offset += len(data)
        skipped = min(skip_rows, len(parts))
        skip_rows -= skipped
        for part in parts[skipped:]:
            rows.append([*part.strip().split(maxsplit=1), "", ""][:2])
            if len(rows) == chunk_rows:
                yield pd.DataFrame(rows, columns=[SMILES, "id"], dtype=str)
                rows = []
    if rows:
        yield pd.DataFrame(rows, columns=[SMILES, "id"], dtype=str)


def _sdf_chunks(
    fmt: InputFormat, stream: io.BufferedIOBase, chunk_rows: int, skip_rows: int
) -> Chunks:
    records: list[dict[str, object]] = []
    supplier = Chem.ForwardSDMolSupplier(stream, sanitize=True)
    for number, mol in enumerate(supplier, start=1):
        if number <= skip_rows:
            continue
        records.append(molio.sdf_record(mol, number))
        if len(records) == chunk_rows:
            yield molio.sdf_table(records)
            records = []
    if records:
        yield molio.sdf_table(records)


# --- inspection --------------------------------------------------------------------------


def _kind_of(path: str) -> tuple[Kind, str | None, Literal["gzip"] | None]:
    name = Path(path).name.lower()
    compression: Literal["gzip"] | None = "gzip" if name.endswith(".gz") else None
    base = name.removesuffix(".gz")
    for suffix, (kind, separator) in KINDS.items():
        if base.endswith(suffix):
            return kind, separator, compression
    raise InputError(
        path, f"unsupported file type; supported suffixes: {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _inspect_stdin(smiles_column: str | None) -> InputFormat:
    with sniffing.open_bytes(STDIN, record=True) as (raw, tap):
        try:
            compression: Literal["gzip"] | None = "gzip" if raw.peek(2)[:2] == GZIP_MAGIC else None
        except OSError as error:
            raise InputError(STDIN, f"standard input cannot be read: {error}") from None
        sample, at_end = sniffing.read_sample(STDIN, sniffing.decompressed(raw, compression))
        head = _StdinHead(bytes(tap.recorded or b""))
    text = sniffing.decode_sample(STDIN, sample, compression)
    kind = sniffing.sniff_kind(text)
    fmt = _described(STDIN, kind, None, compression, text, at_end, smiles_column)
    return replace(fmt, stdin_head=head)


def _described(
    path: str,
    kind: Kind,
    separator: str | None,
    compression: Literal["gzip"] | None,
    text: str,
    at_end: bool,
    smiles_column: str | None,
) -> InputFormat:
    if not text.strip():
        what = "standard input is empty" if path == STDIN else "is empty"
        raise InputError(path, what if not text else f"{what}: it holds only blank lines")
    if kind == "table":
        separator = sniffing.choose_separator(text, separator)
        columns, smiles_column = _table_columns(path, text, at_end, separator, smiles_column)
        return InputFormat(path, kind, separator, compression, smiles_column, columns)
    if smiles_column is not None:
        raise InputError(
            path,
            f"smiles_column={smiles_column!r} applies to CSV/TSV tables only, not to {kind} input",
        )
    columns = (SMILES, "id") if kind == "smi" else ()
    return InputFormat(path, kind, None, compression, SMILES, columns)


def _table_columns(
    path: str, text: str, at_end: bool, separator: str, smiles_column: str | None
) -> tuple[tuple[str, ...], str]:
    try:
        table = pd.read_csv(
            io.StringIO(text),
            sep=separator,
            dtype=str,
            keep_default_na=False,
            nrows=sniffing.SAMPLE_ROWS,
        )
    except pd.errors.ParserError as error:
        reason = f"cannot be read as a {DELIMITER_NAMES.get(separator, separator)}-separated table"
        raise InputError(path, f"{reason}: {error}") from None
    if table.empty and at_end:
        raise InputError(path, "has a header line but no data rows")
    hint = ""
    if len(table.columns) == 1 and any(d in table.columns[0] for d in DELIMITERS):
        hint = f" (no delimiter among {', '.join(DELIMITER_NAMES.values())} splits it evenly)"
    try:
        found = molio.resolve_smiles_column(table, smiles_column, path)
    except InputError as error:
        raise InputError(path, error.reason + hint) from None
    return tuple(str(c) for c in table.columns), found


def _reading_failure(error: Exception, start: int, fmt: InputFormat) -> str:
    """The reason for an error met while reading the rows from ``start`` on."""
    if isinstance(error, UnicodeDecodeError):
        hint = sniffing.recode_hint(fmt.path, fmt.compression)
        return f"is not UTF-8 text (a byte from input row {start} on); {hint}"
    return f"cannot be read from input row {start} on: {error}"
