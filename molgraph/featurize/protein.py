"""Protein structures → residue graphs: :class:`ProteinFeaturizer`.

One node per kept amino-acid residue, in file order (see
:func:`~molgraph.featurize.structure.read_structure` for what is kept); its position is
the CA atom (Å). Features are vectorised with numpy over residues and edges (no Python
runs per residue in the feature math); where each feature lives is declared once, by
:class:`~molgraph.featurize.layout.ProteinLayout`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from molgraph.arrays import GraphArrays
from molgraph.errors import FeaturizationError
from molgraph.featurize.base import GraphFeaturizer
from molgraph.featurize.layout import SEQUENCE_BUCKETS, ProteinLayout
from molgraph.featurize.residues import (
    CA_STEP_MAX,
    PEPTIDE_BOND_MAX,
    RESIDUE_TYPES,
    residue_type_indices,
)
from molgraph.featurize.structure import Residues, read_structure
from molgraph.geometry import (
    dihedrals,
    local_frames,
    neighbour_pairs,
    norms,
    rbf,
    rotation_quaternions,
    unit_vectors,
    virtual_cb_directions,
)

# RESIDUE_TYPES, Residues and read_structure live in residues.py and structure.py, the
# layout in layout.py; they are re-exported here for ``from molgraph.featurize.protein``
__all__ = ["EDGE_RULES", "RESIDUE_TYPES", "ProteinFeaturizer", "Residues", "read_structure"]

EdgeRule = Literal["knn", "radius", "sequence"]
EDGE_RULES: tuple[str, ...] = ("knn", "radius", "sequence")
Item = str | Path | tuple[str | Path, str | Sequence[str] | None] | Residues


@dataclass(frozen=True)
class ProteinFeaturizer(GraphFeaturizer):
    """PDB / mmCIF structures → residue graphs (nodes at CA, edges by proximity and
    sequence), invariant scalar features plus rotating node vectors.

    The features, and the columns they take, are :class:`ProteinLayout`'s
    (:attr:`layout`): ``x`` has :attr:`node_dim` columns, ``edge_attr`` :attr:`edge_dim`,
    the node vectors :attr:`node_vector_dim` channels.

    Parameters
    ----------
    chains, model
        Passed to :func:`read_structure` for path inputs.
    edges
        Any of ``"knn"`` (the ``k`` nearest CAs of each residue), ``"radius"`` (CAs within
        ``radius`` Å) and ``"sequence"`` (same chain, up to ``sequence_window`` positions
        apart); their union, each edge once.
    rbf_bins, rbf_max
        Gaussian RBF of CA-CA distances: ``rbf_bins`` centres on [0, ``rbf_max``] Å.
    bfactor
        Add the CA B-factor / 100 as a node feature.
    stop_residue
        One more residue-type column: the stop/truncation type of nonsense variants
        (``MutationalScan(nonsense="stop")``). Structures never carry it.
    """

    chains: tuple[str, ...] | None = None
    model: int = 0
    edges: tuple[EdgeRule, ...] = ("knn", "sequence")
    k: int = 30
    radius: float = 10.0
    sequence_window: int = 1
    rbf_bins: int = 16
    rbf_max: float = 20.0
    bfactor: bool = False
    stop_residue: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.chains, str):
            object.__setattr__(self, "chains", (self.chains,))
        elif self.chains is not None:
            object.__setattr__(self, "chains", tuple(self.chains))
        object.__setattr__(self, "edges", tuple(self.edges))
        unknown = [e for e in self.edges if e not in EDGE_RULES]
        if not self.edges or unknown or len(set(self.edges)) != len(self.edges):
            raise ValueError(
                f"edges must be distinct choices of {', '.join(EDGE_RULES)}, got {self.edges}"
            )
        if self.k < 1 or self.radius <= 0 or self.sequence_window < 1 or self.model < 0:
            raise ValueError("k, radius and sequence_window must be positive, model >= 0")

    @cached_property
    def layout(self) -> ProteinLayout:
        """The column blocks of this featurizer's node and edge features."""
        return ProteinLayout.of(self.rbf_bins, len(self.edges), self.bfactor, self.stop_residue)

    @property
    def node_dim(self) -> int:
        return self.layout.node.width

    @property
    def edge_dim(self) -> int:
        return self.layout.edge.width

    @property
    def node_vector_dim(self) -> int:
        return len(self.layout.vectors)

    @property
    def has_coordinates(self) -> bool:
        return True

    @property
    def residue_type_columns(self) -> slice:
        """The columns of ``x`` holding the residue-type one-hot (21, or 22 with
        ``stop_residue``)."""
        return self.layout.node["residue_type"]

    # inputs -----------------------------------------------------------------------------

    def residues(self, item: Item) -> Residues:
        """Parse one input: a path, a ``(path, chains)`` pair, or :class:`Residues`."""
        if isinstance(item, Residues):
            return item
        if isinstance(item, tuple) and len(item) == 2:
            return read_structure(item[0], item[1], self.model)
        if isinstance(item, str | Path):
            return read_structure(item, self.chains, self.model)
        raise FeaturizationError(
            item, f"expected a path, (path, chains) or Residues, got {type(item).__name__}"
        )

    # features ---------------------------------------------------------------------------

    def encode_residues(
        self, residues: Residues, sequence: str | None = None, *, dtype: Any = np.float32
    ) -> GraphArrays:
        """One graph's arrays (with ``pos`` and ``node_vectors``), as :meth:`encode`
        packs them.

        ``sequence`` (one letter per residue) replaces the residue types, e.g. for the
        variants of one structure; ``dtype`` is the float type of the features (computed in
        float64 in any case).
        """
        seq = residues.sequence if sequence is None else sequence
        if len(seq) != len(residues) or not seq.isascii():
            raise FeaturizationError(
                residues.source,
                f"sequence of length {len(seq)} does not match the {len(residues)} residues",
            )
        _, chain = np.unique(residues.chain_ids, return_inverse=True)
        x, vectors = self._node_features(residues, residue_type_indices(seq), chain)
        src, dst, edge_attr = self._edge_features(residues, chain)
        return GraphArrays(
            x=x.astype(dtype),
            src=src,
            dst=dst,
            edge_attr=edge_attr.astype(dtype),
            node_counts=np.array([len(residues)], dtype=np.int64),
            edge_counts=np.array([len(src)], dtype=np.int64),
            pos=residues.ca.astype(dtype),
            node_vectors=vectors.astype(dtype),
        )

    def _node_features(
        self, residues: Residues, types: np.ndarray, chain: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Node features ``[R, node_dim]`` and node vectors ``[R, 3, 3]``, float64."""
        n, ca, c = (residues.backbone[:, a] for a in range(3))
        n_res, columns = len(residues), self.layout.node
        same_next = chain[1:] == chain[:-1]
        with np.errstate(invalid="ignore"):
            peptide = same_next & (norms(n[1:] - c[:-1]) <= PEPTIDE_BOND_MAX)
            ca_step = same_next & (norms(ca[1:] - ca[:-1]) <= CA_STEP_MAX)
        angles, mask = _backbone_dihedrals(n, ca, c, peptide)
        x = np.zeros((n_res, columns.width))
        x[np.arange(n_res), columns["residue_type"].start + types] = 1.0
        x[:, columns["dihedrals"]] = angles.reshape(n_res, 6)
        x[:, columns["dihedral_mask"]] = mask
        if self.bfactor:
            x[:, columns["bfactor"]] = (residues.bfactors / 100.0)[:, None]
        channel = {name: i for i, name in enumerate(self.layout.vectors)}
        vectors = np.zeros((n_res, len(channel), 3))
        vectors[1:, channel["previous_ca"]] = np.where(
            ca_step[:, None], unit_vectors(ca[:-1] - ca[1:]), 0.0
        )
        vectors[:-1, channel["next_ca"]] = np.where(
            ca_step[:, None], unit_vectors(ca[1:] - ca[:-1]), 0.0
        )
        vectors[:, channel["virtual_cb"]] = virtual_cb_directions(n, ca, c)
        return x, vectors

    def _edge_features(
        self, residues: Residues, chain: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edges ``src, dst`` ``[E]`` and their features ``[E, edge_dim]``, float64."""
        n, ca, c = (residues.backbone[:, a] for a in range(3))
        src, dst, rules = self._edges(ca, chain)
        columns, num_edges = self.layout.edge, len(src)
        frames, valid = local_frames(n, ca, c)
        diff = ca[dst] - ca[src]
        position = _positions(chain)
        same = (chain[src] == chain[dst]).astype(np.float64)
        offset = np.clip(position[dst] - position[src], -SEQUENCE_BUCKETS, SEQUENCE_BUCKETS)
        e = np.zeros((num_edges, columns.width))
        distance = torch.from_numpy(norms(diff))
        e[:, columns["distance_rbf"]] = rbf(distance, 0.0, self.rbf_max, self.rbf_bins).numpy()
        separation = columns["separation"].start + SEQUENCE_BUCKETS + offset
        e[np.arange(num_edges), separation] = same
        e[:, columns["same_chain"]] = same[:, None]
        e[:, columns["direction"]] = np.einsum("eji,ej->ei", frames[src], unit_vectors(diff))
        if num_edges:
            both = (valid[src] & valid[dst])[:, None]
            relative = np.einsum("eki,ekj->eij", frames[src], frames[dst])
            e[:, columns["orientation"]] = np.where(both, rotation_quaternions(relative), 0.0)
        e[:, columns["edge_rules"]] = rules
        return src, dst, e

    def _edges(self, ca: np.ndarray, chain: np.ndarray) -> tuple[np.ndarray, ...]:
        """Union of the edge rules: src, dst (sorted by dst, then src), rule multi-hot."""
        n = len(ca)
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for rule in self.edges:
            if rule == "knn":
                found.append(neighbour_pairs(ca, k=self.k))
            elif rule == "radius":
                found.append(neighbour_pairs(ca, radius=self.radius))
            else:
                found.append(_sequence_pairs(chain, self.sequence_window))
        keys = [d * n + s for s, d in found]
        unique = np.unique(np.concatenate(keys)) if n else np.zeros(0, np.int64)
        types = np.zeros((len(unique), len(self.edges)))
        for r, key in enumerate(keys):
            types[np.searchsorted(unique, key), r] = 1.0
        return unique % max(n, 1), unique // max(n, 1), types

    # batch interface --------------------------------------------------------------------

    def encode(self, items: Iterable[Item]) -> tuple[GraphArrays, list[FeaturizationError | None]]:
        """Featurize many inputs at once.

        Returns
        -------
        arrays
            Packed arrays of the inputs that succeeded.
        errors
            One entry per input: None, or the error that input raised.
        """
        graphs: list[GraphArrays] = []
        errors: list[FeaturizationError | None] = []
        for item in items:
            try:
                graphs.append(self.encode_residues(self.residues(item)))
            except FeaturizationError as exc:
                errors.append(exc)
                continue
            errors.append(None)
        if not graphs:
            graphs.append(self.layout.empty())
        return GraphArrays.concat(graphs), errors

    # recipe -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Complete settings, JSON-serialisable (cache keys, bundles)."""
        return {
            "kind": "protein",
            "chains": None if self.chains is None else list(self.chains),
            "model": self.model,
            "edges": list(self.edges),
            "k": self.k,
            "radius": self.radius,
            "sequence_window": self.sequence_window,
            "rbf_bins": self.rbf_bins,
            "rbf_max": self.rbf_max,
            "bfactor": self.bfactor,
            # only when set: recipes and cache keys of the 21-type featurizer stay as they were
            **({"stop_residue": True} if self.stop_residue else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProteinFeaturizer:
        if d.get("kind") != "protein":
            raise ValueError(f"not a protein featurizer recipe: kind={d.get('kind')!r}")
        chains = d["chains"]
        return cls(
            chains=None if chains is None else tuple(chains),
            model=int(d["model"]),
            edges=tuple(d["edges"]),
            k=int(d["k"]),
            radius=float(d["radius"]),
            sequence_window=int(d["sequence_window"]),
            rbf_bins=int(d["rbf_bins"]),
            rbf_max=float(d["rbf_max"]),
            bfactor=bool(d["bfactor"]),
            stop_residue=bool(d.get("stop_residue", False)),
        )


def _backbone_dihedrals(
    n: np.ndarray, ca: np.ndarray, c: np.ndarray, peptide: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sin, cos) of φ, ψ, ω ``[R, 3, 2]`` (zero where masked) and their masks ``[R, 3]``:
    φ_i needs residue i - 1, ψ_i and ω_i residue i + 1, each peptide-bonded to i
    (``peptide[i]``: i and i + 1 bonded), and every atom of the angle."""
    n_res = len(ca)
    angles = np.full((n_res, 3, 2), np.nan)
    angles[1:, 0] = dihedrals(c[:-1], n[1:], ca[1:], c[1:])
    angles[:-1, 1] = dihedrals(n[:-1], ca[:-1], c[:-1], n[1:])
    angles[:-1, 2] = dihedrals(ca[:-1], c[:-1], n[1:], ca[1:])
    linked = np.zeros((n_res, 3), bool)
    linked[1:, 0], linked[:-1, 1], linked[:-1, 2] = peptide, peptide, peptide
    mask = linked & np.isfinite(angles).all(-1)
    return np.where(mask[..., None], angles, 0.0), mask


def _positions(chain: np.ndarray) -> np.ndarray:
    """Position of each residue within its chain ``[R]`` (chains are contiguous)."""
    starts = np.flatnonzero(np.r_[True, chain[1:] != chain[:-1]])
    return np.arange(len(chain)) - np.repeat(starts, np.diff(np.r_[starts, len(chain)]))


def _sequence_pairs(chain: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every pair of residues 1..``window`` apart in the same chain."""
    n = len(chain)
    steps = range(1, min(window, n - 1) + 1)
    a = np.concatenate([np.arange(n - s) for s in steps] or [np.zeros(0, np.int64)])
    s = np.concatenate([np.full(n - s, s) for s in steps] or [np.zeros(0)])
    a, b = a.astype(np.int64), (a + s).astype(np.int64)
    keep = chain[a] == chain[b]
    a, b = a[keep], b[keep]
    return np.concatenate([a, b]), np.concatenate([b, a])
