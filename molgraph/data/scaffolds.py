"""Scaffold splits: whole Bemis–Murcko scaffold sets go to one part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds.MurckoScaffold import MurckoScaffoldSmiles

from molgraph.data.splits import SplitIndices, _FractionSplit, _n_items, part_sizes
from molgraph.errors import FeaturizationError


def scaffold_of(smiles: str, include_chirality: bool = False) -> str:
    """Bemis–Murcko scaffold SMILES of a molecule; ``""`` for an acyclic one.

    Raises
    ------
    FeaturizationError
        RDKit cannot parse ``smiles``.
    """
    with rdBase.BlockLogs():  # the typed error below replaces RDKit's log line
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise FeaturizationError(smiles, "RDKit could not parse the SMILES")
    return MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality)


@dataclass(frozen=True)
class ScaffoldSplit(_FractionSplit):
    """Whole scaffold sets go to one part, so no scaffold is shared between parts.

    Items are grouped by :func:`scaffold_of` (acyclic molecules share the empty
    scaffold). The sets are then taken in an order (below) and each goes to train if it
    still fits under the train count, else to val if it fits under the val count, else to
    test. Hence train and val never exceed their :func:`part_sizes` counts, and test takes
    the excess.

    Parameters
    ----------
    sizes
        Fractions of (train, val, test); non-negative, summing to 1.
    seed
        Seed of the shuffles when ``balanced``; unused otherwise.
    balanced
        True (chemprop's ``scaffold_balanced``): sets larger than half the val count or
        half the test count are "big" and come first; the big and the small sets are
        each shuffled with the seed. False (deepchem's order): sets sorted by size,
        largest first, ties in order of first appearance; the split ignores the seed.
    include_chirality
        Keep stereochemistry in the scaffold SMILES.
    """

    balanced: bool = True
    include_chirality: bool = False

    def __call__(
        self,
        smiles: Sequence[str],
        labels: np.ndarray,
        row_ids: np.ndarray,
        table: pd.DataFrame | None = None,
    ) -> SplitIndices:
        n = _n_items(smiles, labels, row_ids)
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(smiles):
            groups.setdefault(scaffold_of(s, self.include_chirality), []).append(i)
        sets = list(groups.values())  # in order of first appearance
        n_train, n_val, n_test = part_sizes(self.sizes, n)
        if self.balanced:
            rng = np.random.default_rng(self.seed)
            big_above = min(n_val, n_test) / 2  # bigger than half of val or of test
            big = [g for g in sets if len(g) > big_above]
            small = [g for g in sets if len(g) <= big_above]
            sets = [big[i] for i in rng.permutation(len(big))]
            sets += [small[i] for i in rng.permutation(len(small))]
        else:
            sets.sort(key=len, reverse=True)  # stable: ties keep first-appearance order
        parts: tuple[list[int], list[int], list[int]] = ([], [], [])
        for group in sets:
            if len(parts[0]) + len(group) <= n_train:
                parts[0].extend(group)
            elif len(parts[1]) + len(group) <= n_val:
                parts[1].extend(group)
            else:
                parts[2].extend(group)
        return SplitIndices(*(np.array(p, dtype=np.int64) for p in parts))
