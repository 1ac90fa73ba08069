"""Train one configuration over several seeds and datasets; report mean ± sd beside a
trivial baseline on the identical splits (train-mean predictor for regression, a
constant score — ROC-AUC 0.5, PR-AUC = positive rate — for classification).

    python experiments/moleculenet/seeds.py --data esol bbbp --seeds 0 1 2 \
        --out experiments/moleculenet/foundation [hydra overrides ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

from molgraph.builder import build, config_dir, train_from_config
from molgraph.data import SplitIndices, load_molecule_csv
from molgraph.models import Task


def baseline(cfg, run_dir: Path) -> dict[str, float]:
    featurizer, source = build(cfg.featurizer), build(cfg.data)
    dataset = load_molecule_csv(source, featurizer, cfg.cache_dir, progress=False)
    split = SplitIndices.load(run_dir / "split.json", dataset.row_ids)
    task = Task(source.task, source.target_columns)
    y_train, y_test = dataset.y[split.train], dataset.y[split.test]
    constant = torch.nanmean(y_train, dim=0).expand_as(y_test)
    return task.metrics(constant, torch.nan_to_num(y_test), ~torch.isnan(y_test))


def summary(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.out)
    results: dict[str, dict] = {}
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        for data in args.data:
            runs, baselines = [], []
            for seed in args.seeds:
                overrides = [f"data={data}", f"seed={seed}", *args.overrides]
                cfg = compose("train", overrides=overrides)
                run_dir = out / "runs" / f"{data}-seed{seed}"
                runs.append(train_from_config(cfg, run_dir))
                baselines.append(baseline(cfg, run_dir))
            metric = "rmse" if "rmse" in runs[0]["test"] else "roc_auc"
            results[data] = {
                "metric": metric,
                "val": [r["val"][metric] for r in runs],
                "test": [r["test"][metric] for r in runs],
                "baseline_test": [b[metric] for b in baselines],
                "overrides": args.overrides,
            }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| dataset | metric | molgraph val | molgraph test | trivial baseline test |",
        "|---|---|---|---|---|",
    ]
    for data, r in results.items():
        lines.append(
            f"| {data} | {r['metric']} | {summary(r['val'])} | {summary(r['test'])} | "
            f"{summary(r['baseline_test'])} |"
        )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
