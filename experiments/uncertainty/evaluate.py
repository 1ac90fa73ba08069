"""Score every finished run of the uncertainty benchmark with ONE metrics implementation
(molgraph's: ``molgraph.uncertainty`` and ``Task.metrics``) and write the table and plots.

Each tool's per-member predictions on the validation and test parts of a split are read
back; the same code then fits the calibration on validation (a recalibration of the sd for
regression, of the probabilities for classification, split-conformal intervals / label
sets at 90%) and scores the test part:

- molgraph ensemble: the 5 members of ``runs/molgraph/<ds>/seed<s>`` (predictions_*.csv)
- molgraph single: member0 of that run alone (exactly the single-model run of that seed);
  no spread, so its sd is a constant fitted on validation (the validation RMSE)
- molgraph mve ensemble / mve single: the same from ``runs/molgraph-mve`` (members with
  mean-variance heads, ``uncertainty=mve``; regression sets), each member's predicted
  variance (``<target>_member<i>_var``) joined with the spread of the means
- chemprop ensemble: ``runs/chemprop/<ds>/seed<s>/preds_*_individual.csv``

    python experiments/uncertainty/evaluate.py

Every tool's outputs are recalibrated alike, three ways (:data:`VARIANTS`): molgraph's
default ``auto`` (``table.md``, ``per_seed.csv``, ``<ds>.png``: the sd method and the
probability method of lowest cross-validated validation NLL), z-scaling with isotonic
probabilities (``table_zscale_isotonic.md``, molgraph's former default) and affine sds
with Platt probabilities (``table_affine_platt.md``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from molgraph.models.tasks import Task
from molgraph.uncertainty import calibrate_and_evaluate
from molgraph.uncertainty.metrics import LEVELS, calibration_curve

HERE = Path(__file__).parent
RUNS, SPLITS, RESULTS = HERE / "runs", HERE / "splits", HERE / "results"
DATASETS = {"esol": "regression", "lipophilicity": "regression", "bbbp": "classification"}
#: (file suffix, sd calibration, probability calibration), the default first
VARIANTS = (("", "auto", "auto"), ("_zscale_isotonic", "zscale", "isotonic"),
            ("_affine_platt", "affine", "platt"))  # fmt: skip
TARGET = {"esol": "measured log solubility in mols per litre", "lipophilicity": "exp",
          "bbbp": "p_np"}  # fmt: skip
TOOLS = ("molgraph ensemble", "molgraph single", "molgraph mve ensemble", "molgraph mve single",
         "chemprop ensemble")  # fmt: skip
COVERAGE = 0.9


def _molgraph(
    ds: str, seed: int, part: str, tool: str
) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
    """Member means and (mean-variance members) their variances, indexed by row."""
    folder = "molgraph-mve" if "mve" in tool else "molgraph"
    path = RUNS / folder / ds / f"seed{seed}" / f"predictions_{part}.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path).set_index("row")
    members = [c for c in table.columns
               if c.startswith(f"{TARGET[ds]}_member") and not c.endswith("_var")]  # fmt: skip
    members = members[:1] if tool.endswith("single") else members
    variances = [f"{c}_var" for c in members if f"{c}_var" in table]
    return table[members], table[variances] if variances else None


def _chemprop(ds: str, seed: int, part: str) -> pd.DataFrame | None:
    path = RUNS / "chemprop" / ds / f"seed{seed}" / f"preds_{part}_individual.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    return table.set_index("row_id")[[c for c in table.columns if "_model_" in c]]


def _samples(ds: str, seed: int, tool: str, part: str) -> tuple | None:
    """Labels ``[n, 1]``, member predictions ``[M, n, 1]`` and their predicted variances
    (None without mean-variance heads) of the split's part, in the split file's row order."""
    split = pd.read_csv(SPLITS / ds / f"seed{seed}" / f"{part}.csv").set_index("row_id")
    if tool == "chemprop ensemble":
        found = _chemprop(ds, seed, part)
        found = None if found is None else (found, None)
    else:
        found = _molgraph(ds, seed, part, tool)
    if found is None:
        return None

    def members(table: pd.DataFrame) -> np.ndarray:  # a KeyError means the splits differ
        return table.loc[split.index].to_numpy(float).T[:, :, None]

    means, variances = found
    return (split["target"].to_numpy(float)[:, None], members(means),
            None if variances is None else members(variances))  # fmt: skip


def score(
    ds: str, seed: int, tool: str, sd_method: str, prob_method: str
) -> tuple[dict, dict] | None:
    val, test = _samples(ds, seed, tool, "val"), _samples(ds, seed, tool, "test")
    if val is None or test is None:
        return None
    kind = DATASETS[ds]
    _, parts, metrics = calibrate_and_evaluate(kind, ["y"], val[0], val[1], test[0], test[1],
                                               COVERAGE, prob_method, val[2], test[2], sd_method)  # fmt: skip
    task, y = Task(kind, ("y",)), torch.from_numpy(test[0])
    mean = torch.from_numpy(test[1].mean(axis=0))  # raw mean (probabilities) for the task metric
    task_metrics = task.metrics(mean, y, torch.ones_like(y, dtype=torch.bool))
    row = {"dataset": ds, "seed": seed, "tool": tool, "members": test[1].shape[0]}
    row["metric"] = "rmse" if kind == "regression" else "roc_auc"
    row["test_metric"] = task_metrics[row["metric"]]
    row.update({k: v for k, v in metrics.items() if "/" not in k})
    return row, {"y": test[0][:, 0], **{k: v[:, 0] for k, v in parts.items()}}


def _summary(rows: pd.DataFrame) -> pd.DataFrame:
    columns = ["test_metric", "nll", "miscalibration_area", "ece", "ence", "spearman_error_sd",
               "coverage", "interval_width", "set_size"]  # fmt: skip
    columns = [c for c in columns if c in rows]
    out = []
    for (ds, tool), group in rows.groupby(["dataset", "tool"], sort=False):
        line = {"dataset": ds, "tool": tool, "metric": group["metric"].iloc[0],
                "seeds": " ".join(str(s) for s in group["seed"])}  # fmt: skip
        for c in columns:
            values = group[c].dropna()
            line[c] = (f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1
                       else f"{values.mean():.3f}" if len(values) else "—")  # fmt: skip
        out.append(line)
    return pd.DataFrame(out)


def _plot(ds: str, parts: dict[str, dict], path: Path) -> None:
    fig = Figure(figsize=(8, 4), dpi=120)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.plot([0, 1], [0, 1], "k--", lw=1)
    for tool, p in parts.items():
        if DATASETS[ds] == "regression":
            left.plot(LEVELS, calibration_curve(p["y"], p["mean"], p["sd"]), label=tool)
        else:
            edges = np.clip(np.digitize(p["mean"], np.linspace(0, 1, 11)[1:-1]), 0, 9)
            used = [b for b in range(10) if (edges == b).any()]
            left.plot([p["mean"][edges == b].mean() for b in used],
                      [p["y"][edges == b].mean() for b in used], "o-", label=tool)  # fmt: skip
        right.scatter(p["sd"], np.abs(p["y"] - p["mean"]), s=6, alpha=0.5, label=tool)
    xlabel = "expected proportion" if DATASETS[ds] == "regression" else "mean probability"
    left.set(xlabel=xlabel, ylabel="observed", title=f"{ds}: calibration (seed 0, test)")
    right.set(xlabel="predicted sd", ylabel="|error|", title=f"{ds}: error vs uncertainty")
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines)


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    for suffix, sd_method, prob_method in VARIANTS:
        rows, missing = [], []
        for ds in DATASETS:
            plotted = {}
            for seed in (0, 1, 2):
                for tool in TOOLS:
                    if "mve" in tool and DATASETS[ds] != "regression":
                        continue
                    result = score(ds, seed, tool, sd_method, prob_method)
                    if result is None:
                        missing.append(f"{ds} seed{seed} {tool}")
                        continue
                    rows.append(result[0])
                    if seed == 0:
                        plotted[tool] = result[1]
            if plotted and not suffix:
                _plot(ds, plotted, RESULTS / f"{ds}.png")
        table = pd.DataFrame(rows)
        table.to_csv(RESULTS / f"per_seed{suffix}.csv", index=False, float_format="%.5g")
        summary = _summary(table)
        text = _markdown(summary) if len(summary) else "(no finished runs)"
        if missing:
            text += "\n\nNot finished: " + ", ".join(missing) + "\n"
        (RESULTS / f"table{suffix}.md").write_text(text + "\n")
        print(f"calibration: sd {sd_method}, probabilities {prob_method}\n{text}\n")
        if any(math.isnan(v) for v in table.get("coverage", [])):
            print("warning: NaN coverage")


if __name__ == "__main__":
    main()
