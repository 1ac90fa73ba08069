"""Train configurations over encoders, datasets and seeds; report mean ± sd of the test
metric beside a trivial baseline on the identical splits (train-mean predictor for
regression; a constant score — ROC-AUC 0.5 — for classification).

    python experiments/moleculenet/seeds.py --data esol bbbp --seeds 0 1 2 \\
        --out experiments/moleculenet/foundation [--encoders gin gcn] [hydra overrides ...]

Encoders that need coordinates get ``featurizer.conformer=true``. Writes
``results.json`` (every value) and ``results.md`` (the table) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

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


def needs_positions(cfg) -> bool:
    encoder = build(cfg.encoder, in_node_dim=1, in_edge_dim=1)
    return bool(getattr(encoder, "requires_positions", False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--encoders", nargs="+", default=[None])
    parser.add_argument("--out", required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.out)
    results: dict[str, dict] = {}
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        for data in args.data:
            for encoder in args.encoders:
                name = encoder or compose("train").encoder._target_.rsplit(".", 1)[-1]
                choice = [f"encoder={encoder}"] if encoder else []
                if encoder and needs_positions(compose("train", overrides=choice)):
                    choice.append("featurizer.conformer=true")
                runs, baselines = [], []
                for seed in args.seeds:
                    overrides = [f"data={data}", f"seed={seed}", *choice, *args.overrides]
                    cfg = compose("train", overrides=overrides)
                    run_dir = out / "runs" / f"{data}-{name}-seed{seed}"
                    runs.append(train_from_config(cfg, run_dir))
                    baselines.append(baseline(cfg, run_dir))
                metric = "rmse" if "rmse" in runs[0]["test"] else "roc_auc"
                results.setdefault(data, {"metric": metric, "encoders": {}})
                results[data]["encoders"][name] = {
                    "val": [r["val"][metric] for r in runs],
                    "test": [r["test"][metric] for r in runs],
                    "overrides": [*choice, *args.overrides],
                }
                results[data]["baseline_test"] = [b[metric] for b in baselines]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| dataset | metric | encoder | val | test | trivial baseline test |",
        "|---|---|---|---|---|---|",
    ]
    for data, r in results.items():
        for name, e in r["encoders"].items():
            lines.append(
                f"| {data} | {r['metric']} | {name} | {summary(e['val'])} | "
                f"{summary(e['test'])} | {summary(r['baseline_test'])} |"
            )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
