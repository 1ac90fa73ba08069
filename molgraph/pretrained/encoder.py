"""A bundle loaded for use: ``load_encoder(...)`` → :class:`PretrainedEncoder`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from molgraph.builder import encoder_from_recipe, model_from_recipe
from molgraph.data.dataset import featurize_all
from molgraph.errors import CheckpointError, FeaturizationError
from molgraph.featurize import featurizer_from_dict
from molgraph.models.module import PropertyModel
from molgraph.predict import graph_batches, with_esm_embeddings
from molgraph.pretrained.bundle import Bundle
from molgraph.pretrained.registry import open_bundle


class PretrainedEncoder:
    """A bundle's encoder with the featurizer it was trained with.

    Parameters
    ----------
    module
        The graph encoder, a plain ``nn.Module``: ``GraphBatch`` → ``EncoderOutput``
        (``.graph`` ``[G, out_dim]``). Use it inside another model, trainable or frozen.
    featurizer
        Inputs → graphs, exactly as in training.
    recipe
        The bundle's recipe.
    model
        The whole model when the bundle holds a task head (then :meth:`predict` works and
        embeddings are the model's, fusion included), else None.
    esm_path
        For an encoder fused with a frozen ESM: its checkpoint (else found by the
        recipe's model name in torch hub's cache, or downloaded).
    """

    def __init__(
        self,
        module: nn.Module,
        featurizer: Any,
        recipe: dict[str, Any],
        model: PropertyModel | None = None,
        esm_path: str | Path | None = None,
    ) -> None:
        self.module = module
        self.featurizer = featurizer
        self.recipe = recipe
        self.model = model
        self.esm_path = esm_path

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> PretrainedEncoder:
        recipe, where = bundle.recipe, str(bundle.path)
        try:
            featurizer = featurizer_from_dict(recipe["featurizer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: unusable featurizer recipe ({exc})") from None
        if bundle.has_head:
            model = model_from_recipe(recipe, bundle.state_dict)
            return cls(model.encoder, featurizer, recipe, model)
        module = encoder_from_recipe(recipe, where)
        prefix = "encoder."
        state = {k[len(prefix) :]: v for k, v in bundle.state_dict.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{where}: weights do not match the recipe: {exc}") from None
        return cls(module.eval(), featurizer, recipe)

    @property
    def out_dim(self) -> int:
        """Width of the embeddings."""
        return int(self.module.out_dim)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: torch.device | str) -> PretrainedEncoder:
        """Move the weights to ``device`` (embeddings are computed there); returns self."""
        (self.model or self.module).to(device)
        return self

    def _embed_batch(self, batch) -> Tensor:
        if self.model is not None:
            return self.model.embed(batch)
        return self.module(batch).graph

    @torch.inference_mode()
    def embed_graphs(self, graphs: Any, batch_size: int = 256, progress: bool = False) -> Tensor:
        """Graph embeddings ``[len(graphs), out_dim]`` of already featurized graphs
        (``PackedGraphs`` or ``VariantGraphs``), on this encoder's device, in eval mode."""
        (self.model or self.module).eval()
        device = self.device
        graphs = with_esm_embeddings(self.recipe, graphs, self.esm_path, progress)
        parts = [
            self._embed_batch(batch.to(device)).float()
            for batch in graph_batches(graphs, batch_size, progress, "embedding")
        ]
        return torch.cat(parts) if parts else torch.zeros(0, self.out_dim, device=device)

    def embed_rows(
        self,
        items: Sequence[Any],
        batch_size: int = 256,
        progress: bool = False,
        num_workers: int | None = 1,
    ) -> tuple[Tensor, list[str]]:
        """Embeddings ``[N, out_dim]`` of every item, with a NaN row for each item that
        could not be featurized, and one error string per item (``""`` if it worked).

        The batch-job form of :meth:`embed`: no item is dropped, none stops the others.
        """
        graphs, errors = featurize_all(self.featurizer, list(items), num_workers, progress)
        out = torch.full((len(items), self.out_dim), float("nan"), device=self.device)
        ok = torch.tensor([e is None for e in errors], dtype=torch.bool)
        if graphs is not None:
            out[ok.to(out.device)] = self.embed_graphs(graphs, batch_size, progress)
        return out, ["" if e is None else e.reason for e in errors]

    def embed(
        self,
        items: Sequence[Any],
        batch_size: int = 256,
        progress: bool = False,
        num_workers: int | None = 1,
    ) -> Tensor:
        """Graph embeddings ``[N, out_dim]`` of ``items`` (SMILES / RDKit Mols for a
        molecule bundle, PDB/mmCIF paths for a protein bundle), in order, on this
        encoder's device (see :meth:`to`).

        Inputs are featurized in ``num_workers`` processes (1: in this process) and
        encoded in batches of ``batch_size`` graphs; ``progress`` shows bars.

        Raises
        ------
        FeaturizationError
            If any item cannot be featurized: the first such item and its reason (the
            message counts the others). Use :meth:`embed_rows` to get NaN rows instead.
        """
        out, errors = self.embed_rows(items, batch_size, progress, num_workers)
        failed = [i for i, e in enumerate(errors) if e]
        if failed:
            first = failed[0]
            others = f" ({len(failed) - 1} more inputs failed too)" if len(failed) > 1 else ""
            raise FeaturizationError(items[first], f"input {first}: {errors[first]}{others}")
        return out

    def predict_rows(
        self,
        items: Sequence[Any],
        batch_size: int = 256,
        progress: bool = False,
        num_workers: int | None = 1,
    ) -> tuple[np.ndarray, list[str]]:
        """Predictions ``[N, T]`` in target units (NaN rows for failed items) and one error
        string per item; needs a bundle with a task head."""
        from molgraph.predict import predict_items

        model = self.require_model()
        return predict_items(
            model, self.featurizer, list(items), batch_size, self.device, num_workers, progress
        )

    def require_model(self) -> PropertyModel:
        if self.model is None:
            raise CheckpointError(
                "this bundle holds an encoder only (no task head): it embeds but cannot predict"
            )
        return self.model

    def __repr__(self) -> str:
        kind = self.recipe.get("featurizer", {}).get("kind")
        head = "with task head" if self.model is not None else "encoder only"
        return f"PretrainedEncoder({type(self.module).__name__}, {kind}, d={self.out_dim}, {head})"


def load_encoder(
    reference: str | Path,
    device: torch.device | str = "cpu",
    esm_path: str | Path | None = None,
) -> PretrainedEncoder:
    """Load a bundle (a directory, or a name in the registry ``$MOLGRAPH_MODELS``).

    The weights are checked against their sha256 and read as safetensors; nothing in the
    bundle is executed.

    Examples
    --------
    >>> enc = load_encoder("bundles/esol-gin")            # doctest: +SKIP
    >>> enc.embed(["CCO", "c1ccccc1O"]).shape             # doctest: +SKIP
    torch.Size([2, 300])
    """
    encoder = PretrainedEncoder.from_bundle(open_bundle(reference)).to(device)
    encoder.esm_path = esm_path
    return encoder
