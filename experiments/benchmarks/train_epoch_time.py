"""Training time per epoch on HIV (80% train split, batch size 256) for each encoder.

Each encoder is built from its config in ``conf/encoder/`` (GIN: GINE 5 x 300, mean
readout); encoders that need coordinates get RDKit conformers. Prints featurization time,
then per-epoch wall time of molgraph's Lightning training path (validation off; fused
AdamW and TF32 matmuls as in conf/model/default.yaml), on the device given; on CUDA both
eagerly and with captured CUDA graphs (``model.cuda_graphs``), with the GPU's utilisation
sampled by nvidia-smi while the epochs run, and a summary table at the end.

    python experiments/benchmarks/train_epoch_time.py --device cpu --epochs 2
    python experiments/benchmarks/train_epoch_time.py --device cuda --epochs 6 --encoders gin gcn
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir

from molgraph.builder import build, config_dir
from molgraph.data import GraphDataModule, MoleculeCSV, RandomSplit, load_molecule_csv
from molgraph.featurize import MoleculeFeaturizer
from molgraph.models import MLPHead, PropertyModel, Task

REPO = Path(__file__).resolve().parents[2]


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._sync(pl_module)
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._sync(pl_module)
        self.times.append(time.perf_counter() - self.start)


def gpu_sampler() -> subprocess.Popen | None:
    if shutil.which("nvidia-smi") is None:
        return None
    return subprocess.Popen(
        [
            "nvidia-smi",
            "--query-gpu=utilization.gpu",
            "--format=csv,noheader,nounits",
            "-lms",
            "100",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def build_encoder(name: str, featurizer: MoleculeFeaturizer) -> torch.nn.Module:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"encoder={name}"])
    return build(cfg.encoder, in_node_dim=featurizer.node_dim, in_edge_dim=featurizer.edge_dim)


def build_model(
    name: str, featurizer: MoleculeFeaturizer, task: Task, cuda_graphs: bool
) -> PropertyModel:
    encoder = build_encoder(name, featurizer)
    head = MLPHead(encoder.out_dim, len(task.names), hidden_dim=300)
    optimizer = partial(torch.optim.AdamW, lr=1e-3, fused=True)
    return PropertyModel(encoder, head, task, optimizer=optimizer, cuda_graphs=cuda_graphs)


def timed_fit(
    name, dataset, split, featurizer, task, args, cuda_graphs: bool
) -> tuple[list[float], list[float], float]:
    """Epoch times, GPU utilisation samples and the last epoch's mean training loss."""
    L.seed_everything(0, verbose=False)
    model = build_model(name, featurizer, task, cuda_graphs)
    datamodule = GraphDataModule(
        dataset, split, batch_size=args.batch_size, seed=0, pad_train_batches=cuda_graphs
    )
    timer = EpochTimer()
    trainer = L.Trainer(
        accelerator="gpu" if args.device.startswith("cuda") else "cpu",
        devices=1,
        max_epochs=args.epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    sampler = gpu_sampler() if args.device.startswith("cuda") else None
    trainer.fit(model, datamodule)
    utilisation: list[float] = []
    if sampler is not None:
        sampler.terminate()
        utilisation = [float(x) for x in sampler.stdout.read().split() if x.strip()]
    return timer.times, utilisation, float(trainer.callback_metrics["train/loss"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", default=str(REPO.parent / "shared/data/molecules/HIV.csv.gz"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--encoders", nargs="+", default=["gin"])
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    source = MoleculeCSV(args.csv, ["HIV_active"], task="classification")
    cache = args.cache_dir or tempfile.mkdtemp()
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    task = Task("classification", ("HIV_active",))
    torch.set_float32_matmul_precision("high")
    loaded: dict[bool, tuple] = {}
    summary = []
    for name in args.encoders:
        featurizer = MoleculeFeaturizer(conformer=True)
        needs_positions = build_encoder(name, featurizer).requires_positions
        featurizer = MoleculeFeaturizer(conformer=needs_positions)
        if needs_positions not in loaded:
            start = time.perf_counter()
            dataset = load_molecule_csv(source, featurizer, cache_dir=cache, progress=False)
            seconds = time.perf_counter() - start
            split = RandomSplit((0.8, 0.1, 0.1), seed=0)(
                dataset.smiles, dataset.y.numpy(), dataset.row_ids
            )
            n_atoms = int(dataset.graphs.node_counts[torch.from_numpy(split.train)].sum())
            print(
                f"HIV{' with conformers' if needs_positions else ''}: {len(dataset)} graphs "
                f"({len(dataset.failures)} failed rows), featurized or loaded in {seconds:.1f} s; "
                f"train split {len(split.train)} molecules, {n_atoms} atoms"
            )
            loaded[needs_positions] = dataset, split
        dataset, split = loaded[needs_positions]
        row = {"encoder": name}
        for cuda_graphs in [False, True] if device.type == "cuda" else [False]:
            mode = "CUDA graphs" if cuda_graphs else "eager"
            times, utilisation, loss = timed_fit(
                name, dataset, split, featurizer, task, args, cuda_graphs
            )
            steady = statistics.median(times[1:] or times)
            busy = f"{np.mean(utilisation):.0f}%" if utilisation else "-"
            print(
                f"{name} {mode}: epochs (s) {', '.join(f'{t:.3f}' for t in times)}; median after "
                f"the first {steady:.3f} s/epoch; last-epoch train loss {loss:.4f}; GPU busy {busy}"
            )
            row[mode] = f"{steady:.3f} s ({busy} busy)" if utilisation else f"{steady:.3f} s"
        summary.append(row)
    columns = ["encoder", "eager", "CUDA graphs"] if device.type == "cuda" else ["encoder", "eager"]
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in summary:
        print("| " + " | ".join(row.get(c, "-") for c in columns) + " |")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
