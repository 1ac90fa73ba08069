"""Mutational scans: one wild-type structure and a CSV of variants with measured fitness.

Each variant's graph is the wild-type geometry with its residue types substituted, stored
as :class:`~molgraph.data.variants.VariantGraphs` (the wild-type graph once plus a
``[V, R]`` residue-type matrix). Variants are given as mutation strings or as full
sequences (see :mod:`molgraph.data.mutations` for the formats and numberings). Rows
whose wild-type residue does not match the structure, whose sequence has the wrong
length, or whose label is not a number are listed with row, variant and reason in
``failures.csv`` and counted in the log.

The dataset's ``table`` gains a ``num_mutations`` column: the number of residues that
differ from the structure's sequence (for :class:`~molgraph.data.MutationCountSplit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from molgraph.data.dataset import TaskKind, check_labels_source, labels_of, read_table
from molgraph.data.mutations import Numbering, VariantReader, sequences_of
from molgraph.data.proteins import (
    ProteinDataset,
    cache_folder,
    cached,
    check_protein_featurizer,
)
from molgraph.data.variants import VariantGraphs
from molgraph.errors import ConfigError, FeaturizationError, MolgraphError
from molgraph.packed import PackedGraphs


@dataclass(frozen=True)
class MutationalScan:
    """Where a mutational scan lives and how to read its variants.

    Parameters
    ----------
    path
        Variants CSV (``.csv`` or ``.csv.gz``), one row per variant.
    structure
        The wild-type structure (PDB/mmCIF, gzipped or not).
    target_columns
        Measured fitness, one column per task; empty cells are missing labels.
    chains
        Chains of ``structure`` to keep (None: the featurizer's ``chains``).
    mutations_column
        Column of mutation strings (``V39A:D40G``, ``A108D,N144D``, ``WT``). Exactly
        one of ``mutations_column`` and ``sequence_column`` is given.
    sequence_column
        Column of full variant sequences, one letter per structure residue.
    numbering
        How mutation positions are read: ``residue`` (structure residue numbers) or
        ``index`` (``position - offset`` indexes the structure's sequence).
    offset
        With ``numbering="index"``: 0 for 0-based positions, 1 for 1-based ones.
    task
        ``regression`` or ``classification``.
    """

    path: str
    structure: str
    target_columns: Sequence[str]
    chains: Sequence[str] | None = None
    mutations_column: str | None = None
    sequence_column: str | None = None
    numbering: Numbering = "residue"
    offset: int = 0
    task: TaskKind = "regression"

    def __post_init__(self) -> None:
        check_labels_source(self)
        if self.chains is not None:
            object.__setattr__(self, "chains", tuple(self.chains))
        if (self.mutations_column is None) == (self.sequence_column is None):
            raise ConfigError(
                f"{self.path}: give exactly one of mutations_column and sequence_column"
            )
        if self.numbering not in ("residue", "index"):
            raise ConfigError(f"numbering must be residue or index, got {self.numbering!r}")

    @property
    def variant_column(self) -> str:
        return self.mutations_column or self.sequence_column  # type: ignore[return-value]

    def check_featurizer(self, featurizer: object) -> None:
        check_protein_featurizer(featurizer, self.path)

    def load(
        self,
        featurizer: Any,
        cache_dir: str | Path | None = None,
        num_workers: int | None = None,
        progress: bool = True,
    ) -> ProteinDataset:
        """Featurize the structure, read the variants, cache both (``num_workers`` and
        ``progress`` are unused: one structure is featurized)."""
        self.check_featurizer(featurizer)
        table = read_table(self.path, [self.variant_column, *self.target_columns],
                           text=[self.variant_column])  # fmt: skip
        structure = Path(self.structure)
        if not structure.is_file():
            raise MolgraphError(f"{structure}: no such file (the scan's wild-type structure)")
        settings = {
            "featurizer": featurizer.to_dict(),
            "source": {k: v for k, v in vars(self).items() if k not in ("path", "structure")},
        }
        stem = f"{Path(self.path).parent.name}-{Path(self.path).name.split('.')[0]}"
        folder = cache_folder(cache_dir, stem, [Path(self.path), structure], settings)

        def load(folder: Path) -> ProteinDataset:
            wild_type, labels = PackedGraphs.load(folder / "graphs.bin")
            failures = pd.read_csv(folder / "failures.csv", dtype={"variant": str},
                                   keep_default_na=False)  # fmt: skip
            graphs = VariantGraphs(wild_type, labels["residue_types"],
                                   _columns(featurizer))  # fmt: skip
            return self._dataset(table, graphs, labels["y"], labels["row_ids"].numpy(), failures)

        def save(staging: Path, dataset: ProteinDataset) -> None:
            graphs = dataset.graphs
            assert isinstance(graphs, VariantGraphs)
            labels = {
                "y": dataset.y,
                "row_ids": torch.from_numpy(dataset.row_ids),
                "residue_types": graphs.residue_types,
            }
            graphs.wild_type.save(staging / "graphs.bin", labels)
            dataset.failures.to_csv(staging / "failures.csv", index=False)

        return cached(Path(self.path).name, folder, lambda: self._build(table, featurizer),
                      save, load)  # fmt: skip

    def _build(self, table: pd.DataFrame, featurizer: Any) -> ProteinDataset:
        variants = table[self.variant_column].fillna("").astype(str).tolist()
        wild_type, types, failed = read_variants(
            featurizer, self.structure, self.chains, self.numbering, self.offset,
            variants, from_mutations=self.mutations_column is not None,
        )  # fmt: skip
        y, refused = labels_of(table, self)
        for row, reason in refused.items():
            failed.setdefault(row, reason)
        kept = np.array([i for i in range(len(table)) if i not in failed], np.int64)
        if not len(kept):
            raise MolgraphError(f"{self.path}: no variant could be read ({len(failed)} failed)")
        failures = pd.DataFrame(
            [(row, variants[row], failed[row]) for row in sorted(failed)],
            columns=["row", "variant", "reason"],
        )
        graphs = VariantGraphs(wild_type, torch.from_numpy(types[kept]), _columns(featurizer))
        y_kept = torch.from_numpy(y[kept]).float()
        return self._dataset(table, graphs, y_kept, kept, failures)

    def _dataset(
        self,
        table: pd.DataFrame,
        graphs: VariantGraphs,
        y: torch.Tensor,
        kept: np.ndarray,
        failures: pd.DataFrame,
    ) -> ProteinDataset:
        types = graphs.residue_types.cpu().numpy()
        wild_type = graphs.wild_type.x[:, slice(*graphs.type_columns)].argmax(1).cpu().numpy()
        kept_table = table.iloc[kept].reset_index(drop=True)
        kept_table["num_mutations"] = (types != wild_type[None]).sum(1)
        return ProteinDataset(
            graphs=graphs,
            y=y,
            sequences=tuple(sequences_of(types)),
            row_ids=kept,
            target_names=tuple(self.target_columns),
            task=self.task,
            failures=failures,
            table=kept_table,
        )


def _columns(featurizer: Any) -> tuple[int, int]:
    columns: slice = featurizer.residue_type_columns
    return columns.start, columns.stop


def read_variants(
    featurizer: Any,
    structure: str | Path,
    chains: Sequence[str] | None,
    numbering: Numbering,
    offset: int,
    variants: Sequence[str],
    from_mutations: bool,
) -> tuple[PackedGraphs, np.ndarray, dict[int, str]]:
    """The wild-type graph of ``structure`` and each variant's residue types ``[V, R]``
    (mutation strings, or full sequences when not ``from_mutations``), with the reason
    of every variant that could not be read, by position."""
    item = str(structure) if chains is None else (str(structure), chains)
    try:
        residues = featurizer.residues(item)
    except FeaturizationError as error:
        raise MolgraphError(f"wild-type structure {structure}: {error.reason}") from None
    wild_type = PackedGraphs.from_arrays(featurizer.encode_residues(residues))
    reader = VariantReader(
        residues.sequence,
        np.asarray(residues.numbers).tolist(),
        [str(c) for c in np.asarray(residues.insertion_codes).tolist()],
        numbering,
        offset,
    )
    read = reader.from_mutations if from_mutations else reader.from_sequences
    types, failed = read(list(variants))
    return wild_type, types, failed
