"""PDB text before Biopython reads it: segment IDs as chains, duplicate residues refused.

CHARMM and NAMD write PDB files with blank chain IDs and the segment ID in columns 73-76
(``PROA``, ``PROB``); a homodimer's two segments then share chain and residue numbers,
and a parser that goes by chain ID alone would merge them into one chain. Here each
segment of a blank chain becomes a chain of its own, named after the segment, and a
residue id (chain, number, insertion code) that comes back after another residue is
refused rather than merged.
"""

from __future__ import annotations

from molgraph.errors import StructureError

_COORDINATES = ("ATOM  ", "HETATM")
# one-character chain ids Biopython reads; free ones stand in for segments while parsing
_PLACEHOLDERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def segments_as_chains(text: str, source: str) -> tuple[str, dict[str, str], list[str]]:
    """``text`` with each segment of a blank chain under a free one-character chain id,
    the map placeholder → segment ID, and a note per renamed segment.

    Raises
    ------
    StructureError
        More segments than free chain ids, or a residue id repeated within a chain.
    """
    lines = text.splitlines(keepends=True)
    records = [i for i, line in enumerate(lines) if line.startswith(_COORDINATES)]
    used = {lines[i][21:22] for i in records}
    segments = list(dict.fromkeys(
        lines[i][72:76].strip() for i in records
        if lines[i][21:22].strip() == "" and lines[i][72:76].strip()
    ))  # fmt: skip
    free = [c for c in _PLACEHOLDERS if c not in used]
    if len(segments) > len(free):
        raise StructureError(source, f"{len(segments)} segments: too many to read as chains")
    placeholder = dict(zip(segments, free, strict=False))
    for i in records:
        line = lines[i]
        segment = line[72:76].strip()
        if line[21:22].strip() == "" and segment:
            lines[i] = line[:21] + placeholder[segment] + line[22:]
    _refuse_repeats(lines, source, {v: k for k, v in placeholder.items()})
    notes = [f"blank chain IDs: segment {s} read as chain {s}" for s in segments]
    return "".join(lines), {v: k for k, v in placeholder.items()}, notes


def _refuse_repeats(records: list[str], source: str, names: dict[str, str]) -> None:
    """A residue id that reappears after other residues of its chain within one model: two
    residues would be merged into one, so refuse (a residue's atoms are contiguous)."""
    seen: set[tuple[str, str, str, str]] = set()
    previous = None
    for line in records:
        if line.startswith("MODEL"):
            seen, previous = set(), None
        if not line.startswith(_COORDINATES):
            continue
        # Biopython's residue id: hetero residues (waters, ligands) apart from ATOM ones
        hetero = line[17:20].strip() if line.startswith("HETATM") else ""
        key = (line[21:22], line[22:26].strip(), line[26:27].strip(), hetero)
        if key == previous:
            continue
        if key in seen:
            chain = names.get(key[0], key[0]).strip() or "(blank)"
            raise StructureError(
                source,
                f"residue {key[1]}{key[2]} of chain {chain} appears twice, apart: two residues "
                "with one id (a second copy without its own chain or segment ID?); give each "
                "copy its own chain ID",
            )
        seen.add(key)
        previous = key
