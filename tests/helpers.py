"""Helpers shared by the property tests: rotations, node/edge relabelling, invariance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from molgraph.batch import GraphBatch

ESOL_TARGET = "measured log solubility in mols per litre"

#: Hydra overrides that make a training run take seconds (tests only).
TINY_TRAINING = (
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "trainer.enable_progress_bar=false",
    "encoder.hidden_dim=32",
    "encoder.num_layers=2",
    "model.head.hidden_dim=32",
    "num_workers=1",
)


@dataclass(frozen=True)
class SmilesFixtures:
    """One SMILES for each awkward case the featurizers and batches must handle."""

    single_atom: str = "C"  # one node, no edges
    salt: str = "[Na+].[Cl-]"  # two one-atom fragments, no bonds
    aromatic: str = "c1ccccc1O"  # phenol: aromatic ring and an exocyclic O
    enantiomers: tuple[str, str] = ("C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O")  # L/D-alanine
    invalid: str = "C1CC(("  # unclosed ring and branches: RDKit cannot parse it

    @property
    def valid(self) -> tuple[str, ...]:
        return (self.single_atom, self.salt, self.aromatic, *self.enantiomers)


def random_rotation(seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """A proper rotation ``[3, 3]`` (orthogonal, det +1), uniform over SO(3) for a seed.

    QR of a Gaussian matrix, with the signs of R's diagonal moved into Q (which makes the
    factorisation unique and Q Haar-distributed), then one column flipped if Q is a
    reflection.
    """
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def within_graph_permutation(batch: GraphBatch, seed: int) -> Tensor:
    """A random node order ``[N]`` that shuffles nodes only inside their own graph.

    Assumes the nodes of each graph are contiguous (as collate and PackedGraphs give).
    """
    generator = torch.Generator().manual_seed(seed)
    counts = torch.bincount(batch.batch, minlength=batch.num_graphs)
    offsets = torch.cumsum(counts, 0) - counts
    return torch.cat(
        [
            start + torch.randperm(int(n), generator=generator)
            for start, n in zip(offsets.tolist(), counts.tolist(), strict=True)
        ]
    )


def permute_batch_nodes(batch: GraphBatch, perm: Tensor) -> GraphBatch:
    """The same graphs with node ``i`` of the result being node ``perm[i]`` of ``batch``.

    Node tensors (x, pos, batch) are reordered; edge endpoints are renamed through the
    inverse permutation so every edge still joins the same atoms.
    """
    perm = torch.as_tensor(perm, dtype=torch.long)
    assert torch.equal(torch.sort(perm).values, torch.arange(batch.num_nodes)), "not a permutation"
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.shape[0])
    return replace(
        batch,
        x=batch.x[perm],
        pos=None if batch.pos is None else batch.pos[perm],
        batch=batch.batch[perm],
        src=inverse[batch.src],
        dst=inverse[batch.dst],
    )


def permute_batch_edges(batch: GraphBatch, perm: Tensor) -> GraphBatch:
    """The same graphs with edge ``i`` of the result being edge ``perm[i]`` of ``batch``."""
    perm = torch.as_tensor(perm, dtype=torch.long)
    assert torch.equal(torch.sort(perm).values, torch.arange(batch.num_edges)), "not a permutation"
    return replace(batch, src=batch.src[perm], dst=batch.dst[perm], edge_attr=batch.edge_attr[perm])


def assert_invariant(
    fn: Callable[[GraphBatch], Tensor],
    batch: GraphBatch,
    transformed_batch: GraphBatch,
    atol: float,
) -> None:
    """``fn`` gives the same output (within ``atol``, no relative slack) on both batches."""
    expected, actual = fn(batch), fn(transformed_batch)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0.0)
