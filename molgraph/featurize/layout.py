"""Named column blocks of feature matrices, and the protein featurizer's layout.

A featurizer's output columns are declared once, as :class:`Columns`; its widths, the
columns other code reads (e.g. the residue-type one-hot) and the encoding all derive
from that declaration.
"""

from __future__ import annotations

from dataclasses import dataclass

from molgraph.arrays import GraphArrays
from molgraph.featurize.residues import RESIDUE_TYPES

#: Sequence separations are clipped to [-32, 32]: 65 one-hot columns.
SEQUENCE_BUCKETS = 32
#: Node-vector channels of residue graphs, in order.
VECTOR_CHANNELS = ("previous_ca", "next_ca", "virtual_cb")


@dataclass(frozen=True)
class Columns:
    """Named, contiguous column blocks of a feature matrix, in order (a block may be empty)."""

    blocks: tuple[tuple[str, int], ...]

    @property
    def width(self) -> int:
        return sum(width for _, width in self.blocks)

    def __getitem__(self, name: str) -> slice:
        start = 0
        for block, width in self.blocks:
            if block == name:
                return slice(start, start + width)
            start += width
        raise KeyError(f"no column block {name!r}; blocks: {[b for b, _ in self.blocks]}")


@dataclass(frozen=True)
class ProteinLayout:
    """Where each protein feature lives, from the featurizer's settings.

    Node features ``x``
        ``residue_type``: 21 one-hot (20 + unknown; 22 with ``stop_residue``, the last
        column a stop/truncation type for nonsense variants); ``dihedrals``: sin, cos of φ, ψ, ω
        (zero where masked); ``dihedral_mask``: 3, 1 where φ, ψ, ω are defined;
        ``bfactor``: the CA B-factor / 100 (pLDDT / 100 for predicted models), one column
        if ``bfactor`` else none. φ_i = C(i-1) N CA C, ψ_i = N CA C N(i+1),
        ω_i = CA C N(i+1) CA(i+1); an angle needs all its atoms and a peptide bond (same
        chain, C-N <= 2 Å).
    Node vectors ``[R, 3, 3]`` (:data:`VECTOR_CHANNELS`)
        Unit vectors to the previous and the next CA (zero at chain ends and breaks,
        CA-CA > 4.2 Å), and to the ideal virtual Cβ (zero without N or C).
    Edge features ``edge_attr`` of an edge ``src → dst``
        ``distance_rbf``: ``rbf_bins`` Gaussian RBF of the CA-CA distance on
        [0, ``rbf_max``] Å; ``separation``: 65 one-hot of the signed sequence separation
        ``dst - src`` (position within the chain among kept residues, so insertion codes
        count as residues) clipped to [-32, 32], all zero between chains; ``same_chain``:
        1; ``direction``: 3, ``dst``'s CA in ``src``'s frame; ``orientation``: 4,
        quaternion (w >= 0) of the rotation from ``src``'s frame to ``dst``'s;
        ``edge_rules``: one column per rule in ``edges``, 1 where the rule produced the
        edge. Frame features are zero where a frame is missing (no N or C).
    """

    node: Columns
    edge: Columns
    vectors: tuple[str, ...] = VECTOR_CHANNELS

    @classmethod
    def of(
        cls, rbf_bins: int, edge_rules: int, bfactor: bool, stop_residue: bool = False
    ) -> ProteinLayout:
        node = (
            ("residue_type", len(RESIDUE_TYPES) + 1 + int(stop_residue)),
            ("dihedrals", 6),
            ("dihedral_mask", 3),
            ("bfactor", int(bfactor)),
        )
        edge = (
            ("distance_rbf", rbf_bins),
            ("separation", 2 * SEQUENCE_BUCKETS + 1),
            ("same_chain", 1),
            ("direction", 3),
            ("orientation", 4),
            ("edge_rules", edge_rules),
        )
        return cls(Columns(node), Columns(edge))

    def empty(self) -> GraphArrays:
        """The arrays of zero graphs (float32 features, int64 indices)."""
        vectors = (len(self.vectors), 3)
        return GraphArrays.empty(self.node.width, self.edge.width, pos=(3,), node_vectors=vectors)
