"""chemprop v2 on exactly molgraph's splits, scored with molgraph's metrics.

Run from molgraph's environment; chemprop lives in its own environment (it is a
comparison, not a dependency) and is called through its CLI:

    python -m venv /tmp/chemprop && /tmp/chemprop/bin/pip install torch==2.13.0 chemprop
    python experiments/moleculenet/chemprop_on_our_splits.py --chemprop /tmp/chemprop/bin/chemprop \\
        --data esol bbbp --seeds 0 1 2 --out /tmp/chemprop-runs

For each dataset and seed the split is computed by molgraph's configured splitter (the
same code and seed as ``molgraph train data=X seed=S``), the valid rows are written to a
CSV in dataset order, the split to chemprop's ``--splits-file``, and chemprop is trained
with its defaults. Its test predictions are scored with ``molgraph.models.Task.metrics``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from molgraph.builder import build, config_dir
from molgraph.data import load_molecule_csv
from molgraph.models import Task


def run_one(chemprop: str, data: str, seed: int, out: Path, extra: list[str]) -> dict[str, float]:
    cfg = compose("train", overrides=[f"data={data}", f"seed={seed}"])
    featurizer, source = build(cfg.featurizer), build(cfg.data)
    dataset = load_molecule_csv(source, featurizer, cfg.cache_dir, progress=False)
    split = build(cfg.split)(dataset.smiles, dataset.y.numpy(), dataset.row_ids)
    folder = out / f"{data}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"smiles": list(dataset.smiles)})
    targets = list(source.target_columns)
    for t, name in enumerate(targets):
        table[name] = dataset.y[:, t].numpy()
    table.to_csv(folder / "data.csv", index=False)
    parts = {part: getattr(split, part).tolist() for part in ("train", "val", "test")}
    (folder / "splits.json").write_text(json.dumps([parts]))
    task_type = "regression" if source.task == "regression" else "classification"
    command = [
        chemprop, "train", "--data-path", str(folder / "data.csv"), "-s", "smiles",
        "--target-columns", *targets, "-t", task_type,
        "--splits-file", str(folder / "splits.json"), "-o", str(folder / "model"),
        "--pytorch-seed", str(seed), "--accelerator", "cpu", "-n", "0", *extra,
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    test = table.iloc[split.test].reset_index(drop=True)
    test[["smiles"]].to_csv(folder / "test.csv", index=False)
    model = next((folder / "model").rglob("best*.pt"))
    predict = [
        chemprop, "predict", "-i", str(folder / "test.csv"), "-s", "smiles",
        "--model-paths", str(model), "-o", str(folder / "test_pred.csv"),
        "--accelerator", "cpu", "-n", "0",
    ]  # fmt: skip
    subprocess.run(predict, check=True, capture_output=True, text=True)
    predicted = pd.read_csv(folder / "test_pred.csv")
    pred = torch.tensor(predicted[targets].to_numpy(dtype=float))
    y = torch.tensor(test[targets].to_numpy(dtype=float))
    task = Task(source.task, tuple(targets))
    return task.metrics(pred, torch.nan_to_num(y), ~torch.isnan(y))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chemprop", required=True, help="the chemprop executable")
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", required=True)
    parser.add_argument("extra", nargs="*", help="more chemprop train arguments")
    args = parser.parse_args()
    out = Path(args.out)
    results = {}
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        for data in args.data:
            runs = [run_one(args.chemprop, data, s, out, args.extra) for s in args.seeds]
            metric = "rmse" if "rmse" in runs[0] else "roc_auc"
            values = [r[metric] for r in runs]
            results[data] = {"metric": metric, "test": values}
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            print(
                f"{data} chemprop test {metric}: {statistics.mean(values):.3f} ± {sd:.3f} {values}"
            )
    (out / "chemprop_results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
