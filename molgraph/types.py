"""Closed string choices shared across the package (a leaf: imports nothing of molgraph)."""

from __future__ import annotations

from typing import Literal

#: What a dataset's targets are: real values, or binary 0/1 labels per target.
TaskKind = Literal["regression", "classification"]

#: The column a dataset's items are written under: SMILES strings or residue sequences.
ItemName = Literal["smiles", "sequence"]

__all__ = ["ItemName", "TaskKind"]
