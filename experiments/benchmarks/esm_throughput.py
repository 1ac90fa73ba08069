"""Residues/s of per-residue ESM-2 embedding: molgraph's ESMEmbedder vs fair-esm's extract.py.

Models of the real ESM-2 sizes with random weights (speed does not depend on the values;
nothing is downloaded). Sequences: a seeded synthetic UniProt-like length mix (log-normal,
median 300 residues, sigma 0.6, clipped to 30..2000, so ~2 % exceed ESM's 1022-residue
limit), residues drawn from UniProt's amino-acid frequencies, plus GB1 (56) and avGFP
(238) lengths.

Methods, each timed after a warm-up on the first sequences, with ``torch.cuda.synchronize``:

- ``extract.py fp32``: fair-esm's ``scripts/extract.py`` loop as written there:
  ``FastaBatchedDataset`` batches from ``get_batch_indices(toks_per_batch=4096,
  extra_toks_per_seq=1)``, its batch converter truncating at 1022 residues, a DataLoader
  with 2 workers, fp32, ``model(toks, repr_layers=[layer])``, logits and representations
  moved to the CPU per batch, per-sequence ``clone``. Only its ``torch.save`` of each
  result is left out (disk, not embedding). Residues counted after truncation.
- ``molgraph fp32``: ``ESMEmbedder`` in float32 (token budget 16384, length-sorted,
  windows for long sequences): the batching alone.
- ``molgraph autocast``: the same under ``torch.autocast(bfloat16)`` (CUDA only).
- ``molgraph bf16``: ``ESMEmbedder``'s default on CUDA, the model cast to bfloat16.

Run on the H200::

    python experiments/benchmarks/esm_throughput.py --sizes 650M 150M \
        --out experiments/benchmarks/results/esm_throughput_h200.md

Smoke test on a CPU (seconds)::

    python experiments/benchmarks/esm_throughput.py --device cpu --sizes 8M --num-sequences 20
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time
from collections.abc import Callable
from pathlib import Path

import esm
import numpy as np
import torch
from esm.model.esm2 import ESM2

from molgraph.esm import ESM_MODELS, ESMEmbedder

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# UniProtKB/Swiss-Prot amino-acid composition (%), same order as AMINO_ACIDS.
FREQUENCIES = np.array(
    [
        *(8.25, 1.38, 5.46, 6.72, 3.86, 7.07, 2.27, 5.91, 5.80, 9.64),  # A C D E F G H I K L
        *(2.41, 4.06, 4.74, 3.93, 5.53, 6.65, 5.36, 6.86, 1.10, 2.92),  # M N P Q R S T V W Y
    ]
)


def synthetic_sequences(count: int, seed: int = 0) -> list[str]:
    """``count`` sequences with a UniProt-like length mix (seeded); GB1 and avGFP lengths first."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(300), 0.6, size=count), 30, 2000).astype(int)
    lengths[:2] = (56, 238)
    p = FREQUENCIES / FREQUENCIES.sum()
    letters = np.array(list(AMINO_ACIDS))
    return ["".join(rng.choice(letters, size=n, p=p)) for n in lengths]


def model_name(size: str) -> str:
    names = [n for n in ESM_MODELS if f"_{size}_" in n]
    if len(names) != 1:
        raise SystemExit(f"size {size!r}: expected one of {[n.split('_')[2] for n in ESM_MODELS]}")
    return names[0]


def random_model(name: str, device: torch.device) -> ESM2:
    num_layers, embed_dim, heads = ESM_MODELS[name]
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: fast for 650M
        model = ESM2(num_layers, embed_dim, heads, alphabet="ESM-1b")
    return model.eval()


