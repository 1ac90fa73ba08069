"""Byte plumbing and sniffing for streamed inputs (:mod:`molgraph.data.stream`).

Counted byte streams of a file or of standard input, a bounded sample of their first
bytes, its decoding, and what the sample says: the kind of input and a table's delimiter.
Every failure is an :class:`~molgraph.errors.InputError` naming the input.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

from rdkit import Chem, rdBase

from molgraph.errors import InputError

Kind = Literal["table", "smi", "sdf"]
STDIN = "-"
SAMPLE_BYTES = 64 * 1024
SAMPLE_ROWS = 200
MAX_LINE_BYTES = 1 << 20  # a sample is completed to its line end, up to this many bytes
DELIMITERS = (",", "\t", ";")
DELIMITER_NAMES = {",": "','", "\t": "tab", ";": "';'"}
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


class ByteTap(io.RawIOBase):
    """A readable raw stream: ``head``, then ``tail``; counts the bytes handed out and, with
    ``record``, keeps those taken from ``tail``."""

    def __init__(self, head: bytes, tail: BinaryIO, own: bool, record: bool = False) -> None:
        self._head = memoryview(head)
        self._tail = tail
        self._own = own
        self._read = getattr(tail, "read1", tail.read)
        self.consumed = 0
        self.recorded: bytearray | None = bytearray() if record else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if len(self._head):
            n = min(len(view), len(self._head))
            view[:n], self._head = self._head[:n], self._head[n:]
        else:
            data = self._read(len(view))
            n = len(data)
            view[:n] = data
            if self.recorded is not None:
                self.recorded += data
        self.consumed += n
        return n

    def close(self) -> None:
        if self._own and not self.closed:
            self._tail.close()
        super().close()


@contextmanager
def open_bytes(
    path: str, head: bytes = b"", record: bool = False
) -> Iterator[tuple[io.BufferedReader[ByteTap], ByteTap]]:
    """The bytes of a file, or of standard input (``"-"``) after ``head``, buffered; with
    ``record``, the tap keeps what it takes from standard input."""
    if path == STDIN:
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:
            raise InputError(STDIN, "standard input is closed or not a byte stream")
        tap = ByteTap(head, buffer, own=False, record=record)
    else:
        try:
            tap = ByteTap(b"", open(path, "rb"), own=True)  # closed with the reader
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        except OSError as error:
            raise InputError(path, f"cannot be opened: {error.strerror}") from None
    raw = io.BufferedReader(tap)
    try:
        yield raw, tap
    finally:
        raw.close()


def decompressed(raw: io.BufferedIOBase, compression: str | None) -> io.BufferedIOBase:
    """``raw`` as read through gzip when ``compression`` is ``"gzip"``."""
    return gzip.GzipFile(fileobj=raw, mode="rb") if compression == "gzip" else raw


def read_sample(path: str, stream: io.BufferedIOBase) -> tuple[bytes, bool]:
    """The first ``SAMPLE_BYTES`` of ``stream`` cut after a line end (all of a smaller
    input), and whether that is all of it; ``path`` is named in errors."""
    try:
        data = bytearray()
        while len(data) < SAMPLE_BYTES and (block := stream.read(SAMPLE_BYTES - len(data))):
            data += block
        if len(data) < SAMPLE_BYTES:
            return bytes(data), True
        data += stream.readline(MAX_LINE_BYTES)
        if not stream.read(1):
            return bytes(data), True
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(path, f"cannot be read: {error}") from None
    end = data.rfind(b"\n")
    if end < 0:
        raise InputError(path, f"has no line break in its first {len(data):,} bytes; is it text?")
    return bytes(data[: end + 1]), False


def decode_sample(path: str, sample: bytes, compression: str | None) -> str:
    """``sample`` as UTF-8 text (a leading byte order mark dropped), or an `InputError`
    giving the offset of the first byte that is not UTF-8 and how to re-encode."""
    body = sample.removeprefix(UTF8_BOM)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        at = len(sample) - len(body) + error.start
        raise InputError(path, not_utf8(path, sample[at], at, compression)) from None


def not_utf8(path: str, byte: int, at: int, compression: str | None) -> str:
    """The reason for byte value ``byte`` at offset ``at`` that is not UTF-8."""
    where = f"{at} of the decompressed data" if compression else str(at)
    hint = recode_hint(path, compression)
    return f"is not UTF-8 text (byte 0x{byte:02x} at offset {where}); {hint}"


def recode_hint(path: str, compression: str | None) -> str:
    """How to re-encode the input as UTF-8 (assuming Latin-1, the usual culprit)."""
    name = "input.csv" if path == STDIN else Path(path).name.removesuffix(".gz")
    iconv = "iconv -f latin1 -t utf-8"
    command = f"gunzip -c {path} | {iconv}" if compression else f"{iconv} {path}"
    return f"re-encode it as UTF-8, e.g. {command} > utf8-{name}"


def sniff_kind(text: str) -> Kind:
    """SDF if a line is ``$$$$``; a table if the first line has a delimiter and does not
    start with a SMILES (``CCO<tab>name`` is a SMILES line); else SMILES lines."""
    lines = text.splitlines()
    if any(line.rstrip() == "$$$$" for line in lines):
        return "sdf"
    header = next((line for line in lines if line.strip()), "")
    if not any(d in header for d in DELIMITERS):
        return "smi"
    first = header.replace(",", " ").replace(";", " ").split()
    with rdBase.BlockLogs():
        starts_with_smiles = bool(first) and Chem.MolFromSmiles(first[0]) is not None
    return "smi" if starts_with_smiles else "table"


def choose_separator(text: str, named: str | None) -> str:
    """The delimiter of the table whose first rows are ``text``.

    ``named`` (the suffix's, None for standard input) unless it leaves the header one
    column while another of `DELIMITERS` (the ``csv.Sniffer``'s guess tried first) splits
    the header and the first `SAMPLE_ROWS` rows into the same number (> 1) of fields.
    When none does, ``named``, else the delimiter giving the widest header.
    """
    head = "\n".join(text.splitlines()[: SAMPLE_ROWS + 1])
    if named is not None and _widths(head, named)[0] > 1:
        return named
    try:
        sniffed = [csv.Sniffer().sniff(head[:8192], delimiters="".join(DELIMITERS)).delimiter]
    except csv.Error:
        sniffed = []
    for delimiter in dict.fromkeys([*sniffed, *DELIMITERS]):
        widths = _widths(head, delimiter)
        if widths[0] > 1 and len(set(widths)) == 1:
            return delimiter
    return named or max(DELIMITERS, key=lambda d: _widths(head, d)[0])


def _widths(text: str, delimiter: str) -> list[int]:
    """Fields per non-blank row of ``text`` split by ``delimiter``, header first (``[0]``
    when it cannot be split)."""
    try:
        rows = csv.reader(io.StringIO(text), delimiter=delimiter)
        return [len(row) for row in rows if row] or [0]
    except csv.Error:
        return [0]
