"""The DDP check's table: per run, devices, epochs, median epoch time (epochs after the
first: the first one captures CUDA graphs and warms up), and validation/test ROC-AUC.

    python experiments/ddp/collect.py RUNS_DIR --out OUT

Writes ``OUT/ddp_check.json`` and ``OUT/ddp_check.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd
import yaml


def summarize(run_dir: Path) -> dict:
    row: dict = {"run": run_dir.name}
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    trainer = config["trainer"]
    row["devices"] = trainer.get("devices")
    row["strategy"] = trainer.get("strategy", "auto")
    row["batch_per_gpu"] = config["batch_size"]
    row["cuda_graphs"] = config["model"].get("cuda_graphs")
    curves = pd.read_csv(run_dir / "metrics.csv")
    times = curves.groupby("epoch")["train/epoch_time"].max().dropna().tolist()
    row["epochs"] = len(times)
    row["epoch_times_s"] = [round(t, 3) for t in times]
    row["median_epoch_s"] = statistics.median(times[1:]) if len(times) > 1 else None
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        key = "roc_auc" if "roc_auc" in metrics["test"] else "rmse"
        row["metric"] = key
        row["val"] = metrics["val"][key]
        row["test"] = metrics["test"][key]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for run_dir in sorted(p for p in args.runs.iterdir() if p.is_dir()):
        try:
            rows.append(summarize(run_dir))
        except (OSError, KeyError, ValueError) as exc:
            rows.append({"run": run_dir.name, "error": f"{type(exc).__name__}: {exc}"})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ddp_check.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| run | GPUs | batch/GPU | CUDA graphs | epochs | median epoch (s) | val | test |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['run']} | {r['error']} | | | | | | |")
            continue
        median = f"{r['median_epoch_s']:.2f}" if r["median_epoch_s"] is not None else "—"
        val = f"{r['val']:.4f}" if "val" in r else "—"
        test = f"{r['test']:.4f}" if "test" in r else "—"
        lines.append(
            f"| {r['run']} | {r['devices']} | {r['batch_per_gpu']} | {r['cuda_graphs']} | "
            f"{r['epochs']} | {median} | {val} | {test} |"
        )
    by_name = {r["run"]: r for r in rows}
    for one, two in (("1gpu", "2gpu"), ("1gpu_eager", "2gpu_eager")):
        a, b = by_name.get(one, {}), by_name.get(two, {})
        if a.get("median_epoch_s") and b.get("median_epoch_s"):
            speedup = a["median_epoch_s"] / b["median_epoch_s"]
            lines.append(
                f"\n{two} vs {one}: epoch time x{1 / speedup:.2f} (speed-up {speedup:.2f})"
            )
    text = "\n".join(lines) + "\n"
    (args.out / "ddp_check.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
