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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from molgraph.data.dataset import featurize_all
from molgraph.data.scans import read_variants
from molgraph.data.variants import VariantGraphs
from molgraph.errors import MolgraphError
from molgraph.io import read_molecules
from molgraph.packed import PackedGraphs

STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")


@dataclass(frozen=True)
class VariantOptions:
    """How a variants CSV is read (see :class:`molgraph.data.MutationalScan`)."""

    structure: str | None = None
    mutations_column: str | None = None
    sequence_column: str | None = None
    numbering: str = "residue"
    offset: int = 0
    chains: tuple[str, ...] | None = None

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any], **given: Any) -> VariantOptions:
        """``given`` (None = not given) over the settings of the mutational scan the model
        was trained on, if it was trained on one."""
        data = recipe.get("trained_on", {}).get("data") or {}
        trained = {}
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

    @property
    def ok(self) -> np.ndarray:
        """``[n]`` bool, True for rows with a graph."""
        return np.array([not e for e in self.errors], dtype=bool)


def read_inputs(
    paths: str | Path | Sequence[str | Path],
    featurizer: Any,
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
    has the variant column (or no ``file_column``), else as a table of structure files."""
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not paths:
        raise MolgraphError("no input given")
    kind = featurizer.to_dict().get("kind")
    if kind == "molecule":
        if len(paths) != 1:
            raise MolgraphError(f"molecules are read from one file, got {len(paths)}")
        return _molecules(paths[0], featurizer, smiles_column, num_workers, progress)
    is_csv = len(paths) == 1 and paths[0].name.lower().endswith((".csv", ".csv.gz"))
    if is_csv and _holds_variants(paths[0], file_column, variants):
        assert variants is not None
        return _variants(paths[0], featurizer, variants)
    if is_csv:
        table, items = _structure_table(paths[0], file_column, chain_column)
    else:
        files = _structure_files(paths)
        table = pd.DataFrame({"id": [_stem(f) for f in files], "file": [str(f) for f in files]})
        items = [str(f) for f in files]
    missing = ["" if Path(i if isinstance(i, str) else i[0]).is_file() else "no such file"
               for i in items]  # fmt: skip
    return _featurized(table, items, missing, featurizer, num_workers, progress, "structure")


def _holds_variants(path: Path, file_column: str, variants: VariantOptions | None) -> bool:
    """A CSV holds variants when a wild-type structure is known and the CSV has the
    variant column, or has no column of structure files (then it must be variants)."""
    if variants is None or variants.structure is None:
        return False
    header = pd.read_csv(path, nrows=0).columns
    column = variants.mutations_column or variants.sequence_column
    return column in header or file_column not in header


def _featurized(
    table: pd.DataFrame,
    items: list[Any],
    errors: list[str],
    featurizer: Any,
    num_workers: int | None,
    progress: bool,
    unit: str,
) -> InputRows:
    """Featurize the items of the rows without an error yet; merge the new errors."""
    usable = [i for i, e in enumerate(errors) if not e]
    graphs, featurize_errors = featurize_all(
        featurizer, [items[i] for i in usable], num_workers, progress, unit=unit
    )
    errors = list(errors)
    for row, error in zip(usable, featurize_errors, strict=True):
        if error is not None:
            errors[row] = error.reason
    return InputRows(table.reset_index(drop=True), graphs, errors)


def _molecules(
    path: Path, featurizer: Any, smiles_column: str | None, num_workers: int | None, progress: bool
) -> InputRows:
    table = read_molecules(path, smiles_column)
    items = list(table["mol"]) if "mol" in table else list(table["smiles"])
    errors = list(table["parse_error"]) if "parse_error" in table else [""] * len(items)
    table = table.drop(columns=[c for c in ("mol", "parse_error") if c in table])
    return _featurized(table, items, errors, featurizer, num_workers, progress, "mol")


def _stem(path: Path) -> str:
    name = path.name
    return name.split(".")[0] or name


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
) -> tuple[pd.DataFrame, list[Any]]:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in (file_column, chain_column):
        if column is not None and column not in table:
            raise MolgraphError(
                f"{path}: no column {column!r} naming structure files (columns present: "
                f"{list(table.columns)}); for variants of one protein give the wild-type "
                "structure"
            )
    files = [str(path.parent / name) if name else "" for name in table[file_column]]
    chains = (
        [tuple(c.replace(",", " ").split()) or None for c in table[chain_column]]
        if chain_column
        else [None] * len(files)
    )
    items = [f if c is None else (f, c) for f, c in zip(files, chains, strict=True)]
    return table, items


def _variants(path: Path, featurizer: Any, options: VariantOptions) -> InputRows:
    """Variants of one structure: the wild-type graph with each variant's residue types."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    column = options.mutations_column or options.sequence_column
    if column is None or column not in table:
        raise MolgraphError(
            f"{path}: name the column of mutations or sequences (found {column!r}; columns "
            f"present: {list(table.columns)})"
        )
    wild_type, types, failed = read_variants(
        featurizer, str(options.structure), options.chains, options.numbering,  # type: ignore[arg-type]
        options.offset, table[column].tolist(), from_mutations=bool(options.mutations_column),
    )  # fmt: skip
    errors = [failed.get(i, "") for i in range(len(table))]
    kept = [i for i, e in enumerate(errors) if not e]
    columns = featurizer.residue_type_columns
    graphs = (
        VariantGraphs(wild_type, torch.from_numpy(types[kept]), (columns.start, columns.stop))
        if kept
        else None
    )
    return InputRows(table, graphs, errors)
