"""Embedding files of inputs with a bundle, every input row kept, written with its ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from molgraph.data.inputs import VariantOptions, read_inputs
from molgraph.errors import MolgraphError
from molgraph.io import write_table
from molgraph.pretrained.encoder import load_encoder

EMBEDDING_SUFFIXES = (".npy", ".parquet", ".csv", ".tsv")
#: Beside ``x.npy``: the rows (ids, input columns, errors) of the embedding matrix.
ROWS_SUFFIX = ".rows.csv"


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
    smiles_column: str | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    variants: dict[str, Any] | None = None,
    esm_path: str | Path | None = None,
    **input_options: Any,
) -> pd.DataFrame:
    """Embed every input of a file (see :mod:`molgraph.inputs`) with bundle ``model``;
    failed rows get NaN embeddings and their reason in ``error``. Returns the row table
    (input columns and ``error``). ``esm_path``: the ESM checkpoint of a fused encoder."""
    encoder = load_encoder(model, device, esm_path)
    rows = read_inputs(
        input_path,
        encoder.featurizer,
        smiles_column=smiles_column,
        variants=VariantOptions.from_recipe(encoder.recipe, **(variants or {})),
        progress=progress,
        **input_options,
    )
    embeddings = np.full((len(rows.table), encoder.out_dim), np.nan, dtype=np.float32)
    if rows.graphs is not None:
        embedded = encoder.embed_graphs(rows.graphs, batch_size, progress)
        embeddings[rows.ok] = embedded.cpu().numpy()
    table = rows.table.copy()
    table["error" if "error" not in table else "error_embed"] = rows.errors
    write_embeddings(table, embeddings, output_path)
    return table
