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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molgraph.data.cache import CacheLayout, FeaturizedRows, cache_folder, load_or_build
from molgraph.data.dataset import GraphDataset
from molgraph.data.mutations import (
    NONSENSE_POLICIES,
    Nonsense,
    Numbering,
    VariantReader,
    sequences_of,
)
from molgraph.data.proteins import protein_featurizer
from molgraph.data.tables import check_labels_source, failures_table, labels_of, read_table
from molgraph.data.variants import VariantGraphs
from molgraph.errors import ConfigError, FeaturizationError, MolgraphError
from molgraph.featurize import Featurizer, ProteinFeaturizer
from molgraph.packed import PackedGraphs
from molgraph.types import TaskKinds

_FORMAT = 1


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
        ``regression`` or ``classification``, or one kind per target (a list or mapping).
    nonsense
        Nonsense variants (``K156*``): ``refuse`` lists them as failures; ``stop`` reads
        them with the stop/truncation residue type, which needs a featurizer built with
        ``stop_residue=true`` (see :mod:`molgraph.data.mutations`).
    bin_column
        Column of the binarised score (ProteinGym's ``DMS_score_bin``, 1 = fit) for AUC
        and MCC; None: the score at or above its median over the scan.
    """

    path: str
    structure: str
    target_columns: Sequence[str]
    chains: Sequence[str] | None = None
    mutations_column: str | None = None
    sequence_column: str | None = None
    numbering: Numbering = "residue"
    offset: int = 0
    task: TaskKinds = "regression"
    nonsense: Nonsense = "refuse"
    bin_column: str | None = None

    def __post_init__(self) -> None:
        check_labels_source(self)
        if self.nonsense not in NONSENSE_POLICIES:
            raise ConfigError(
                f"{self.path}: nonsense must be stop or refuse, got {self.nonsense!r}"
            )
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
        """Raise ConfigError unless ``featurizer`` builds residue graphs (with the stop
        residue type where nonsense variants read as ``stop``)."""
        protein = protein_featurizer(featurizer, self.path)
        if self.nonsense == "stop" and not protein.stop_residue:
            raise ConfigError(
                f"{self.path}: nonsense=stop needs the stop residue type: set "
                "featurizer.stop_residue=true (or data.nonsense=refuse to drop those rows)"
            )

    def load(
        self,
        featurizer: Featurizer,
        cache_dir: str | Path | None = None,
        num_workers: int | None = None,
        progress: bool = True,
    ) -> GraphDataset:
        """Featurize the structure, read the variants, cache both (``num_workers`` and
        ``progress`` are unused: one structure is featurized)."""
        self.check_featurizer(featurizer)
        protein = protein_featurizer(featurizer, self.path)
        extra = [self.bin_column] if self.bin_column else []
        table = read_table(self.path, [self.variant_column, *self.target_columns, *extra],
                           text=[self.variant_column])  # fmt: skip
        structure = Path(self.structure)
        if not structure.is_file():
            raise MolgraphError(f"{structure}: no such file (the scan's wild-type structure)")
        settings = {
            "featurizer": protein.to_dict(),
            "source": _source_key(self),
        }
        stem = f"{Path(self.path).parent.name}-{Path(self.path).name.split('.')[0]}"
        folder = cache_folder(cache_dir, stem, [Path(self.path), structure], settings, _FORMAT)
        layout = CacheLayout(item_column="variant", type_columns=type_columns(protein))

        def build() -> FeaturizedRows:
            return self._featurize(table, protein)

        return self._dataset(table, load_or_build(Path(self.path).name, folder, build, layout))

    def _dataset(self, table: pd.DataFrame, rows: FeaturizedRows) -> GraphDataset:
        graphs = rows.graphs
        assert isinstance(graphs, VariantGraphs)  # the layout's type_columns ask for them
        types = graphs.residue_types.cpu().numpy()
        wild_type = graphs.wild_type.x[:, slice(*graphs.type_columns)].argmax(1).cpu().numpy()
        kept = table.iloc[rows.row_ids].reset_index(drop=True)
        kept["num_mutations"] = (types != wild_type[None]).sum(1)
        return GraphDataset.from_rows(rows, self, "sequence", tuple(sequences_of(types)), kept)

    def _featurize(self, table: pd.DataFrame, featurizer: ProteinFeaturizer) -> FeaturizedRows:
        variants = table[self.variant_column].fillna("").astype(str).tolist()
        y, refused = labels_of(table, self)
        graphs, kept, failed = read_variants(
            featurizer, self.structure, self.chains, self.numbering, self.offset,
            variants, from_mutations=self.mutations_column is not None, refused=refused,
            nonsense=self.nonsense,
        )  # fmt: skip
        if graphs is None:
            raise MolgraphError(f"{self.path}: no variant could be read ({len(failed)} failed)")
        return FeaturizedRows(
            graphs=graphs,
            y=torch.from_numpy(y[kept]).float(),
            row_ids=kept,
            failures=failures_table(failed, variants, "variant"),
        )


def _source_key(scan: MutationalScan) -> dict:
    """The scan's settings in its cache key; ``nonsense`` only when not the default, so
    caches written before the policy existed stay valid."""
    skip = ("path", "structure", "bin_column") + (
        ("nonsense",) if scan.nonsense == "refuse" else ()
    )
    return {k: v for k, v in vars(scan).items() if k not in skip}


def type_columns(featurizer: ProteinFeaturizer) -> tuple[int, int]:
    """``(start, stop)`` of the featurizer's residue one-hot columns."""
    columns = featurizer.residue_type_columns
    return columns.start, columns.stop


def read_variants(
    featurizer: ProteinFeaturizer,
    structure: str | Path,
    chains: Sequence[str] | None,
    numbering: Numbering,
    offset: int,
    variants: Sequence[str],
    from_mutations: bool,
    refused: Mapping[int, str] | None = None,
    nonsense: Nonsense = "refuse",
) -> tuple[VariantGraphs | None, np.ndarray, dict[int, str]]:
    """The graphs of the variants of ``structure`` (mutation strings, or full sequences
    when not ``from_mutations``) that could be read and are not ``refused``.

    Returns
    -------
    graphs
        The wild-type graph with the residue types of every kept variant (None if none).
    kept
        ``[V]`` int64, the positions in ``variants`` that have a graph.
    failed
        The reason of every other variant, by position (its own, else ``refused``'s).

    Raises
    ------
    MolgraphError
        The wild-type structure cannot be featurized.
    """
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
        nonsense,
    )
    read = reader.from_mutations if from_mutations else reader.from_sequences
    types, failed = read(list(variants))
    for row, reason in (refused or {}).items():
        failed.setdefault(row, reason)
    kept = np.array([i for i in range(len(variants)) if i not in failed], np.int64)
    if not len(kept):
        return None, kept, failed
    graphs = VariantGraphs(wild_type, torch.from_numpy(types[kept]), type_columns(featurizer))
    return graphs, kept, failed
