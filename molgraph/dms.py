"""Mutational scans judged as ProteinGym judges them: ranking metrics per fold, and the
fold runs of a cross-validation side by side with the one-hot ridge and zero-shot scores.

- :func:`ranking_scorer` gives Spearman, NDCG, top-10% recall, AUC and MCC
  (:mod:`molgraph.models.ranking`) of a run's test predictions, for its ``metrics.json``.
- :func:`fold_table` collects the fold runs under a folder (``metrics.json`` with those
  metrics), refits the baselines on each run's own ``split.json`` and returns one row per
  (model, fold); :func:`summarise` gives mean ± sd over folds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from molgraph.data.dataset import GraphDataset
from molgraph.data.folds import SCHEMES, ProteinGymFoldSplit
from molgraph.data.splits import SplitIndices
from molgraph.fit import TestScorer
from molgraph.models.ranking import METRICS, ranking_metrics
from molgraph.models.ridge import ridge_predict


def binarised(dataset: GraphDataset, bin_column: str | None) -> np.ndarray:
    """The binarised score of every item: ``bin_column`` of the table, else the first
    target at or above its median over the dataset."""
    if bin_column:
        assert dataset.table is not None
        return dataset.table[bin_column].to_numpy(dtype=float) >= 0.5
    y = dataset.y[:, 0].numpy()
    return y >= np.nanmedian(y)


def ranking_scorer(dataset: GraphDataset, bin_column: str | None) -> TestScorer:
    """Spearman, NDCG, top-10% recall, AUC and MCC of the first target, for the test
    items ``indices`` and their predictions ``pred`` ``[n, T]`` (in target units)."""
    score, binary = dataset.y[:, 0].numpy(), binarised(dataset, bin_column)

    def ranking(indices: np.ndarray, pred: np.ndarray) -> dict[str, float]:
        return ranking_metrics(score[indices], pred[:, 0], binary[indices])

    return ranking


def _runs(folder: Path) -> list[Path]:
    """Run directories under ``folder`` that finished with a split and metrics."""
    found = {p.parent for p in Path(folder).rglob("metrics.json")}
    return sorted(p for p in found if (p / "split.json").is_file())


def _label(config: dict) -> str:
    encoder = str(config.get("encoder", {}).get("_target_", "?")).rsplit(".", 1)[-1]
    return encoder.removesuffix("Encoder").lower()


def baseline_rows(
    dataset: GraphDataset,
    split: SplitIndices,
    base: dict,
    binary: np.ndarray,
    zero_shot: dict[str, np.ndarray] | None = None,
) -> list[dict]:
    """Rows of the baselines on one split: the one-hot ridge, and per ``zero_shot`` score
    (one per dataset item) the score itself and the ridge augmented with it."""
    y = dataset.y[:, 0].numpy().astype(float)
    test = split.test

    def row(model: str, pred: np.ndarray) -> dict:
        return {"model": model, **base, **ranking_metrics(y[test], pred, binary[test])}

    pred, _ = ridge_predict(dataset.items, y, split.train, split.val, test)
    rows = [row("onehot_ridge", pred)]
    for name, score in (zero_shot or {}).items():
        rows.append(row(f"zero_shot:{name}", score[test]))
        aug, _ = ridge_predict(dataset.items, y, split.train, split.val, test, score[:, None])
        rows.append(row(f"onehot_ridge+{name}", aug))
    return rows


def fold_table(
    folder: Path,
    dataset: GraphDataset,
    bin_column: str | None,
    zero_shot: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per (model, run) under ``folder``: the run's test metrics, then the
    baselines (:func:`baseline_rows`) refitted on the run's own split, once per distinct
    (scheme, fold). Columns: model, scheme, fold, run, n_test and :data:`METRICS`."""
    binary = binarised(dataset, bin_column)
    rows, done = [], set()
    for run in _runs(folder):
        config_path = run / "config.yaml"
        config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
        split_cfg = config.get("split", {}) or {}
        split = SplitIndices.load(run / "split.json", dataset.row_ids, skip_missing=True)
        base = {"scheme": split_cfg.get("scheme", "?"), "fold": split_cfg.get("fold", run.name),
                "run": str(run.relative_to(folder)), "n_test": len(split.test)}  # fmt: skip
        metrics = json.loads((run / "metrics.json").read_text())["test"]
        rows.append({"model": _label(config), **base, **{m: metrics.get(m) for m in METRICS}})
        key = (base["scheme"], base["fold"], tuple(split.test[:50]))
        if key not in done:
            done.add(key)
            rows.extend(baseline_rows(dataset, split, base, binary, zero_shot))
    return pd.DataFrame(rows)


def cross_validate_baselines(
    dataset: GraphDataset,
    column: str,
    bin_column: str | None,
    schemes: tuple[str, ...] = SCHEMES,
    k: int = 5,
    seed: int = 0,
    zero_shot: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The baselines alone under every scheme and fold (the splits ``molgraph train``
    makes with ``split=proteingym`` and the same seed); rows as :func:`fold_table`."""
    binary = binarised(dataset, bin_column)
    labels = dataset.y.numpy()
    rows = []
    for scheme in schemes:
        for fold in range(k):
            splitter = ProteinGymFoldSplit(scheme, k, fold, seed, column=column)
            split = splitter(dataset.items, labels, dataset.row_ids, table=dataset.table)
            base = {"scheme": scheme, "fold": fold, "run": "-", "n_test": len(split.test)}
            rows.extend(baseline_rows(dataset, split, base, binary, zero_shot))
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over folds per (model, scheme): ``<metric>`` and ``<metric>_sd``
    columns, ``folds`` counted; best Spearman first within a scheme."""
    groups = table.groupby(["scheme", "model"], sort=False)
    out = groups[list(METRICS)].mean()
    sd = groups[list(METRICS)].std(ddof=1).add_suffix("_sd")
    out = out.join(sd)
    out.insert(0, "folds", groups.size())
    out = out.reset_index().sort_values(["scheme", "spearman"], ascending=[True, False])
    return out.reset_index(drop=True)


def markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table, metrics as ``mean ± sd``."""
    lines = ["| scheme | model | folds | " + " | ".join(METRICS) + " |",
             "|---|---|---|" + "---|" * len(METRICS)]  # fmt: skip
    for _, row in summary.iterrows():
        cells = [f"{row[m]:.3f} ± {row[m + '_sd']:.3f}" for m in METRICS]
        lines.append(f"| {row.scheme} | {row.model} | {row.folds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
