"""Training epoch time of molgraph and chemprop 2.3.1, side by side in one invocation.

Both tools train chemprop's architecture (molgraph ``encoder=dmpnn``: directed MPNN,
hidden 300, depth 3) on the same split files (random 80/10/10 of the RDKit-valid rows,
seed 0), with the same batch size, device and thread count, validation every epoch. Each
tool runs as its own command twice, for 3 and for 3+E epochs (chemprop refuses fewer
epochs than its 2 warm-up epochs); the epoch time is the difference over E, so start-up,
featurization and the test pass cancel out. Nothing is
installed: ``--chemprop`` names a chemprop 2.3.1 executable (its own environment).

    python experiments/benchmarks/vs_chemprop.py --chemprop /work/chemprop-venv/bin/chemprop \\
        --device cpu --threads 1 --datasets esol bbbp hiv --epochs 3
    python experiments/benchmarks/vs_chemprop.py --chemprop chemprop --device cuda --batch-sizes 64 256
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rdkit import Chem, rdBase

BASE = 3  # epochs of the shorter run
REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("MOLGRAPH_DATA", REPO.parent / "shared" / "data")) / "molecules"
DATASETS = {  # name: (file, smiles column, target column, chemprop task)
    "esol": ("delaney-processed.csv", "smiles", "measured log solubility in mols per litre",
             "regression"),
    "bbbp": ("BBBP.csv", "smiles", "p_np", "classification"),
    "hiv": ("HIV.csv.gz", "smiles", "HIV_active", "classification"),
}  # fmt: skip


def write_split(name: str, folder: Path) -> int:
    """``split.json`` (molgraph) and ``train/val/test.csv`` (chemprop) of one random split."""
    file, smiles_col, target_col, _ = DATASETS[name]
    table = pd.read_csv(DATA / file)
    smiles = table[smiles_col].astype(str).tolist()
    with rdBase.BlockLogs():
        rows = np.array([i for i, s in enumerate(smiles) if Chem.MolFromSmiles(s) is not None])
    order = np.random.default_rng(0).permutation(rows)
    n_train, n_val = int(0.8 * len(order)), int(0.1 * len(order))
    parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val],
             "test": order[n_train + n_val :]}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    pd.Series({k: sorted(v.tolist()) for k, v in parts.items()}).to_json(folder / "split.json")
    for part, ids in parts.items():
        frame = pd.DataFrame({"smiles": [smiles[i] for i in sorted(ids)],
                              "target": table[target_col].to_numpy(float)[sorted(ids)]})  # fmt: skip
        frame.to_csv(folder / f"{part}.csv", index=False)
    return len(rows)


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    """Wall seconds of ``command``; its output goes to ``log``; a failure stops the run."""
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n  see {log}")
    return time.perf_counter() - start


def molgraph_command(name: str, split: Path, epochs: int, batch: int, device: str, out: Path):
    path = DATA / DATASETS[name][0]
    return [sys.executable, "-m", "molgraph.cli.main", "train", f"data={name}",
            f"data.path={path}", "encoder=dmpnn", "split=file", f"split.path={split / 'split.json'}",
            "split.skip_missing=true", f"trainer.max_epochs={epochs}", f"patience={epochs + 1}",
            f"batch_size={batch}", "num_workers=1", "cache_dir=null",
            "trainer.enable_progress_bar=false", f"hydra.run.dir={out}",
            *(["trainer=gpu"] if device == "cuda" else [])]  # fmt: skip


def chemprop_command(chemprop: str, name: str, split: Path, epochs: int, batch: int,
                     device: str, out: Path):  # fmt: skip
    return [chemprop, "train", "-i", *(str(split / f"{p}.csv") for p in ("train", "val", "test")),
            "-s", "smiles", "--target-columns", "target", "-t", DATASETS[name][3],
            "--epochs", str(epochs), "-b", str(batch), "-n", "0", "--data-seed", "0",
            "--pytorch-seed", "0", "--accelerator", "gpu" if device == "cuda" else "cpu",
            "--devices", "1", "-o", str(out)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chemprop", required=True, help="a chemprop 2.3.1 executable")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each tool")
    parser.add_argument("--datasets", nargs="+", default=["esol", "bbbp", "hiv"],
                        choices=DATASETS)  # fmt: skip
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64])
    parser.add_argument("--epochs", type=int, default=3, help="E: epochs timed per tool")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO)}  # fmt: skip
    version = subprocess.run([args.chemprop, "--version"], capture_output=True, text=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"torch {torch.__version__}; chemprop {version.stdout.strip() or version.stderr.strip()}; "
          f"device {args.device}, {args.threads} thread(s) per tool, E={args.epochs}")  # fmt: skip
    rows = []
    work = Path(tempfile.mkdtemp(prefix="vs_chemprop-"))  # kept: logs and runs of both tools
    print(f"runs and logs: {work}")
    for name in args.datasets:
        n = write_split(name, work / name)
        for batch in args.batch_sizes:
            seconds = {}
            for tool in ("molgraph", "chemprop"):
                wall = []
                for epochs in (BASE, BASE + args.epochs):
                    out = work / f"{name}-{tool}-{batch}-{epochs}"
                    command = (molgraph_command(name, work / name, epochs, batch, args.device, out)
                               if tool == "molgraph" else
                               chemprop_command(args.chemprop, name, work / name, epochs, batch,
                                                args.device, out))  # fmt: skip
                    wall.append(timed(command, env, work / f"{out.name}.log"))
                seconds[tool] = (wall[1] - wall[0]) / args.epochs
                print(f"{name} (n={n}) batch {batch} {tool}: {wall[0]:.1f} s for {BASE} epochs, "
                      f"{wall[1]:.1f} s for {BASE + args.epochs}: {seconds[tool]:.2f} s/epoch",
                      flush=True)  # fmt: skip
            rows.append({"dataset": name, "molecules": n, "batch": batch,
                         "molgraph_s_per_epoch": round(seconds["molgraph"], 3),
                         "chemprop_s_per_epoch": round(seconds["chemprop"], 3),
                         "chemprop/molgraph": round(seconds["chemprop"] / seconds["molgraph"], 2)})  # fmt: skip
    print()
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
