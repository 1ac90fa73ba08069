"""Variants of one protein: mutation strings and full sequences → residue-type rows.

A mutation is written ``<wild type><position><mutant>`` in one-letter codes, e.g.
``V39A``; a variant joins mutations with ``:``, ``;``, ``,`` or spaces (``V39A:D40G``,
``V39A;D40G``, ``A108D,N144D``); ``WT``, ``wt`` or an empty cell is the wild type.

Positions are read in one of two numberings (:class:`Numbering`):

- ``residue``: the residue numbers of the structure file (GB1's 2QMT numbering: V39 is
  the residue numbered 39 in ``2qmt.pdb``). Residues with an insertion code cannot be
  named this way.
- ``index``: an index into the structure's sequence, ``position - offset``: offset 0 for
  0-based positions (avGFP's ``A108D``), 1 for 1-based ones (ProteinGym's ``mutant``).

A nonsense mutation (``K156*``) follows the reader's :data:`Nonsense` policy: ``refuse``
lists the variant as a failure; ``stop`` gives the stop residue and every residue after
it the stop/truncation type :data:`~molgraph.featurize.residues.STOP` (a one-hot column
of featurizers built with ``stop_residue=True``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from molgraph.errors import ConfigError, FeaturizationError
from molgraph.featurize.residues import ALPHABET, STOP, STOP_LETTER, UNKNOWN

Numbering = Literal["residue", "index"]
#: What a nonsense mutation (``*``) becomes: the stop/truncation type, or a failed row.
Nonsense = Literal["stop", "refuse"]
NONSENSE_POLICIES = ("stop", "refuse")
#: Residue types with the stop type: letter ``LETTERS[i]`` is residue type i.
LETTERS = ALPHABET + STOP_LETTER

_WILD_TYPE = {"", "wt", "wildtype", "wild_type", "wild-type"}
_SEPARATORS = re.compile(r"[:;,\s]+")
_MUTATION = re.compile(r"([A-Z])(-?\d+)([A-Z*])")
# byte → residue-type index; 255 for letters outside the alphabet
_LOOKUP = np.full(256, 255, dtype=np.uint8)
_LOOKUP[np.frombuffer(ALPHABET.encode(), np.uint8)] = np.arange(len(ALPHABET))
_LOOKUP[ord(STOP_LETTER)] = STOP


@dataclass(frozen=True)
class Mutation:
    """One substitution: ``wild_type`` at ``position`` becomes ``mutant``."""

    wild_type: str
    position: int
    mutant: str


def parse_mutations(text: str) -> tuple[Mutation, ...]:
    """Mutations of a variant string; ``()`` for the wild type.

    Raises
    ------
    FeaturizationError
        A part is not ``<letter><number><letter or *>``, or a position appears twice.
    """
    parts = [p for p in _SEPARATORS.split(str(text).strip()) if p]
    if not parts or (len(parts) == 1 and parts[0].lower() in _WILD_TYPE):
        return ()
    mutations = []
    for part in parts:
        match = _MUTATION.fullmatch(part)
        if match is None:
            raise FeaturizationError(
                text, f"{part!r} is not a mutation like V39A (wild type, position, mutant)"
            )
        mutations.append(Mutation(match[1], int(match[2]), match[3]))
    positions = [m.position for m in mutations]
    repeated = sorted({p for p in positions if positions.count(p) > 1})
    if repeated:
        raise FeaturizationError(text, f"position(s) {repeated} mutated more than once")
    return tuple(mutations)


def residue_indices(sequence: str) -> np.ndarray:
    """Residue-type index of each letter of ``sequence`` (``[R]`` uint8, 255 if unknown;
    ``*`` is :data:`STOP`)."""
    return _LOOKUP[np.frombuffer(sequence.upper().encode("ascii", "replace"), np.uint8)]


@dataclass(frozen=True)
class VariantReader:
    """Turns mutation strings or sequences into rows of residue types of one protein.

    Parameters
    ----------
    sequence
        The wild-type sequence as the structure gives it (one letter per residue).
    numbers
        Residue number of each residue, ``[R]`` (used with ``numbering="residue"``).
    insertion_codes
        Insertion code of each residue, ``[R]`` (``""`` or ``" "`` for none).
    numbering, offset
        How mutation positions are read (see the module docstring).
    nonsense
        ``refuse`` (nonsense variants fail) or ``stop`` (truncation residue type).
    """

    sequence: str
    numbers: Sequence[int]
    insertion_codes: Sequence[str]
    numbering: Numbering = "residue"
    offset: int = 0
    nonsense: Nonsense = "refuse"

    def __post_init__(self) -> None:
        if self.numbering not in ("residue", "index"):
            raise ConfigError(f"numbering must be residue or index, got {self.numbering!r}")
        if self.nonsense not in NONSENSE_POLICIES:
            raise ConfigError(f"nonsense must be stop or refuse, got {self.nonsense!r}")
        if not len(self.sequence) == len(self.numbers) == len(self.insertion_codes):
            raise ConfigError("sequence, numbers and insertion codes differ in length")

    @property
    def wild_type(self) -> np.ndarray:
        """Residue types of the wild type, ``[R]`` uint8 (unknown letters → 20)."""
        types = residue_indices(self.sequence)
        return np.where(types == 255, UNKNOWN, types).astype(np.uint8)

    def _index(self) -> dict[int, int]:
        """Sequence index of each position that a mutation may name."""
        if self.numbering == "index":
            return {i + self.offset: i for i in range(len(self.sequence))}
        plain = [
            (int(n), i)
            for i, (n, code) in enumerate(zip(self.numbers, self.insertion_codes, strict=True))
            if str(code).strip() == ""
        ]
        counts: dict[int, int] = {}
        for n, _ in plain:
            counts[n] = counts.get(n, 0) + 1
        return {n: i for n, i in plain if counts[n] == 1}  # repeated numbers: ambiguous

    def from_mutations(self, variants: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
        """Residue types ``[V, R]`` uint8 of each variant string, and the reason each
        refused variant (by position in ``variants``) was refused; refused rows hold the
        wild type."""
        wild_type, index = self.wild_type, self._index()
        types = np.tile(wild_type, (len(variants), 1))
        where = "residue number" if self.numbering == "residue" else f"index (offset {self.offset})"
        errors: dict[int, str] = {}
        for row, text in enumerate(variants):
            try:
                mutations = parse_mutations(text)
            except FeaturizationError as error:
                errors[row] = error.reason
                continue
            for m in mutations:
                i = index.get(m.position)
                if i is None:
                    errors[row] = (
                        f"{m.wild_type}{m.position}{m.mutant}: no residue with {where} {m.position} in the structure"
                    )
                    break
                if self.sequence[i] != m.wild_type:
                    errors[row] = (
                        f"{m.wild_type}{m.position}{m.mutant}: the structure has "
                        f"{self.sequence[i]} at {where} {m.position}, not {m.wild_type}"
                    )
                    break
                reason = self._refused(m)
                if reason:
                    errors[row] = reason
                    break
                types[row, i] = LETTERS.index(m.mutant)
            if row in errors:
                types[row] = wild_type
            else:
                _truncate(types[row])
        return types, errors

    def _refused(self, m: Mutation) -> str | None:
        """Why mutation ``m``'s mutant residue cannot be read, or None."""
        if m.mutant == STOP_LETTER and self.nonsense == "refuse":
            return (
                f"{m.wild_type}{m.position}{m.mutant} is a stop codon: refused (nonsense="
                "refuse; nonsense=stop reads it as a truncation residue type)"
            )
        if m.mutant not in ALPHABET[:UNKNOWN] + STOP_LETTER:
            return f"{m.wild_type}{m.position}{m.mutant}: unknown residue type {m.mutant!r}"
        return None

    def from_sequences(self, sequences: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
        """As :meth:`from_mutations`, for full sequences (one letter per structure
        residue; ``X`` marks an unknown residue type)."""
        wild_type = self.wild_type
        types = np.tile(wild_type, (len(sequences), 1))
        errors: dict[int, str] = {}
        for row, sequence in enumerate(sequences):
            sequence = "" if sequence is None else str(sequence).strip()
            if len(sequence) != len(wild_type):
                errors[row] = (
                    f"sequence has {len(sequence)} residues, the structure {len(wild_type)}"
                )
                continue
            row_types = residue_indices(sequence)
            refused = (row_types == 255) | ((row_types == STOP) & (self.nonsense == "refuse"))
            bad = np.flatnonzero(refused)
            if len(bad):
                errors[row] = f"unknown residue letter {sequence[bad[0]]!r} at index {bad[0]}"
                continue
            types[row] = row_types
            _truncate(types[row])
        return types, errors


def _truncate(types: np.ndarray) -> None:
    """Give every residue after the first stop the stop type, in place."""
    stops = np.flatnonzero(types == STOP)
    if len(stops):
        types[stops[0] :] = STOP


def sequences_of(types: np.ndarray) -> list[str]:
    """One-letter sequences of residue-type rows ``[V, R]`` (``*`` for the stop type)."""
    letters = np.frombuffer(LETTERS.encode(), np.uint8)[np.asarray(types)]
    return [row.tobytes().decode() for row in letters]
