"""A bundle loaded for use: ``load_encoder(...)`` → :class:`PretrainedEncoder`, and
embedding files of inputs with it (every input row kept, written with its ids).

>>> from molgraph import load_encoder                  # doctest: +SKIP
>>> enc = load_encoder("path/to/bundle")               # doctest: +SKIP
>>> enc.embed(["CCO", "c1ccccc1O"])                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from molgraph.bundles import Bundle, is_bundle, open_bundle
from molgraph.data.embeddings import Graphs
from molgraph.errors import CheckpointError, FeaturizationError, MolgraphError
from molgraph.io import write_table
from molgraph.models.module import PropertyModel
from molgraph.models.recipe import Recipe
from molgraph.packed import PackedGraphs
from molgraph.predict import (
    attach_esm,
    graph_batches,
    load_model,
    predict_items,
    score_file,
    score_items,
)
from molgraph.screening import Scorer, Summary, screen, state_fingerprint

EMBEDDING_SUFFIXES = (".npy", ".parquet", ".csv", ".tsv")
#: Beside ``x.npy``: the rows (ids, input columns, errors) of the embedding matrix.
ROWS_SUFFIX = ".rows.csv"


class PretrainedEncoder:
    """A bundle's encoder with the featurizer it was trained with.

    Parameters
    ----------
    module
        The graph encoder, a plain ``nn.Module``: ``GraphBatch`` → ``EncoderOutput``
        (``.graph`` ``[G, out_dim]``). Use it inside another model, trainable or frozen.
    recipe
        The bundle's recipe; ``recipe.featurizer`` turns inputs into graphs exactly as in
        training.
    model
        The whole model when the bundle holds a task head (then :meth:`predict_rows`
        works and embeddings are the model's, fusion included), else None.
    esm_path
        For an encoder fused with a frozen ESM: its checkpoint (else found by the
        recipe's model name in torch hub's cache, or downloaded).
    """

    def __init__(
        self,
        module: nn.Module,
        recipe: Recipe,
        model: PropertyModel | None = None,
        esm_path: str | Path | None = None,
    ) -> None:
        self.module = module
        self.recipe = recipe
        self.featurizer = recipe.featurizer
        self.model = model
        self.esm_path = esm_path

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> PretrainedEncoder:
        if bundle.has_head:
            model = PropertyModel.from_recipe(bundle.recipe, bundle.state_dict, str(bundle.path))
            return cls(model.encoder, bundle.recipe, model)
        return cls(bundle.encoder(), bundle.recipe)

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

    @torch.inference_mode()
    def embed_graphs(self, graphs: Graphs, batch_size: int = 256, progress: bool = False) -> Tensor:
        """Graph embeddings ``[len(graphs), out_dim]`` of already featurized graphs
        (``PackedGraphs`` or ``VariantGraphs``), on this encoder's device, in eval mode."""
        (self.model or self.module).eval()
        device = self.device
        graphs = attach_esm(self.recipe, graphs, self.esm_path, progress)
        embed = self.model.embed if self.model is not None else (lambda b: self.module(b).graph)
        parts = [
            embed(batch.to(device)).float()
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

        def score(graphs: Graphs) -> np.ndarray:
            return self.embed_graphs(graphs, batch_size, progress).cpu().numpy()

        values, errors = score_items(
            self.featurizer, items, self.out_dim, score, num_workers, progress
        )
        return torch.from_numpy(values).to(self.device), errors

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
        kind = self.featurizer.to_dict().get("kind")
        head = "with task head" if self.model is not None else "encoder only"
        return f"PretrainedEncoder({type(self.module).__name__}, {kind}, d={self.out_dim}, {head})"


def load_encoder(
    reference: str | Path,
    device: torch.device | str = "cpu",
    esm_path: str | Path | None = None,
) -> PretrainedEncoder:
    """Load a bundle (a directory, or a name in the registry ``$MOLGRAPH_MODELS``), or the
    model of a training run (its directory, ``model.pt`` or a ``.ckpt``), as ``molgraph
    predict`` does.

    The weights are checked against their sha256 and read as safetensors (a run's with
    ``torch.load(weights_only=True)``); nothing in the bundle is executed.

    Examples
    --------
    >>> enc = load_encoder("bundles/esol-gin")            # doctest: +SKIP
    >>> enc.embed(["CCO", "c1ccccc1O"]).shape             # doctest: +SKIP
    torch.Size([2, 300])
    """
    if Path(reference).exists() and not is_bundle(reference):  # a run, as predict takes it
        model, _ = load_model(reference)
        encoder = PretrainedEncoder(model.encoder, model.recipe, model).to(device)
    else:
        encoder = PretrainedEncoder.from_bundle(open_bundle(reference)).to(device)
    encoder.esm_path = esm_path
    return encoder


def embed_library(
    encoder: PretrainedEncoder,
    input_path: str,
    output: str | Path,
    *,
    batch_size: int = 256,
    **options: Any,
) -> Summary:
    """Embed every molecule of a library, streamed (``options`` go to
    :func:`molgraph.screening.screen`): the input columns, ``error``, then ``emb_*``."""

    def score(graphs: PackedGraphs) -> np.ndarray:
        return encoder.embed_graphs(graphs, batch_size).cpu().numpy()

    module = encoder.model or encoder.module
    lookahead = 2 if encoder.device.type == "cuda" else 0
    scorer = Scorer(embedding_columns(encoder.out_dim), score, state_fingerprint(module),
                    error_first=True, lookahead=lookahead)  # fmt: skip
    return screen(encoder.featurizer, scorer, input_path, output, **options)


def embedding_columns(width: int) -> list[str]:
    return [f"emb_{i}" for i in range(width)]


def write_embeddings(table: pd.DataFrame, embeddings: np.ndarray, path: str | Path) -> list[Path]:
    """Write ``embeddings`` ``[n, d]`` with ``table`` (``n`` rows: ids, input columns,
    ``error``) by suffix; returns the files written.

    - ``.csv`` / ``.tsv`` / ``.parquet``: the table's columns, then ``emb_0 … emb_{d-1}``;
    - ``.npy``: the float32 matrix, and the table in ``<name>.rows.csv`` beside it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDING_SUFFIXES:
        raise MolgraphError(f"{path}: write embeddings as {', '.join(EMBEDDING_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        rows = path.with_name(path.name[: -len(suffix)] + ROWS_SUFFIX)
        np.save(path, embeddings.astype(np.float32))
        write_table(table, rows)
        return [path, rows]
    columns = pd.DataFrame(embeddings, columns=embedding_columns(embeddings.shape[1]))
    out = pd.concat([table.reset_index(drop=True), columns], axis=1)
    if suffix == ".parquet":
        try:
            out.to_parquet(path, index=False)
        except ImportError:
            raise MolgraphError(
                f"{path}: writing parquet needs pyarrow (pip install 'molgraph[parquet]')"
            ) from None
    else:
        write_table(out, path)
    return [path]


def embed_file(
    model: str | Path,
    input_path: str | Path | Sequence[str | Path],
    output_path: str | Path,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    esm_path: str | Path | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Embed every input of a file (:func:`~molgraph.predict.score_file`; ``options`` go
    there) with bundle ``model``; failed rows get NaN embeddings and their reason in
    ``error``. Returns the row table (input columns and ``error``). ``esm_path``: the ESM
    checkpoint of a fused encoder."""
    encoder = load_encoder(model, device, esm_path)

    def score(graphs: Graphs) -> np.ndarray:
        return encoder.embed_graphs(graphs, batch_size, progress).cpu().numpy()

    table, embeddings, errors = score_file(encoder.recipe, input_path, encoder.out_dim, score,
                                           progress=progress, **options)  # fmt: skip
    table["error" if "error" not in table else "error_embed"] = errors
    write_embeddings(table, embeddings, output_path)
    return table
