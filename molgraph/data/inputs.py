"""Inputs of a prediction or embedding run: files → one row per input, and the graphs of
the rows that could be featurized.

What a file holds is decided by the model's featurizer:

- molecules: one CSV/TSV, ``.smi`` or ``.sdf(.gz)`` file (see :func:`molgraph.io.read_molecules`);
- protein structures: PDB/mmCIF files, given one by one, as a folder (every structure file
  in it, sorted by name), or as a CSV naming one file per row (``file_column``, relative
  to the CSV's folder; ``chain_column`` optional);
- variants of one protein: a CSV of mutation strings or sequences plus the wild-type
  ``structure`` (as :class:`molgraph.data.MutationalScan` reads them).

Every input row is kept; a row that cannot be used carries the reason in ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from molgraph.data.featurization import featurize_rows
from molgraph.data.mutations import Numbering
from molgraph.data.proteins import StructureItem, missing_structures, structure_items
from molgraph.data.scans import read_variants
from molgraph.data.tables import file_stem
from molgraph.data.variants import VariantGraphs
from molgraph.errors import MolgraphError
from molgraph.featurize import Featurizer, MoleculeFeaturizer, ProteinFeaturizer
from molgraph.io import read_molecules
from molgraph.packed import PackedGraphs

STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")


@dataclass(frozen=True)
class VariantOptions:
    """How a variants CSV is read (see :class:`molgraph.data.MutationalScan`)."""

    structure: str | None = None
    mutations_column: str | None = None
    sequence_column: str | None = None
    numbering: Numbering = "residue"
    offset: int = 0
    chains: tuple[str, ...] | None = None

    @classmethod
    def from_trained_on(cls, trained_on: Mapping[str, Any], **given: Any) -> VariantOptions:
        """``given`` (None = not given) over the settings of the mutational scan a model
        was trained on (its recipe's ``trained_on``), if it was trained on one."""
        data = trained_on.get("data") or {}
        trained: dict[str, Any] = {}
        if str(data.get("_target_", "")).endswith("MutationalScan"):
            trained = {k: data.get(k) for k in cls.__dataclass_fields__ if data.get(k) is not None}
            if "structure" in trained and not Path(trained["structure"]).is_file():
                del trained["structure"]  # trained elsewhere: it must be given
        if given.get("mutations_column") or given.get("sequence_column"):
            trained.pop("mutations_column", None)
            trained.pop("sequence_column", None)
        options = {**trained, **{k: v for k, v in given.items() if v is not None}}
        if options.get("chains") is not None:
            options["chains"] = tuple(options["chains"])
        return cls(**options)


@dataclass(frozen=True)
class InputRows:
    """One row per input, in order.

    ``table`` holds the columns to write out (ids, the input's own columns); ``errors``
    is ``""`` for each row that has a graph and the reason for each that has none;
    ``graphs`` holds the graphs of the rows without error, in row order (None if none).
    """

    table: pd.DataFrame
    graphs: PackedGraphs | VariantGraphs | None
    errors: list[str]
    notes: list[str] | None = None  # structure files: what the parser dropped or mapped

    @property
    def ok(self) -> np.ndarray:
        """``[n]`` bool, True for rows with a graph."""
        return np.array([not e for e in self.errors], dtype=bool)


def read_inputs(
    paths: str | Path | Sequence[str | Path],
    featurizer: Featurizer,
    *,
    smiles_column: str | None = None,
    file_column: str = "file",
    chain_column: str | None = None,
    variants: VariantOptions | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> InputRows:
    """Read and featurize the inputs in ``paths`` for ``featurizer`` (see the module
    docstring). A CSV is read as variants when ``variants.structure`` is set and the CSV
    has the variant column (or no ``file_column``), else as a table of structure files.

    Raises
    ------
    MolgraphError
        No input, several molecule files, a folder without structure files, a table
        without the columns asked for, or a wild-type structure that cannot be read.
    """
    given = [paths] if isinstance(paths, str | Path) else list(paths)
    files = [Path(p) for p in given]
    if not files:
        raise MolgraphError("no input given")
    if isinstance(featurizer, MoleculeFeaturizer):
        if len(files) != 1:
            raise MolgraphError(f"molecules are read from one file, got {len(files)}")
        return _molecules(files[0], featurizer, smiles_column, num_workers, progress)
    is_csv = len(files) == 1 and files[0].name.lower().endswith((".csv", ".csv.gz"))
    if is_csv and variants is not None and _holds_variants(files[0], file_column, variants):
        return _variants(files[0], featurizer, variants)
    if is_csv:
        table, items = _structure_table(files[0], file_column, chain_column)
    else:
        found = _structure_files(files)
        table = pd.DataFrame({"id": [file_stem(f) for f in found], "file": [str(f) for f in found]})
        items = [str(f) for f in found]
    refused = dict.fromkeys(missing_structures(items), "no such file")
    return _featurized(table, items, refused, featurizer, num_workers, progress, "structure")


def _holds_variants(path: Path, file_column: str, variants: VariantOptions) -> bool:
    """A CSV holds variants when a wild-type structure is known and the CSV has the
    variant column, or has no column of structure files (then it must be variants)."""
    if variants.structure is None:
        return False
    header = pd.read_csv(path, nrows=0).columns
    column = variants.mutations_column or variants.sequence_column
    return column in header or file_column not in header


def _featurized(
    table: pd.DataFrame,
    items: Sequence[Any],
    refused: dict[int, str],
    featurizer: Featurizer,
    num_workers: int | None,
    progress: bool,
    unit: str,
) -> InputRows:
    """Featurize the items of the rows not ``refused``; every row's error or ``""``."""
    graphs, _, failed = featurize_rows(featurizer, items, refused, num_workers, progress, unit)
    errors = [failed.get(row, "") for row in range(len(items))]
    notes = None
    if isinstance(featurizer, ProteinFeaturizer):  # parsed again: the graphs keep no notes
        notes = ["; ".join(featurizer.residues(item).notes) if not error else ""
                 for item, error in zip(items, errors, strict=True)]  # fmt: skip
    return InputRows(table.reset_index(drop=True), graphs, errors, notes)


def _molecules(
    path: Path,
    featurizer: MoleculeFeaturizer,
    smiles_column: str | None,
    num_workers: int | None,
    progress: bool,
) -> InputRows:
    table = read_molecules(path, smiles_column)
    items = list(table["mol"]) if "mol" in table else list(table["smiles"])
    errors = list(table["parse_error"]) if "parse_error" in table else [""] * len(items)
    refused = {row: error for row, error in enumerate(errors) if error}
    table = table.drop(columns=[c for c in ("mol", "parse_error") if c in table])
    return _featurized(table, items, refused, featurizer, num_workers, progress, "mol")


def _is_structure(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(STRUCTURE_SUFFIXES)


def _structure_files(paths: list[Path]) -> list[Path]:
    """The files given, with each folder replaced by the structure files in it (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _is_structure(p))
            if not found:
                raise MolgraphError(
                    f"{path}: no structure files in this folder (looked for "
                    f"{', '.join(STRUCTURE_SUFFIXES)}, optionally .gz)"
                )
            files += found
        else:
            files.append(path)
    return files


def _structure_table(
    path: Path, file_column: str, chain_column: str | None
) -> tuple[pd.DataFrame, list[StructureItem]]:
    """A CSV naming one structure file per row (relative to the CSV's folder)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in (file_column, chain_column):
        if column is not None and column not in table:
            raise MolgraphError(
                f"{path}: no column {column!r} naming structure files (columns present: "
                f"{list(table.columns)}); for variants of one protein give the wild-type "
                "structure"
            )
    return table, structure_items(table, file_column, chain_column, path.parent)


def _variants(path: Path, featurizer: ProteinFeaturizer, options: VariantOptions) -> InputRows:
    """Variants of one structure: the wild-type graph with each variant's residue types."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    column = options.mutations_column or options.sequence_column
    if column is None or column not in table:
        raise MolgraphError(
            f"{path}: name the column of mutations or sequences (found {column!r}; columns "
            f"present: {list(table.columns)})"
        )
    graphs, _, failed = read_variants(
        featurizer, str(options.structure), options.chains, options.numbering,
        options.offset, table[column].tolist(), from_mutations=bool(options.mutations_column),
    )  # fmt: skip
    return InputRows(table, graphs, [failed.get(i, "") for i in range(len(table))])
