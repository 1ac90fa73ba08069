"""Download the MoleculeNet CSVs from their public home and verify them.

Usable as a module (``from data_prep.moleculenet import download, verify``) and as a script::

    python data_prep/moleculenet.py esol bbbp --dest data/molecules
    python data_prep/moleculenet.py --dest data/molecules --check-only

Files come from the deepchem S3 bucket that the MoleculeNet loaders (deepchem, PyG) use.
Gzipped responses are recognised by their magic bytes and written out as plain CSV.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from rdkit import Chem, rdBase

log = logging.getLogger(__name__)

BASE_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/"
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class VerificationError(ValueError):
    """A dataset file failed verification.

    Parameters
    ----------
    path
        The file that was checked.
    reason
        What is wrong with it.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ChecksumError(VerificationError):
    """The sha256 of a file's (decompressed) bytes differs from the pinned one."""

    def __init__(self, path: Path | str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(path, f"sha256 mismatch: expected {expected}, got {actual}")


@dataclass(frozen=True)
class Source:
    """Where a MoleculeNet dataset lives and what a good copy looks like.

    Parameters
    ----------
    name
        Short dataset name used on the command line (``esol``, ``bbbp``, ...).
    url
        Download address; ``https://`` or ``file://``. A gzipped response is decompressed.
    filename
        Name of the plain CSV written in the destination folder.
    smiles_column
        Column holding the SMILES strings.
    target_columns
        Columns holding the prediction targets.
    sha256
        sha256 of the plain CSV bytes, or None when not pinned (structural checks only).
    expected_rows
        Number of data rows as ``pandas.read_csv`` counts them (blank lines skipped).
    """

    name: str
    url: str
    filename: str
    smiles_column: str
    target_columns: tuple[str, ...]
    sha256: str | None
    expected_rows: int


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a successful :func:`verify`.

    Parameters
    ----------
    path
        The file checked.
    rows
        Data rows read by pandas.
    unparseable_smiles
        SMILES that are missing or that RDKit cannot parse (reported, not an error).
    sha256
        sha256 of the file's (decompressed) bytes.
    checksum_verified
        True when ``sha256`` was compared against a pinned value and matched.
    """

    path: Path
    rows: int
    unparseable_smiles: int
    sha256: str
    checksum_verified: bool


def _source(
    name: str,
    filename: str,
    smiles: str,
    targets: tuple[str, ...],
    rows: int,
    url_file: str | None = None,
) -> Source:
    return Source(name, BASE_URL + (url_file or filename), filename, smiles, targets, None, rows)


# sha256 is None throughout: the sha256 values in shared/data/MANIFEST.md belong to copies taken
# from GitHub mirrors, which need not be byte-identical to the S3 files, and no published sha256 of
# the S3 files is known. Verification therefore relies on the structural checks; the CLI prints
# the actual sha256 of each file so a value can be pinned once it has been fetched from S3.
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        _source(
            "esol",
            "delaney-processed.csv",
            "smiles",
            ("measured log solubility in mols per litre",),
            1128,
        ),
        _source("freesolv", "SAMPL.csv", "smiles", ("expt",), 642),
        _source("lipophilicity", "Lipophilicity.csv", "smiles", ("exp",), 4200),
        _source("bbbp", "BBBP.csv", "smiles", ("p_np",), 2050),
        _source("bace", "bace.csv", "mol", ("Class", "pIC50"), 1513),
        # deepchem and PyG fetch ClinTox gzipped; the row count is that of the 1484-row copy in
        # shared/data (an older 1491-row version also circulates).
        _source(
            "clintox",
            "clintox.csv",
            "smiles",
            ("FDA_APPROVED", "CT_TOX"),
            1484,
            url_file="clintox.csv.gz",
        ),
        _source("hiv", "HIV.csv", "smiles", ("HIV_active",), 41127),
    )
}


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(GZIP_MAGIC)) == GZIP_MAGIC


@contextmanager
def _open_plain(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading bytes, decompressing it if it is gzipped."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as fh:
        yield fh


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with _open_plain(path) as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _count_unparseable(smiles: pd.Series) -> int:
    with rdBase.BlockLogs():
        return sum(not isinstance(s, str) or Chem.MolFromSmiles(s) is None for s in smiles)


def _check_structure(path: Path, frame: pd.DataFrame, source: Source) -> None:
    wanted = (source.smiles_column, *source.target_columns)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise VerificationError(
            path, f"missing column(s) {missing}; columns present: {list(frame.columns)}"
        )
    if len(frame) != source.expected_rows:
        raise VerificationError(
            path, f"expected {source.expected_rows} rows for {source.name}, found {len(frame)}"
        )


def verify(path: Path | str, source: Source) -> VerifyReport:
    """Check a dataset file against its :class:`Source`.

    Parameters
    ----------
    path
        Plain or gzipped CSV file.
    source
        What the file should contain.

    Returns
    -------
    VerifyReport
        Row count, unparseable SMILES count and checksum outcome.

    Raises
    ------
    ChecksumError
        ``source.sha256`` is set and differs from the sha256 of the decompressed bytes.
    VerificationError
        A SMILES or target column is missing, or the row count differs from
        ``source.expected_rows``, or pandas cannot read the file.
    """
    path = Path(path)
    actual = _sha256(path)
    if source.sha256 is not None and actual != source.sha256:
        raise ChecksumError(path, source.sha256, actual)
    try:
        with _open_plain(path) as fh:
            frame = pd.read_csv(fh)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise VerificationError(path, f"not a readable CSV ({err})") from err
    _check_structure(path, frame, source)
    return VerifyReport(
        path=path,
        rows=len(frame),
        unparseable_smiles=_count_unparseable(frame[source.smiles_column]),
        sha256=actual,
        checksum_verified=source.sha256 is not None,
    )


def _fetch(url: str, target: Path, timeout: float) -> None:
    """Write the body at ``url`` to ``target``, decompressing a gzipped body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except OSError as err:  # urllib.error.URLError included
        raise OSError(f"could not fetch {url}: {err}") from err
    if _is_gzip(target):
        plain = target.with_name(target.name + ".plain")
        try:
            with gzip.open(target, "rb") as src, open(plain, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            os.replace(plain, target)
        finally:
            plain.unlink(missing_ok=True)


def _install(source: Source, dest_dir: Path, timeout: float) -> VerifyReport:
    """Body of :func:`download`; returns the report of the installed file."""
    final = dest_dir / source.filename
    if final.exists():
        try:
            return verify(final, source)
        except VerificationError as err:
            log.warning("%s: existing file is invalid, fetching again (%s)", source.name, err)
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{source.filename}.", suffix=".part", dir=dest_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        log.info("%s: fetching %s", source.name, source.url)
        _fetch(source.url, tmp, timeout)
        report = verify(tmp, source)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return replace(report, path=final)


def download(source: Source, dest_dir: Path | str, *, timeout: float = 60) -> Path:
    """Fetch, verify and atomically install ``source`` as a plain CSV in ``dest_dir``.

    A file already present that passes :func:`verify` is kept and not fetched again; one that
    fails is replaced.

    Parameters
    ----------
    source
        The dataset to fetch.
    dest_dir
        Destination folder, created if missing.
    timeout
        Network timeout in seconds.

    Returns
    -------
    Path
        The verified CSV, ``dest_dir / source.filename``.

    Raises
    ------
    VerificationError
        The fetched file fails verification (nothing is written at the destination).
    OSError
        The fetch failed; the message names the URL.
    """
    return _install(source, Path(dest_dir), timeout).path


def _describe(name: str, report: VerifyReport) -> str:
    checksum = "sha256 ok" if report.checksum_verified else f"sha256 unpinned ({report.sha256})"
    return (
        f"{name:<14} rows={report.rows:<6} unparseable_smiles={report.unparseable_smiles:<3} "
        f"{checksum}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if any dataset failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"datasets to process (default: all of {', '.join(SOURCES)})",
    )
    parser.add_argument("--dest", type=Path, required=True, help="destination folder")
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="verify files already in DEST, without any network access",
    )
    parser.add_argument("--timeout", type=float, default=60, help="network timeout in seconds")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SOURCES))
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(SOURCES)}")

    failed = False
    for name in args.names or SOURCES:
        source = SOURCES[name]
        try:
            report = (
                verify(args.dest / source.filename, source)
                if args.check_only
                else _install(source, args.dest, args.timeout)
            )
            print(_describe(name, report))
        except (OSError, ValueError) as err:
            failed = True
            print(f"{name:<14} FAILED: {err}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
