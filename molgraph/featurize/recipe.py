"""Featurizers from their recipes: the ``to_dict()`` stored in caches, checkpoints and
bundles names its class by ``kind``."""

from __future__ import annotations

from typing import Any

from molgraph.featurize.molecule import MoleculeFeaturizer
from molgraph.featurize.protein import ProteinFeaturizer

#: Recipe ``kind`` → featurizer class.
FEATURIZER_KINDS: dict[str, type[MoleculeFeaturizer] | type[ProteinFeaturizer]] = {
    "molecule": MoleculeFeaturizer,
    "protein": ProteinFeaturizer,
}


def featurizer_from_dict(d: dict[str, Any]) -> MoleculeFeaturizer | ProteinFeaturizer:
    """The featurizer a recipe's ``to_dict()`` describes (its ``kind`` picks the class).

    Raises
    ------
    ValueError
        A missing or unknown ``kind`` (or a recipe that is not a dict).
    """
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in FEATURIZER_KINDS:
        known = ", ".join(FEATURIZER_KINDS)
        raise ValueError(f"unknown featurizer kind {kind!r}; known: {known}")
    return FEATURIZER_KINDS[kind].from_dict(d)
