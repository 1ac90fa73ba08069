"""A screening run's output, written as parts that each commit atomically.

Every chunk of input rows becomes one part file in ``.<output name>.parts/`` beside the
output (written under a temporary name, then renamed: a part exists whole or not at all);
``manifest.json`` records what the run computes (model, input, settings), so a rerun with
the same arguments resumes, and ``end.json`` the input's chunk and row counts once a
shard has read it to the end. :func:`merge` checks that every input row is present
exactly once and assembles the parts into the output, again under a temporary name that
is renamed when complete: a run that did not finish never leaves a file at the output
name.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from molgraph.errors import InputError

#: Output suffixes and the separator of their parts (None: parquet).
OUTPUT_FORMATS = {".csv": ",", ".tsv": "\t", ".parquet": None}
_PART = "chunk-{:07d}-{}{}"


@dataclass(frozen=True)
class OutputTarget:
    """Where results go: a file (``.csv``, ``.tsv``, ``.parquet``) or stdout (``-``)."""

    path: Path | None
    separator: str | None

    @classmethod
    def of(cls, output: str | Path) -> OutputTarget:
        """Checked before any work: a known suffix, a writable folder."""
        if str(output) == "-":
            return cls(None, ",")
        path = Path(output)
        suffix = path.suffix.lower()
        if suffix not in OUTPUT_FORMATS:
            raise InputError(path, f"unknown output suffix {suffix!r}: write "
                             f"{', '.join(OUTPUT_FORMATS)} or - (stdout)")  # fmt: skip
        if suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401  (only to say early that it is missing)
            except ImportError:
                raise InputError(path, "writing parquet needs pyarrow (pip install "
                                 "'molgraph[parquet]')") from None  # fmt: skip
        if path.parent.exists() and not path.parent.is_dir():
            raise InputError(path, f"{path.parent} is not a folder")
        return cls(path, OUTPUT_FORMATS[suffix])

    @property
    def suffix(self) -> str:
        return ".parquet" if self.separator is None else ".csv"

    @property
    def parts(self) -> Path:
        assert self.path is not None
        return self.path.parent / f".{self.path.name}.parts"


class Parts:
    """The parts folder of one output: which chunks are done, writing and merging them."""

    def __init__(self, target: OutputTarget) -> None:
        self.target = target
        self.folder = target.parts

    def open(self, manifest: dict[str, Any], restart: bool) -> None:
        """Start, or resume when the folder was written for the same ``manifest``."""
        recorded = self.folder / "manifest.json"
        if self.folder.exists() and (restart or not recorded.is_file()):
            shutil.rmtree(self.folder)
        if recorded.is_file() and json.loads(recorded.read_text()) != manifest:
            raise InputError(self.target.path, f"{self.folder} holds the parts of a run with other "
                             "arguments (model, input or chunk size): rerun with --restart to "
                             "discard them")  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(recorded, json.dumps(manifest, indent=1, sort_keys=True))

    def done(self) -> dict[int, int]:
        """Chunk index → rows, for every part written."""
        done = {}
        for path in self.folder.glob("chunk-*"):
            if path.name.endswith(self.target.suffix):
                _, index, rows = path.name[: -len(self.target.suffix)].split("-")
                done[int(index)] = int(rows)
        return done

    def write(self, index: int, table: pd.DataFrame) -> None:
        """Chunk ``index``'s output rows, committed in one rename."""
        path = self.folder / _PART.format(index, len(table), self.target.suffix)
        tmp = path.with_name(f".tmp-{path.name}")
        if self.target.separator is None:
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, sep=self.target.separator, index=False)
        os.replace(tmp, path)

    def finish_input(self, chunks: int, rows: int) -> None:
        """Record the input's size, as every shard reads it to its end."""
        _write_atomically(self.folder / "end.json", json.dumps({"chunks": chunks, "rows": rows}))

    @property
    def chunk_rows(self) -> int:
        return int(json.loads((self.folder / "manifest.json").read_text())["chunk_rows"])

    def missing(self) -> list[str]:
        """What keeps the parts from covering every input row exactly once ([] if nothing)."""
        if not (self.folder / "manifest.json").is_file():
            return [f"no parts of a screening run in {self.folder}"]
        chunk_rows, end = self.chunk_rows, self.folder / "end.json"
        if not end.is_file():
            return ["no shard has read the input to its end yet"]
        size = json.loads(end.read_text())
        done, problems = self.done(), []
        for index in range(size["chunks"]):
            expected = min(chunk_rows, size["rows"] - index * chunk_rows)
            if index not in done:
                problems.append(f"chunk {index} (rows {index * chunk_rows}-"
                                f"{index * chunk_rows + expected - 1}) is missing")  # fmt: skip
            elif done[index] != expected:
                problems.append(f"chunk {index} holds {done[index]} rows, not {expected}")
        extra = sorted(set(done) - set(range(size["chunks"])))
        problems += [f"chunk {index} lies beyond the input's end" for index in extra]
        return problems

    def merge(self) -> int:
        """Assemble the output from complete parts; returns its row count."""
        problems = self.missing()
        if problems:
            raise InputError(self.target.path, "cannot merge: " + "; ".join(problems[:5]) +
                             (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))  # fmt: skip
        files = [p for _, p in sorted(self._files().items())]
        path = self.target.path
        assert path is not None
        tmp = path.with_name(f".tmp-{path.name}")
        rows = _assemble(files, tmp, self.target.separator)
        os.replace(tmp, path)
        shutil.rmtree(self.folder)
        return rows

    def _files(self) -> dict[int, Path]:
        return {
            int(p.name.split("-")[1]): p for p in self.folder.glob(f"chunk-*{self.target.suffix}")
        }


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _assemble(files: list[Path], out: Path, separator: str | None) -> int:
    """Concatenate part files in order; columns that only some parts have (SD properties)
    are united, in order of first appearance."""
    if separator is None:
        return _assemble_parquet(files, out)
    headers = [_first_line(f) for f in files]
    if len(set(headers)) <= 1:  # the usual case: copy the bytes, one header
        rows = 0
        with open(out, "wb") as sink:
            for i, file in enumerate(files):
                with open(file, "rb") as source:
                    header = source.readline()
                    if i == 0:
                        sink.write(header)
                    shutil.copyfileobj(source, sink)
            rows = sum(int(f.name.split("-")[2].split(".")[0]) for f in files)
        return rows
    columns = list(dict.fromkeys(c for f in files for c in _read_part(f, separator, 0).columns))
    rows = 0
    for i, file in enumerate(files):
        for chunk in _chunks(file, separator):
            chunk.reindex(columns=columns).to_csv(out, sep=separator, index=False,
                                                  header=i == 0 and rows == 0, mode="a")  # fmt: skip
            rows += len(chunk)
    return rows


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.readline()


def _read_part(path: Path, separator: str, nrows: int | None = None) -> pd.DataFrame:
    return pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, nrows=nrows)


def _chunks(path: Path, separator: str) -> Iterator[pd.DataFrame]:
    yield from pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False,
                           chunksize=100_000)  # fmt: skip


def _assemble_parquet(files: list[Path], out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.unify_schemas([pq.read_schema(f) for f in files])
    rows = 0
    with pq.ParquetWriter(out, schema) as writer:
        for file in files:
            table = pq.read_table(file)
            for field in schema:
                if field.name not in table.column_names:
                    table = table.append_column(field, pa.nulls(len(table), field.type))
            writer.write_table(table.select(schema.names).cast(schema))
            rows += len(table)
    return rows
