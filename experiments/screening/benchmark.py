"""Screening throughput and memory: `molgraph predict` on libraries of growing size, and
chemprop 2.3.1's `chemprop predict` on the smallest, side by side in one invocation.

Libraries are the shared MoleculeNet SMILES (BBBP, HIV, ESOL, Lipophilicity: their
invalid rows included) repeated in order to N rows, as `.smi` files. Each prediction runs
as its own process; its peak resident memory is the kernel's figure from ``wait4`` (the
largest of the process and the children it waited for; molgraph also reports its
featurization workers' peak on its summary line).

    molgraph train hydra.run.dir=/tmp/esol-gin            # the default model (GINE, ESOL)
    python experiments/screening/benchmark.py --model /tmp/esol-gin --sizes 100000 1000000 \\
        --chemprop /tmp/chemprop/bin/chemprop --out experiments/screening/results
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

import pandas as pd
from rdkit import Chem, rdBase

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "molecules"
SOURCES = {"BBBP.csv": "smiles", "HIV.csv.gz": "smiles", "delaney-processed.csv": "smiles",
           "Lipophilicity.csv.gz": "smiles"}  # fmt: skip
ESOL_TARGET = "measured log solubility in mols per litre"


def build_library(rows: int, folder: Path, shared: Path = SHARED) -> Path:
    """``rows`` SMILES from the shared sets, repeated in order, one per line with an id."""
    path = folder / f"library_{rows}.smi"
    if path.is_file():
        return path
    smiles = [s for name, column in SOURCES.items()
              for s in pd.read_csv(shared / name, dtype=str)[column].fillna("")]  # fmt: skip
    with open(path, "w") as f:
        for i, s in enumerate(islice(cycle(smiles), rows)):
            f.write(f"{s} m{i}\n")
    return path


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of the process, and its stderr+stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        log.seek(0)
        output = log.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{command[0]} failed:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, output


def molgraph_run(
    model: str, library: Path, out: Path, workers: int, device: str, env: dict
) -> dict:
    command = [sys.executable, "-m", "molgraph.cli.main", "predict", "--model", model,
               "--input", str(library), "--output", str(out), "--no-progress", "--restart",
               "--device", device]  # fmt: skip
    if workers:
        command += ["--workers", str(workers)]
    seconds, rss, output = timed(command, env)
    rows = sum(1 for _ in open(library))
    worker = re.search(r"each worker ≤ ([\d,]+) MB", output)
    return {"tool": f"molgraph ({device}, {workers or 'all'} workers)", "rows": rows, "seconds": round(seconds, 1),
            "rows_per_s": round(rows / seconds), "peak_rss_mb": round(rss),
            "worker_peak_mb": int(worker.group(1).replace(",", "")) if worker else None,
            "summary": output.strip().splitlines()[-1]}  # fmt: skip


def chemprop_model(chemprop: str, folder: Path, env: dict) -> Path:
    """A chemprop MPNN trained briefly on ESOL (its speed, not its accuracy, is measured)."""
    model = folder / "chemprop-esol" / "model_0" / "best.pt"
    if not model.is_file():
        data = pd.read_csv(SHARED / "delaney-processed.csv")[["smiles", ESOL_TARGET]]
        data.to_csv(folder / "esol.csv", index=False)
        subprocess.run([chemprop, "train", "-i", str(folder / "esol.csv"), "-s", "smiles",
                        "--target-columns", ESOL_TARGET, "--epochs", "3",
                        "-o", str(folder / "chemprop-esol")], env=env, check=True,
                       capture_output=True)  # fmt: skip
    found = sorted((folder / "chemprop-esol").rglob("best*.pt"))
    return found[0]


def chemprop_run(chemprop: str, library: Path, folder: Path, env: dict) -> dict:
    table = folder / f"{library.stem}.csv"
    if not table.is_file():  # chemprop stops at the first SMILES RDKit rejects: valid rows only
        lines = [line.split(" ")[0] for line in open(library).read().splitlines()]
        with rdBase.BlockLogs():
            valid = [s for s in lines if s and Chem.MolFromSmiles(s) is not None]
        pd.DataFrame({"smiles": valid}).to_csv(table, index=False)
    model = chemprop_model(chemprop, folder, env)
    command = [chemprop, "predict", "-i", str(table), "-s", "smiles", "--model-paths",
               str(model), "-o", str(folder / "chemprop_pred.csv"), "--num-workers", "0"]  # fmt: skip
    seconds, rss, output = timed(command, env)
    rows = len(pd.read_csv(table))
    return {"tool": "chemprop 2.3.1 (valid rows only)", "rows": rows, "seconds": round(seconds, 1),
            "rows_per_s": round(rows / seconds), "peak_rss_mb": round(rss),
            "worker_peak_mb": None, "summary": output.strip().splitlines()[-1][:200]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a molgraph run directory or bundle")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[0],
        help="featurization workers, one run per count (0: molgraph's default)",
    )
    parser.add_argument("--chemprop", help="chemprop 2.3.1's executable (own environment)")
    parser.add_argument("--work", default="/tmp/screening-bench", help="libraries, outputs")
    parser.add_argument("--out", default="experiments/screening/results")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the MoleculeNet files")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    print(f"{os.cpu_count()} CPUs visible, {len(os.sched_getaffinity(0))} usable; "
          f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}")  # fmt: skip
    results = []
    for rows in args.sizes:
        library = build_library(rows, work, args.shared)
        for workers in args.workers:
            results.append(molgraph_run(args.model, library, work / f"out_{rows}.csv",
                                        workers, args.device, env))  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
            save(results, out)
        if args.chemprop and rows == min(args.sizes):
            results.append(chemprop_run(args.chemprop, library, work, env))
            print(json.dumps(results[-1]), flush=True)
            save(results, out)
    print(save(results, out))


def save(results: list[dict], out: Path) -> str:
    """Write the results so far (a run cut short keeps what finished); the table as text."""
    (out / "screening.json").write_text(json.dumps(results, indent=1) + "\n")
    table = pd.DataFrame(results).drop(columns="summary").to_string(index=False)
    (out / "screening.txt").write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
