"""Protein language-model (ESM) embeddings fused with a graph encoder.

Per-residue embeddings reach the model as ``batch.node_embeddings`` (precomputed with a
frozen ESM and cached on disk), or are computed in the forward pass by
:class:`ESMResidueEmbedding` when the last ESM layers are fine-tuned. Node ``i`` is
residue ``i`` of its graph's sequence (the residue featurizer guarantees it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import esm
import torch
from esm.model.esm2 import ESM2
from torch import Tensor, nn

from molgraph.batch import GraphBatch
from molgraph.featurize.residues import RESIDUE_TYPES
from molgraph.nn.output import EncoderOutput
from molgraph.nn.scatter import count, scatter_mean

FusionMode = Literal["early", "late", "esm_only"]
Combine = Literal["concat", "gated"]


class ESMResidueEmbedding(nn.Module):
    """An ESM-2 model run on each graph's sequence, read from the residue-type one-hot
    columns of ``x``; only its last ``finetune_layers`` layers are trained.

    Shapes
    ------
    GraphBatch (``N`` nodes, nodes of a graph contiguous) → ``[N, embed_dim]``, the
    representation after ``layer`` (BOS/EOS dropped).
    """

    def __init__(
        self,
        num_layers: int,
        embed_dim: int,
        attention_heads: int,
        residue_columns: tuple[int, int],
        layer: int = -1,
        finetune_layers: int = 1,
    ) -> None:
        super().__init__()
        alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
        self.model = ESM2(num_layers, embed_dim, attention_heads, alphabet)
        self.layer = num_layers if layer < 0 else layer
        if not 0 < self.layer <= num_layers or not 0 <= finetune_layers <= self.layer:
            raise ValueError(
                f"layer {layer} / finetune_layers {finetune_layers} do not fit {num_layers} layers"
            )
        self.embed_dim, self.residue_columns = embed_dim, tuple(residue_columns)
        letters = [*RESIDUE_TYPES, "X"]  # the featurizer's order; its last column = unknown
        if self.residue_columns[1] - self.residue_columns[0] != len(letters):
            raise ValueError(f"residue columns {residue_columns} do not hold {len(letters)} types")
        tokens = torch.tensor([alphabet.get_idx(a) for a in letters])
        self.register_buffer("token_of_type", tokens, persistent=False)
        self.bos, self.eos, self.pad = alphabet.cls_idx, alphabet.eos_idx, alphabet.padding_idx
        trained = {f"layers.{i}." for i in range(self.layer - finetune_layers, self.layer)}
        for name, p in self.model.named_parameters():
            top = self.layer == num_layers and name.startswith("emb_layer_norm_after")
            p.requires_grad_((top and finetune_layers > 0) or any(map(name.startswith, trained)))

    def forward(self, batch: GraphBatch) -> Tensor:
        start, stop = self.residue_columns
        tokens_of_nodes = self.token_of_type[batch.x[:, start:stop].argmax(1)]
        lengths = count(batch.batch, batch.num_graphs, batch.batch).long()
        offsets = torch.cumsum(lengths, 0) - lengths
        position = torch.arange(batch.num_nodes, device=batch.x.device) - offsets[batch.batch] + 1
        tokens = torch.full(
            (batch.num_graphs, int(lengths.max()) + 2), self.pad, device=batch.x.device
        )
        tokens[:, 0] = self.bos
        tokens[batch.batch, position] = tokens_of_nodes
        tokens[torch.arange(batch.num_graphs, device=tokens.device), lengths + 1] = self.eos
        out = self.model(tokens, repr_layers=[self.layer])["representations"][self.layer]
        return out[batch.batch, position]


class FusedEncoder(nn.Module):
    """A graph encoder fused with per-residue language-model embeddings.

    Modes (LM-GVP's early and late fusion, and a sequence-only baseline):

    - ``early``: :math:`x_i \\leftarrow [x_i, W e_i]`, the projected embedding of residue
      ``i`` appended to its node features before the encoder (whose ``in_node_dim`` must
      include ``proj_dim``);
    - ``late``: the mean embedding :math:`\\bar e` of each graph, projected, combined with
      the graph embedding :math:`g`: ``concat`` gives :math:`[g, W \\bar e]`; ``gated`` gives
      :math:`g + \\sigma(U [g, W \\bar e]) \\odot V W \\bar e` (width of :math:`g`);
    - ``esm_only``: :math:`W \\bar e` alone (no graph encoder).

    Parameters
    ----------
    encoder
        GraphBatch → EncoderOutput; None for ``esm_only``.
    esm_dim
        Width ``D`` of the embeddings.
    proj_dim
        Width of the projection :math:`W` (LayerNorm, then linear).
    language_model
        Computes the embeddings in the forward pass (fine-tuning); None reads
        ``batch.node_embeddings``.

    Shapes
    ------
    GraphBatch with ``node_embeddings [N, D]`` (unless ``language_model``) →
    EncoderOutput, ``graph [G, out_dim]``.
    """

    def __init__(
        self,
        encoder: nn.Module | None,
        mode: FusionMode,
        esm_dim: int,
        proj_dim: int = 128,
        combine: Combine = "concat",
        language_model: ESMResidueEmbedding | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("early", "late", "esm_only"):
            raise ValueError(f"unknown fusion mode {mode!r}: early, late or esm_only")
        if (encoder is None) != (mode == "esm_only"):
            raise ValueError(
                f"fusion mode {mode!r} {'takes no' if encoder else 'needs an'} encoder"
            )
        if combine not in ("concat", "gated"):
            raise ValueError(f"unknown combine {combine!r}: concat or gated")
        self.encoder, self.mode, self.combine = encoder, mode, combine
        self.language_model = language_model
        self.project = nn.Sequential(nn.LayerNorm(esm_dim), nn.Linear(esm_dim, proj_dim))
        self.out_dim = proj_dim if encoder is None else encoder.out_dim
        if mode == "late" and combine == "concat":
            self.out_dim += proj_dim
        if mode == "late" and combine == "gated":
            self.gate = nn.Linear(encoder.out_dim + proj_dim, encoder.out_dim)
            self.value = nn.Linear(proj_dim, encoder.out_dim)

    def embeddings(self, batch: GraphBatch) -> Tensor:
        """Per-residue embeddings ``[N, D]`` of the batch."""
        if self.language_model is not None:
            return self.language_model(batch)
        if batch.node_embeddings is None:
            raise ValueError(
                f"{self.mode} fusion needs per-residue ESM embeddings, but this batch has "
                "none: set fusion and esm in the config (the builder attaches them)"
            )
        return batch.node_embeddings

    def forward(self, batch: GraphBatch) -> EncoderOutput:
        e = self.embeddings(batch).to(batch.x.dtype)
        if self.mode == "early":
            projected = self.project(e)
            if batch.node_mask is not None:  # padding nodes keep zero features
                projected = projected * batch.node_mask.unsqueeze(1)
            return self.encoder(replace(batch, x=torch.cat([batch.x, projected], 1)))
        pooled = self.project(scatter_mean(e, batch.batch, batch.num_graphs))
        if self.mode == "esm_only":
            return EncoderOutput(node=self.project(e), graph=pooled)
        out = self.encoder(batch)
        if self.combine == "concat":
            return replace(out, graph=torch.cat([out.graph, pooled], 1))
        gate = torch.sigmoid(self.gate(torch.cat([out.graph, pooled], 1)))
        return replace(out, graph=out.graph + gate * self.value(pooled))


@dataclass(frozen=True)
class FusionSpec:
    """How a model fuses ESM embeddings: the ``fusion`` config node's constructor, and the
    ``fusion`` entry of a recipe once the ESM facts are filled in (:meth:`with_esm`).

    Parameters
    ----------
    mode
        ``none`` (the graph encoder alone), ``early``, ``late`` or ``esm_only`` (see
        :class:`FusedEncoder`).
    proj_dim, combine
        :class:`FusedEncoder`'s projection width and late-fusion combination.
    esm_model, esm_layer, esm_dim, finetune_layers
        The ESM model's name, representation layer, width, and how many of its last
        layers train inside the model (0: embeddings are precomputed and cached).
    esm_architecture, residue_columns
        With ``finetune_layers``: ESM's (layers, width, heads), and the columns of ``x``
        holding the residue one-hot, from which the in-model ESM reads its tokens.
    """

    mode: Literal["none", "early", "late", "esm_only"] = "none"
    proj_dim: int = 128
    combine: Combine = "concat"
    esm_model: str | None = None
    esm_layer: int = -1
    esm_dim: int | None = None
    finetune_layers: int = 0
    esm_architecture: tuple[int, int, int] | None = None
    residue_columns: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("none", "early", "late", "esm_only"):
            raise ValueError(f"unknown fusion mode {self.mode!r}: none, early, late or esm_only")
        if self.combine not in ("concat", "gated"):
            raise ValueError(f"unknown combine {self.combine!r}: concat or gated")
        for name in ("esm_architecture", "residue_columns"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))

    @property
    def active(self) -> bool:
        return self.mode != "none"

    @property
    def extra_node_dim(self) -> int:
        """Node feature columns that early fusion appends before the graph encoder."""
        return self.proj_dim if self.mode == "early" else 0

    def with_esm(
        self, name: str, layer: int, finetune_layers: int, model: nn.Module, columns: slice
    ) -> FusionSpec:
        """This fusion with the facts of the ESM ``model`` it reads (``columns``: the
        residue one-hot of ``x``, read by an in-model ESM)."""
        tuned = {}
        if finetune_layers:
            tuned = {
                "esm_architecture": (model.num_layers, model.embed_dim, model.attention_heads),
                "residue_columns": (columns.start, columns.stop),
            }
        return replace(
            self, esm_model=name, esm_layer=int(layer), esm_dim=int(model.embed_dim),
            finetune_layers=int(finetune_layers), **tuned,
        )  # fmt: skip

    def language_model(self) -> ESMResidueEmbedding | None:
        """The in-model ESM (untrained) when ESM layers are fine-tuned, else None."""
        if not self.finetune_layers:
            return None
        if self.esm_architecture is None or self.residue_columns is None:
            raise ValueError("fine-tuned fusion needs esm_architecture and residue_columns")
        layers, dim, heads = self.esm_architecture
        return ESMResidueEmbedding(
            layers, dim, heads, self.residue_columns, self.esm_layer, self.finetune_layers
        )

    def encoder(
        self, encoder: nn.Module | None, language_model: ESMResidueEmbedding | None = None
    ) -> FusedEncoder:
        """``encoder`` fused as this spec says (``language_model``: an in-model ESM)."""
        if self.esm_dim is None:
            raise ValueError("fusion needs esm_dim: the ESM width (see with_esm)")
        assert self.mode != "none"
        return FusedEncoder(
            encoder, self.mode, self.esm_dim, self.proj_dim, self.combine, language_model
        )

    def to_dict(self) -> dict[str, Any]:
        """The recipe's JSON form (unset ESM architecture and columns left out)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                if v is not None or k not in ("esm_architecture", "residue_columns")}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FusionSpec:
        """From :meth:`to_dict`'s form (recipes of every molgraph version)."""
        return cls(**data)
