"""Typed errors. Each names the item it failed on and the reason."""

from __future__ import annotations


class MolgraphError(Exception):
    """Base class of molgraph's own errors."""


class FeaturizationError(MolgraphError, ValueError):
    """An input (a SMILES string, a molecule, a file) could not be turned into a graph.

    Parameters
    ----------
    item
        The input as given (SMILES string, file path, record id).
    reason
        Why it failed, in words a user can act on.
    """

    def __init__(self, item: object, reason: str) -> None:
        self.item = item
        self.reason = reason
        super().__init__(f"{item!r}: {reason}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.item, self.reason))


class ConfigError(MolgraphError, ValueError):
    """Choices that cannot work together, found before any training starts."""


class CheckpointError(MolgraphError, ValueError):
    """A checkpoint or bundle that cannot be loaded safely or is not molgraph's."""


class StructureError(FeaturizationError):
    """A PDB/mmCIF file that cannot be turned into a residue graph (``item`` = the path)."""


class ESMWeightsError(CheckpointError):
    """ESM weights that cannot be found, or a file that cannot be loaded safely as them.

    The message names every path and URL tried (or the file and what it asked for) and
    how to point molgraph at local weights (``esm.path=...``).
    """


class InputError(MolgraphError, ValueError):
    """An input file (or standard input, ``"-"``) that cannot be read as molecules.

    Parameters
    ----------
    path
        The input as given (``"-"`` for standard input).
    reason
        What is wrong with it and, where possible, how to fix it.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.reason))
