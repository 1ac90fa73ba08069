"""Screening-scale prediction: a library read in chunks, featurized in worker processes
while the model scores the chunk before, each chunk's rows committed as one part.

Memory is bounded by the chunk size and the look-ahead (``Scorer.lookahead`` chunks featurized
ahead of the one being scored), not by the library's size. Every input row comes out
once, in input order, with all its columns and its prediction or its error.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from molgraph.data.featurization import available_cores
from molgraph.data.stream import InputFormat, count_hint, inspect_input, read_chunks
from molgraph.errors import InputError
from molgraph.featurize import Featurizer
from molgraph.packed import PackedGraphs
from molgraph.screening.parts import OutputTarget, Parts

#: Graphs → values ``[n, width]``, and the names of the columns they fill.
Score = Callable[[PackedGraphs], np.ndarray]
_SUBCHUNK = 512  # items per worker task: small enough to spread a chunk over the cores


@dataclass(frozen=True)
class Shard:
    """This process's share of a library: chunks ``k`` with ``k % count == index``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise InputError("--shard", f"shard {self.index} of {self.count} does not exist")

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """``i/n``; ``auto``: a SLURM array task or a torchrun rank (else the whole library)."""
        if text is None:
            return cls()
        if text == "auto":
            env = os.environ
            for index, count in (("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
                                 ("RANK", "WORLD_SIZE")):  # fmt: skip
                if index in env and count in env:
                    return cls(int(env[index]), int(env[count]))
            return cls()
        try:
            index, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise InputError("--shard", f"{text!r}: give i/n (e.g. 0/4) or auto") from None
        return cls(index, count)

    def owns(self, chunk: int) -> bool:
        return chunk % self.count == self.index

    @staticmethod
    def device(device: str) -> str:
        """``cuda`` under torchrun: this rank's GPU (``cuda:$LOCAL_RANK``)."""
        rank = os.environ.get("LOCAL_RANK")
        return f"cuda:{rank}" if device == "cuda" and rank is not None else device


@dataclass(frozen=True)
class Summary:
    """What a run did, for its last line."""

    rows: int
    predicted: int
    failed: int
    seconds: float
    output: str

    def line(self, verb: str = "predicted") -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else float("nan")
        main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        each = f" (each worker ≤ {workers:,.0f} MB)" if workers else ""
        return (f"wrote {self.rows} rows to {self.output}: {self.predicted} {verb}, "
                f"{self.failed} failed (see 'error'); {rate:,.0f} rows/s; peak memory "
                f"{main:,.0f} MB{each}")  # fmt: skip


@dataclass(frozen=True)
class Scorer:
    """The values a run writes: ``score`` of each chunk's graphs into ``columns``."""

    columns: Sequence[str]
    score: Score
    fingerprint: str  # what the scores depend on (the weights), for resuming
    error_first: bool = False  # ``error`` before the score columns (embeddings: last)
    #: chunks featurized ahead while this scorer works: 0 on the CPU, where featurizing
    #: and scoring would share the cores (each phase uses them all in turn, measured
    #: faster on 2 cores), 2 on a GPU
    lookahead: int = 0


def screen(
    featurizer: Featurizer,
    scorer: Scorer,
    input_path: str,
    output: str | Path,
    *,
    smiles_column: str | None = None,
    chunk_rows: int = 10_000,
    workers: int | None = None,
    shard: Shard = Shard(),
    restart: bool = False,
    progress: bool = True,
) -> Summary:
    """Score every row of a molecule library (CSV/TSV/SMI/SDF, optionally gzipped, or
    ``-`` for stdin) into ``output`` (``.csv``, ``.tsv``, ``.parquet`` or ``-``).

    Inputs and output are checked before any work. A file output is resumable: rerun
    with the same arguments after a kill and it continues from the last committed chunk
    (``restart`` discards the parts instead). With ``shard``, this process scores its
    share of the chunks; the last shard to finish assembles the output (or run
    :func:`molgraph.screening.merge`).
    """
    fmt = inspect_input(input_path, smiles_column)
    target = OutputTarget.of(output)
    start = time.perf_counter()
    if target.path is None:
        counts = _to_stdout(featurizer, scorer, fmt, chunk_rows, workers, progress)
        return Summary(*counts, time.perf_counter() - start, "stdout")
    parts = Parts(target)
    parts.open(_manifest(fmt, scorer, chunk_rows, target), restart or input_path == "-")
    done = parts.done()
    counts = [0, 0, 0]
    bar = tqdm(total=count_hint(fmt), unit="B", unit_scale=True, desc="screening",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    with bar, _featurizing(featurizer, workers) as featurize:
        chunks = _owned_chunks(fmt, chunk_rows, shard, done, parts)
        for index, table, errors in _pipeline(featurize, chunks, scorer.lookahead):
            out = _scored(table, errors, scorer)
            parts.write(index, out)
            _count(counts, errors)
            bar.update(max(table.attrs.get("bytes_read", bar.n) - bar.n, 0))
            rate = counts[0] / (time.perf_counter() - start)
            bar.set_postfix_str(f"{counts[0]:,} rows, {rate:,.0f} rows/s")
    if shard.count == 1 or not parts.missing():  # the last shard to finish assembles
        parts.merge()
    return Summary(*counts, time.perf_counter() - start, str(target.path))


def _manifest(fmt: InputFormat, scorer: Scorer, chunk_rows: int, target: OutputTarget) -> dict:
    source = Path(fmt.path)
    stat = source.stat() if fmt.path != "-" else None
    return {
        "input": str(source.resolve()) if stat else "-",
        "input_bytes": stat.st_size if stat else None,
        "input_mtime_ns": stat.st_mtime_ns if stat else None,
        "smiles_column": fmt.smiles_column,
        "chunk_rows": chunk_rows,
        "columns": list(scorer.columns),
        "scorer": scorer.fingerprint,
        "output": target.suffix,
    }


def _owned_chunks(
    fmt: InputFormat, chunk_rows: int, shard: Shard, done: dict[int, int], parts: Parts
) -> Iterator[tuple[int, pd.DataFrame]]:
    """This shard's chunks not yet written, in order; records the input's size at its end.

    Full chunks already written at the start are skipped without being parsed."""
    prefix = 0
    while done.get(prefix) == chunk_rows:
        prefix += 1
    rows = prefix * chunk_rows
    for index, table in enumerate(read_chunks(fmt, chunk_rows, rows), prefix):
        rows += len(table)
        if shard.owns(index) and index not in done:
            yield index, table
    parts.finish_input(-(-rows // chunk_rows), rows)


def _pipeline(
    featurize: Callable[[list[Any]], AsyncResult | tuple],
    chunks: Iterator[tuple[int, pd.DataFrame]],
    lookahead: int,
) -> Iterator[tuple[int, pd.DataFrame, tuple]]:
    """Chunks with their featurization started ``lookahead`` chunks ahead of use."""
    pending: deque = deque()
    for index, table in chunks:
        items, refused = _items(table)
        usable = [i for i, e in enumerate(refused) if not e]
        tasks = [featurize([items[i] for i in usable[s : s + _SUBCHUNK]])
                 for s in range(0, len(usable), _SUBCHUNK)]  # fmt: skip
        pending.append((index, table, refused, usable, tasks))
        if len(pending) > lookahead:
            yield _collect(*pending.popleft())
    while pending:
        yield _collect(*pending.popleft())


def _items(table: pd.DataFrame) -> tuple[list[Any], list[str]]:
    """The featurizer's inputs (molecules from SDF, else SMILES) and each row's error so far."""
    if "mol" in table:
        return list(table["mol"]), list(table["parse_error"])
    return list(table["smiles"]), [""] * len(table)


def _collect(index: int, table: pd.DataFrame, refused: list[str], usable: list[int],
             tasks: list) -> tuple[int, pd.DataFrame, tuple]:  # fmt: skip
    parts, errors = [], list(refused)
    results = iter(usable)
    for task in tasks:
        arrays, task_errors = task.get() if isinstance(task, AsyncResult) else task
        parts.append(arrays)
        for error in task_errors:
            row = next(results)
            if error is not None:
                errors[row] = error.reason
    graphs = [PackedGraphs.from_arrays(a) for a in parts if a.num_graphs]
    packed = PackedGraphs.concat(graphs) if graphs else None
    return index, table, (packed, errors)


def _scored(table: pd.DataFrame, featurized: tuple, scorer: Scorer) -> pd.DataFrame:
    """The chunk's output rows: input columns, scores (NaN where none), ``error``."""
    graphs, errors = featurized
    values = np.full((len(table), len(scorer.columns)), np.nan, dtype=np.float32)
    if graphs is not None:
        values[[not e for e in errors]] = scorer.score(graphs)
    out = table.drop(columns=["mol", "parse_error"], errors="ignore").reset_index(drop=True)
    if scorer.error_first:
        out["error" if "error" not in out else "error_embed"] = errors
    names = [name if name not in out else f"{name}_pred" for name in scorer.columns]
    out = pd.concat([out, pd.DataFrame(values, columns=names)], axis=1)
    if not scorer.error_first:
        out["error" if "error" not in out else "error_pred"] = errors
    return out


def _count(counts: list[int], featurized: tuple) -> None:
    """Add a chunk's rows, predicted and failed to ``counts``."""
    failed = sum(1 for e in featurized[1] if e)
    counts[0] += len(featurized[1])
    counts[1] += len(featurized[1]) - failed
    counts[2] += failed


@contextlib.contextmanager
def _featurizing(featurizer: Featurizer, workers: int | None) -> Iterator[Callable]:
    """``featurize(items)``: a pending result from a pool of worker processes, or (one
    worker) the result itself, computed here."""
    workers = available_cores() if workers is None else workers
    if workers <= 1:
        yield featurizer.encode
        return
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        yield lambda items: pool.apply_async(featurizer.encode, (items,))


def _to_stdout(featurizer: Featurizer, scorer: Scorer, fmt: InputFormat, chunk_rows: int,
               workers: int | None, progress: bool) -> list[int]:  # fmt: skip
    counts, header = [0, 0, 0], None
    with _featurizing(featurizer, workers) as featurize:
        chunks = enumerate(read_chunks(fmt, chunk_rows))
        for _, table, featurized in _pipeline(featurize, chunks, scorer.lookahead):
            out = _scored(table, featurized, scorer)
            if header is None:
                header = list(out.columns)
            out.reindex(columns=header).to_csv(sys.stdout, index=False, header=counts[0] == 0)
            _count(counts, featurized)
    return counts
