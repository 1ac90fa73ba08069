"""Hu et al.'s pre-trained GINs as distributed by DGL-LifeSci → molgraph bundles.

DGL-LifeSci's ``gin_supervised_contextpred``, ``_infomax``, ``_edgepred`` and ``_masking``
are state dicts of ``dgllife.model.GIN`` (5 layers, width 300, JK ``last``) over its
``PretrainAtomFeaturizer`` / ``PretrainBondFeaturizer`` (with self-loops). Those give
category indices, which the GIN embeds and sums; molgraph's ``pretrain`` featurizer
preset gives the same categories one-hot, so each sum of embeddings is a bias-free linear
map of the one-hot columns, and the self-loop edges become the self-loop term of
:class:`~molgraph.nn.PretrainGINConv`:

- atom columns 0-117 (atomic numbers 1-118) and 118 (unknown) ← atom-type rows 0-118
  (DGL-LifeSci raises on an atom outside 1-118; molgraph embeds it with row 118);
- chirality columns ← chirality rows; the checkpoints have 3 rows, so ``CHI_OTHER``
  (DGL-LifeSci: an index error) embeds as zero;
- bond-type columns (single, double, triple, aromatic) ← rows 0-3, direction columns
  (none, end-up-right, end-down-right) ← rows 0-2; the self-loop term is bond-type row 4
  plus direction row 0, as DGL-LifeSci's self-loop features are ``(4, 0)``.

Atoms keep RDKit's input order (DGL-LifeSci's examples featurize with
``canonical_atom_order=False``; graph embeddings do not depend on the order).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from molgraph.bundles.format import write_bundle
from molgraph.errors import CheckpointError
from molgraph.featurize import MoleculeFeaturizer
from molgraph.models.recipe import ModuleSpec, Recipe
from molgraph.nn.encoders.pretrain_gin import PretrainGINEncoder
from molgraph.nn.readout import ReadoutKind

#: The pre-trained GINs DGL-LifeSci distributes (``dgllife.model.load_pretrained(name)``).
DGLLIFE_GINS = (
    "gin_supervised_contextpred",
    "gin_supervised_infomax",
    "gin_supervised_edgepred",
    "gin_supervised_masking",
)
_ATOM_COLUMNS, _CHIRAL_COLUMNS = 119, 4  # the pretrain preset's atom one-hot blocks
_BOND_COLUMNS, _DIRECTION_COLUMNS = 4, 3
_SELF_LOOP_BOND = 4
_LAYER = re.compile(r"gnn_layers\.(\d+)\.")


def read_dgllife_state(path: str | Path) -> dict[str, Tensor]:
    """The GIN state dict of a DGL-LifeSci checkpoint file (``{'model_state_dict': ...}``
    or a bare state dict), read with ``torch.load(weights_only=True)``."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a weights-only checkpoint ({exc})") from None
    if isinstance(checkpoint, dict) and "model_state_dict" in checkpoint:
        checkpoint = checkpoint["model_state_dict"]
    if not isinstance(checkpoint, dict) or "node_embeddings.0.weight" not in checkpoint:
        raise CheckpointError(f"{path}: not the state dict of a dgllife.model.GIN")
    return checkpoint


def _rows(table: Tensor, count: int, where: str) -> Tensor:
    """Embedding rows ``0..count-1`` as columns ``[d, count]``; rows the table lacks are 0."""
    if table.ndim != 2:
        raise CheckpointError(f"{where}: expected an embedding table, got shape {table.shape}")
    out = table.new_zeros(table.shape[1], count)
    n = min(count, table.shape[0])
    out[:, :n] = table[:n].T
    return out


