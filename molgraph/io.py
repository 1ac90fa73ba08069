"""Reading molecule inputs for prediction, and writing result tables.

Every input row is kept, including molecules RDKit cannot read: deciding what to do with
an invalid molecule belongs to the featurizer, which reports it with its reason.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import pandas as pd
from rdkit import Chem, rdBase

from molgraph.errors import InputError, MolgraphError

SMILES_COLUMN = "smiles"
# Column names taken as the SMILES column, case-insensitively, in this order of preference.
SMILES_COLUMN_NAMES = ("smiles", "canonical_smiles", "mol", "smi")
# Cells probed per column when no column is named like a SMILES column.
PROBE_CELLS = 20
# Columns the SDF reader makes itself; an SD property with one of these names is
# stored as "sd_<name>" so that it is neither lost nor overwriting.
SDF_COLUMNS = ("id", "smiles", "mol", "parse_error")

TABLE_SEPARATORS = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
LINE_SUFFIXES = (".smi", ".smiles", ".txt")
SDF_SUFFIXES = (".sdf", ".sdf.gz")
SUPPORTED_SUFFIXES = (*TABLE_SEPARATORS, *LINE_SUFFIXES, *SDF_SUFFIXES)


def read_molecules(path: Path, smiles_column: str | None = None) -> pd.DataFrame:
    """Read a file of molecules into a table with one row per input molecule.

    Parameters
    ----------
    path
        A table (``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``), a SMILES file (``.smi``,
        ``.smiles``, ``.txt``: one ``SMILES [whitespace id]`` per line) or an SD file
        (``.sdf``, ``.sdf.gz``).
    smiles_column
        Tables only: the column holding SMILES. When omitted it is detected: a column
        named (case-insensitively) ``smiles``, ``canonical_smiles``, ``mol`` or ``smi``,
        else the first column where most of the first 20 non-empty cells parse with RDKit.

    Returns
    -------
    pandas.DataFrame
        ``[n_rows, n_columns]``, always with a string column ``smiles``.

        - Tables: every input column as the string read (empty cells stay ``""``), plus
          ``smiles``, a copy of the SMILES column when that one has another name.
        - SMILES files: columns ``smiles`` and ``id`` (``""`` when absent). Every line is
          a row, blank ones included, so row ``i`` is line ``i + 1`` of the file.
        - SD files: one row per record, failed ones included: ``id`` (the title line),
          every SD property seen (``""`` where a record lacks it), ``smiles``, ``mol``
          (the sanitized RDKit molecule, ``None`` when the record did not parse) and
          ``parse_error`` (``""``, or why the record was not read).

    Raises
    ------
    MolgraphError
        For an unsupported suffix, a ``smiles_column`` that is absent (or given for a
        file that is not a table), or a table where no SMILES column is found.
    """
    path = Path(path)
    suffix = _matching_suffix(path, SUPPORTED_SUFFIXES)
    if suffix in TABLE_SEPARATORS:
        return _read_table(path, TABLE_SEPARATORS[suffix], smiles_column)
    if smiles_column is not None:
        raise MolgraphError(
            f"{path}: smiles_column={smiles_column!r} applies to CSV/TSV tables only, "
            f"not to {suffix} files"
        )
    if suffix in LINE_SUFFIXES:
        return _read_smiles_lines(path)
    return _read_sdf(path)


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a result table as CSV or TSV (chosen by suffix), without the index.

    Parameters
    ----------
    df
        The table; a ``mol`` column of RDKit molecules is left out.
    path
        Ends in ``.csv``, ``.csv.gz``, ``.tsv`` or ``.tsv.gz``; parent folders are created.

    Raises
    ------
    MolgraphError
        For any other suffix.
    """
    path = Path(path)
    separator = TABLE_SEPARATORS[_matching_suffix(path, tuple(TABLE_SEPARATORS))]
    path.parent.mkdir(parents=True, exist_ok=True)
    df.drop(columns="mol", errors="ignore").to_csv(path, sep=separator, index=False)


def find_smiles_column(table: pd.DataFrame, source: Path | str) -> str:
    """Name of the column of ``table`` that holds SMILES (see `read_molecules`).

    Parameters
    ----------
    table
        String cells, ``[n_rows, n_columns]``.
    source
        The file the table came from, named in the error.

    Raises
    ------
    InputError
        If no column is named like a SMILES column or mostly parses as SMILES.
    """
    if SMILES_COLUMN in table.columns:
        return SMILES_COLUMN
    by_lower_name = {str(c).lower(): c for c in reversed(table.columns)}  # first one wins
    for name in SMILES_COLUMN_NAMES:
        if name in by_lower_name:
            return by_lower_name[name]
    for column in table.columns:
        if _mostly_smiles(table[column]):
            return column
    raise InputError(
        source,
        f"found no SMILES column (none is named {', '.join(SMILES_COLUMN_NAMES)} "
        f"and in none do most of the first {PROBE_CELLS} non-empty cells parse as SMILES); "
        "name it with --smiles-column",
    )


