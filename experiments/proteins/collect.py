"""Collect protein runs into a table: test Spearman and RMSE, mean ± sd over seeds.

    python experiments/proteins/collect.py /tmp/proteins/runs > results.md

Run directories are named ``<name>-seed<N>`` (as ``run_gpu.sh`` writes them); each holds
the ``metrics.json`` and ``metrics.csv`` of one ``molgraph train`` run. Writes
``results.json`` beside them.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from molgraph.plots import read_epoch_metrics


def summary(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f} (n={len(values)})"


def main() -> None:
    root = Path(sys.argv[1])
    runs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for metrics_file in sorted(root.glob("*/metrics.json")):
        name = metrics_file.parent.name.rsplit("-seed", 1)[0]
        test = json.loads(metrics_file.read_text())["test"]
        for key in ("spearman", "rmse"):
            runs[name][key].append(test[key])
        epochs = read_epoch_metrics(metrics_file.parent / "metrics.csv")
        runs[name]["epochs"].append(int(epochs["train/loss"].notna().sum()))
    (root / "results.json").write_text(json.dumps(runs, indent=2))
    print("| run | test Spearman ↑ | test RMSE ↓ | epochs trained |\n|---|---|---|---|")
    for name, values in runs.items():
        epochs = ", ".join(map(str, values["epochs"]))
        print(f"| {name} | {summary(values['spearman'])} | {summary(values['rmse'])} | {epochs} |")


if __name__ == "__main__":
    main()
