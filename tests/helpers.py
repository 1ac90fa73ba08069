"""Helpers shared by the property tests: rotations, node/edge relabelling, invariance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.nn.output import EncoderOutput

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


def small_encoder(
    cls: type[nn.Module],
    batch: GraphBatch,
    *,
    warmup: int = 3,
    prepare: Callable[[nn.Module], None] | None = None,
    **kwargs,
) -> nn.Module:
    """A float64 encoder ``cls(node_dim, edge_dim, **kwargs)`` in eval mode, seeded.

    ``prepare`` (under no_grad, before the warm-up) moves chosen weights off their
    initialisation; ``warmup`` training-mode passes move the batch-norm running statistics
    off their defaults.
    """
    torch.manual_seed(0)
    encoder = cls(batch.x.shape[1], batch.edge_attr.shape[1], **kwargs).double()
    with torch.no_grad():
        if prepare is not None:
            prepare(encoder)
        for _ in range(warmup):
            encoder(batch)
    return encoder.eval()


# --- E(3): rigid motions and mirror images ----------------------------------------------

MIRROR = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)


def moved(batch: GraphBatch, rotation: Tensor, translation: Tensor) -> GraphBatch:
    """The batch with its coordinates rotated (``[3, 3]``) and then translated (``[3]``)."""
    return replace(batch, pos=batch.pos @ rotation.T + translation)


def signed_volume(pos: Tensor) -> Tensor:
    """Handedness of alanine's stereocentre (atom 1; neighbours 0 = CH3, 2 = N, 3 = COOH)."""
    return torch.linalg.det(torch.stack([pos[0] - pos[1], pos[2] - pos[1], pos[3] - pos[1]]))


def assert_same_output(
    actual: EncoderOutput, expected: EncoderOutput, atol: float, pos: Tensor | None = None
) -> None:
    """Node and graph states equal within ``atol`` (no relative slack); coordinates too
    when ``pos`` (the expected coordinates) is given."""
    torch.testing.assert_close(actual.node, expected.node, rtol=0, atol=atol)
    torch.testing.assert_close(actual.graph, expected.graph, rtol=0, atol=atol)
    if pos is not None:
        torch.testing.assert_close(actual.pos, pos, rtol=0, atol=atol)


def assert_equivariant(
    encoder: Callable[[GraphBatch], EncoderOutput],
    batch: GraphBatch,
    atol: float,
    seeds: range = range(3),
) -> None:
    """Rotating (uniform over SO(3), one per seed) and translating (by ~10 Å) the input
    coordinates leaves node and graph states, and rotates and translates output
    coordinates when the encoder returns any."""
    generator = torch.Generator().manual_seed(0)
    out = encoder(batch)
    for seed in seeds:
        rotation = random_rotation(seed)
        shift = 10 * torch.randn(3, generator=generator, dtype=torch.float64)
        expected_pos = None if out.pos is None else out.pos @ rotation.T + shift
        assert_same_output(encoder(moved(batch, rotation, shift)), out, atol, expected_pos)


def assert_blind_to_mirror_images(
    encoder: Callable[[GraphBatch], EncoderOutput],
    left: GraphBatch,
    right: GraphBatch,
    atol: float,
) -> None:
    """An E(3)-invariant encoder: the mirror image of enantiomer ``left`` (which has
    ``right``'s handedness) gives ``left``'s outputs (output coordinates reflected), so the
    two enantiomers differ to it only through the chiral tags of their node features."""
    mirrored = replace(left, pos=left.pos * MIRROR)
    # the mirrored L conformer has D's handedness (the ETKDG conformers respect the tags)
    assert signed_volume(left.pos) * signed_volume(right.pos) < 0
    assert signed_volume(mirrored.pos) * signed_volume(right.pos) > 0
    out = encoder(left)
    assert_same_output(encoder(mirrored), out, atol, None if out.pos is None else out.pos * MIRROR)
    assert not torch.equal(left.x, right.x)
    assert (encoder(right).graph - out.graph).abs().max() > 1e-4
    assert_same_output(
        encoder(replace(mirrored, x=right.x)), encoder(replace(left, x=right.x)), atol
    )


class TensorStep(nn.Module):
    """Encoder → a scalar loss over the real graphs, as a function of tensors only (what
    a CUDA graph replays). The padding graph is left out, as the masked training loss
    leaves it out: its one node receives every padding self-loop, so its states are large.
    Output coordinates, where the encoder gives them, enter the loss for real nodes.
    """

    def __init__(self, encoder: nn.Module, num_graphs: int, num_real: int) -> None:
        super().__init__()
        self.encoder, self.num_graphs, self.num_real = encoder, num_graphs, num_real

    def forward(self, x, pos, src, dst, edge_attr, graph, node_mask) -> Tensor:
        b = GraphBatch(x, src, dst, edge_attr, graph, self.num_graphs, pos, node_mask=node_mask)
        out = self.encoder(b)
        loss = out.graph[: self.num_real].square().sum()
        if out.pos is not None:
            loss = loss + (out.pos.square().sum(-1) * node_mask.to(out.pos.dtype)).sum()
        return loss


def assert_cuda_graph_step_matches_eager(
    encoder: nn.Module, batch: GraphBatch, num_real: int
) -> None:
    """One training step (loss and gradients) replayed as a CUDA graph equals the eager one."""
    step = TensorStep(encoder, batch.num_graphs, num_real=num_real)
    inputs = (batch.x, batch.pos, batch.src, batch.dst, batch.edge_attr, batch.batch)
    inputs = (*inputs, batch.node_mask)
    saved = {k: v.clone() for k, v in encoder.state_dict().items()}
    graphed = torch.cuda.make_graphed_callables(step, inputs)
    encoder.load_state_dict(saved)  # capture's warm-up moved the running statistics
    results = []
    for fn in (step, graphed):
        encoder.zero_grad()
        loss = fn(*inputs)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in encoder.parameters()]))
        encoder.load_state_dict(saved)
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-10, atol=0)
    # float64 atomics sum in any order: noise relative to the largest gradient (some are
    # exactly zero in exact arithmetic, e.g. a bias just before batch norm)
    scale = max(float(g.abs().max()) for g in results[0][1])
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-8, atol=1e-12 * scale)