def resolve_smiles_column(
    table: pd.DataFrame, smiles_column: str | None, source: Path | str
) -> str:
    """The column of ``table`` that holds SMILES: ``smiles_column`` checked, else detected.

    Parameters
    ----------
    table
        String cells (all rows, or a sample of the first ones), ``[n_rows, n_columns]``.
    smiles_column
        The column named by the user, or None to detect it (`find_smiles_column`).
    source
        The file the table came from, named in the error.

    Raises
    ------
    InputError
        If ``smiles_column`` is absent, if none is found, or if the SMILES column is not
        ``smiles`` while a ``smiles`` column exists (copying would overwrite it).
    """
    if smiles_column is None:
        smiles_column = find_smiles_column(table, source)
    elif smiles_column not in table.columns:
        present = ", ".join(repr(c) for c in table.columns)
        raise InputError(source, f"no column {smiles_column!r}; columns present: {present}")
    if smiles_column != SMILES_COLUMN and SMILES_COLUMN in table.columns:
        raise InputError(
            source,
            f"SMILES are asked from column {smiles_column!r} but the file also has "
            f"a column {SMILES_COLUMN!r}, which they would overwrite; rename one of them",
        )
    return smiles_column


def _read_table(path: Path, separator: str, smiles_column: str | None) -> pd.DataFrame:
    table = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False)
    smiles_column = resolve_smiles_column(table, smiles_column, path)
    if smiles_column != SMILES_COLUMN:
        table[SMILES_COLUMN] = table[smiles_column]
    return table


def _mostly_smiles(cells: Iterable[str]) -> bool:
    """Whether more than half of the first non-empty cells parse as SMILES."""
    sample = list(islice((c.strip() for c in cells if c.strip()), PROBE_CELLS))
    with rdBase.BlockLogs():  # probing non-SMILES columns would flood the log
        parsed = sum(Chem.MolFromSmiles(cell) is not None for cell in sample)
    return 2 * parsed > len(sample) > 0


def _read_smiles_lines(path: Path) -> pd.DataFrame:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    rows = [([*line.strip().split(maxsplit=1), "", ""])[:2] for line in lines]
    return pd.DataFrame(rows, columns=[SMILES_COLUMN, "id"], dtype=str)


def _read_sdf(path: Path) -> pd.DataFrame:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as stream:
        supplier = Chem.ForwardSDMolSupplier(stream, sanitize=True)
        records = [sdf_record(mol, number) for number, mol in enumerate(supplier, start=1)]
    return sdf_table(records)


def sdf_table(records: list[dict[str, object]]) -> pd.DataFrame:
    """SDF rows (`sdf_record`) as a table: ``id``, the SD properties seen in them (``""``
    where a record lacks one), ``smiles``, ``mol``, ``parse_error``."""
    frame = pd.DataFrame.from_records(records)
    properties = [c for c in frame.columns if c not in SDF_COLUMNS]
    frame = frame.reindex(columns=["id", *properties, "smiles", "mol", "parse_error"])
    frame[properties] = frame[properties].fillna("")
    return frame


def sdf_record(mol: Chem.Mol | None, number: int) -> dict[str, object]:
    """One SDF row; ``number`` counts records from 1 in file order."""
    if mol is None:
        reason = f"RDKit could not read SDF record {number}"
        return {"id": "", "smiles": "", "mol": None, "parse_error": reason}
    properties = {
        f"sd_{name}" if name in SDF_COLUMNS else name: mol.GetProp(name)
        for name in mol.GetPropNames()
    }
    name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
    return {
        "id": name,
        **properties,
        "smiles": Chem.MolToSmiles(mol),
        "mol": mol,
        "parse_error": "",
    }


def _matching_suffix(path: Path, suffixes: tuple[str, ...]) -> str:
    """The longest of ``suffixes`` that ``path`` ends with, ignoring case."""
    name = path.name.lower()
    matches = [s for s in suffixes if name.endswith(s)]
    if not matches:
        raise MolgraphError(
            f"{path}: unsupported file type; supported suffixes: {', '.join(suffixes)}"
        )
    return max(matches, key=len)