def extract_py(model, alphabet, sequences: list[str], layer: int, device) -> int:
    """fair-esm's scripts/extract.py loop (fp32, toks_per_batch 4096, truncation 1022)."""
    dataset = esm.FastaBatchedDataset([str(i) for i in range(len(sequences))], sequences)
    batches = dataset.get_batch_indices(4096, extra_toks_per_seq=1)
    loader = torch.utils.data.DataLoader(
        dataset,
        collate_fn=alphabet.get_batch_converter(1022),
        batch_sampler=batches,
        num_workers=2,
    )
    residues = 0
    with torch.no_grad():
        for _labels, strs, toks in loader:
            if device.type == "cuda":
                toks = toks.to(device="cuda", non_blocking=True)
            out = model(toks, repr_layers=[layer])
            _logits = out["logits"].to(device="cpu")
            representations = {k: t.to(device="cpu") for k, t in out["representations"].items()}
            for i in range(len(strs)):
                truncate_len = min(1022, len(strs[i]))
                _ = {k: t[i, 1 : truncate_len + 1].clone() for k, t in representations.items()}
                residues += truncate_len
    return residues


def timed(run: Callable[[], int], device: torch.device) -> tuple[int, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    residues = run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return residues, time.perf_counter() - start


def benchmark(size: str, sequences: list[str], device: torch.device, warmup: int) -> list[dict]:
    name = model_name(size)
    model = random_model(name, device)
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    layer = model.num_layers
    cuda = device.type == "cuda"

    def molgraph(dtype: torch.dtype, autocast: bool) -> Callable[[list[str]], int]:
        embedder = ESMEmbedder(model, alphabet, name, dtype=dtype, device=device)

        def run(seqs: list[str]) -> int:
            context = (
                torch.autocast("cuda", dtype=torch.bfloat16)
                if autocast
                else contextlib.nullcontext()
            )
            with context:
                return sum(len(e) for e in embedder.embed(seqs))

        return run

    methods: list[tuple[str, Callable[[], Callable[[list[str]], int]]]] = [
        ("extract.py fp32", lambda: lambda s: extract_py(model, alphabet, s, layer, device)),
        ("molgraph fp32", lambda: molgraph(torch.float32, autocast=False)),
    ]
    if cuda:  # bfloat16 last: the embedder casts the model in place
        methods += [
            ("molgraph autocast bf16", lambda: molgraph(torch.float32, autocast=True)),
            ("molgraph bf16", lambda: molgraph(torch.bfloat16, autocast=False)),
        ]
    rows = []
    for method, make in methods:
        run = make()
        run(sequences[:warmup])
        residues, seconds = timed(lambda run=run: run(sequences), device)
        rows.append({"size": size, "method": method, "residues": residues, "seconds": seconds})
        print(f"{name:22s} {method:24s} {residues:>9d} res {seconds:7.1f} s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    baseline = {
        r["size"]: r["residues"] / r["seconds"] for r in rows if r["method"].startswith("extract")
    }
    lines = [
        "| model | method | residues | seconds | residues/s | speed-up vs extract.py |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r["residues"] / r["seconds"]
        lines.append(
            f"| ESM-2 {r['size']} | {r['method']} | {r['residues']} | {r['seconds']:.1f} | "
            f"{rate:,.0f} | {rate / baseline[r['size']]:.2f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["650M", "150M"])
    parser.add_argument("--num-sequences", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=16, help="sequences run before timing")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the table here (markdown)")
    args = parser.parse_args()

    device = torch.device(args.device)
    sequences = synthetic_sequences(args.num_sequences, args.seed)
    lengths = np.array([len(s) for s in sequences])
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    header = (
        f"ESM-2 embedding throughput, random weights, last layer, on {hardware or device} "
        f"(torch {torch.__version__}).\n{len(sequences)} synthetic sequences (seed {args.seed}): "
        f"{lengths.sum()} residues, median length {int(np.median(lengths))}, max {lengths.max()}, "
        f"{int((lengths > 1022).sum())} longer than 1022 (extract.py truncates them, molgraph "
        f"windows them).\n"
    )
    print(header, flush=True)
    rows = [row for size in args.sizes for row in benchmark(size, sequences, device, args.warmup)]
    report = f"{header}\n{table(rows)}\n"
    print("\n" + report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