def gin_from_dgllife(
    state_dict: dict[str, Tensor], readout: ReadoutKind = "mean"
) -> tuple[PretrainGINEncoder, MoleculeFeaturizer, dict[str, Any]]:
    """A :class:`PretrainGINEncoder` holding the weights of a ``dgllife.model.GIN``
    state dict, the featurizer it expects (``pretrain`` preset) and its constructor
    arguments (for a recipe).

    Supports JK ``last`` (every distributed checkpoint); ``readout`` pools the node
    states into graph embeddings.
    """
    s = state_dict
    try:
        atom, chiral = s["node_embeddings.0.weight"], s["node_embeddings.1.weight"]
        num_layers = 1 + max(int(m.group(1)) for k in s if (m := _LAYER.match(k)))
    except (KeyError, ValueError):
        raise CheckpointError("not the state dict of a dgllife.model.GIN") from None
    if atom.shape[0] < _ATOM_COLUMNS or len([k for k in s if k.startswith("node_emb")]) != 2:
        raise CheckpointError(
            f"expected atom-type and chirality embeddings (>= {_ATOM_COLUMNS} atom types), "
            f"got {[tuple(v.shape) for k, v in s.items() if k.startswith('node_emb')]}"
        )
    dim = atom.shape[1]
    featurizer = MoleculeFeaturizer.preset("pretrain")
    arguments: dict[str, Any] = {
        "in_node_dim": featurizer.node_dim,
        "in_edge_dim": featurizer.edge_dim,
        "hidden_dim": dim,
        "num_layers": num_layers,
        "dropout": 0.0,
        "jk": "last",
        "readout": readout,
        "norm": "batch" if "gnn_layers.0.bn.weight" in s else "none",
    }
    mapped = {
        "node_proj.weight": torch.cat(
            [_rows(atom, _ATOM_COLUMNS, "atom types"), _rows(chiral, _CHIRAL_COLUMNS, "chirality")],
            dim=1,
        )
    }
    for i in range(num_layers):
        mapped.update(_layer_weights(s, i, batch_norm=arguments["norm"] == "batch"))
    encoder = PretrainGINEncoder(**arguments)
    try:
        encoder.load_state_dict(mapped)
    except RuntimeError as exc:
        raise CheckpointError(
            f"the dgllife GIN weights do not map onto molgraph's: {exc}"
        ) from None
    return encoder.eval(), featurizer, arguments


def _layer_weights(s: dict[str, Tensor], i: int, batch_norm: bool) -> dict[str, Tensor]:
    """molgraph's weights of GIN layer ``i`` from the dgllife state dict ``s``."""
    p, mapped = f"gnn_layers.{i}.", {}
    bond, direction = s[p + "edge_embeddings.0.weight"], s[p + "edge_embeddings.1.weight"]
    if bond.shape[0] <= _SELF_LOOP_BOND:
        raise CheckpointError(f"layer {i}: the bond-type table has no self-loop row")
    mapped[f"layers.{i}.edge_proj.weight"] = torch.cat(
        [_rows(bond, _BOND_COLUMNS, "bond types"), _rows(direction, _DIRECTION_COLUMNS, "")],
        dim=1,
    )
    mapped[f"layers.{i}.self_loop"] = bond[_SELF_LOOP_BOND] + direction[0]
    for theirs, ours in (("mlp.0", "mlp.0"), ("mlp.2", "mlp.3")):
        for kind in ("weight", "bias"):
            mapped[f"layers.{i}.{ours}.{kind}"] = s[f"{p}{theirs}.{kind}"]
    if batch_norm:
        for kind in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            mapped[f"norms.{i}.{kind}"] = s[f"{p}bn.{kind}"]
    return mapped


def bundle_from_dgllife(
    source: str | Path, output: str | Path, name: str | None = None, readout: ReadoutKind = "mean"
) -> Path:
    """Write an encoder bundle from a DGL-LifeSci GIN checkpoint file ``source``."""
    encoder, featurizer, arguments = gin_from_dgllife(read_dgllife_state(source), readout)
    recipe = Recipe(
        featurizer,
        ModuleSpec("molgraph.nn.PretrainGINEncoder", arguments),
        trained_on={
            "source": "DGL-LifeSci pre-trained GIN (Hu et al., ICLR 2020)",
            "name": name or Path(source).stem,
            "file": Path(source).name,
        },
    )
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    return write_bundle(output, recipe, state)
