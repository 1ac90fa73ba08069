"""Atomic scatter (``index_add_``, what molgraph.nn.scatter uses) against sorted-segment
(CSR) reduction (``torch.segment_reduce``) for the sums of message passing and readout.

    python experiments/benchmarks/reductions.py [--device cuda] [--threads 1]

Prints forward and forward+backward milliseconds of both, and their largest difference,
for a readout-like (25k atoms into 1k molecules) and an edge-like (60k bonds into 25k
atoms) sum, 300 wide, fp32.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

CASES = {"readout": (25_000, 1_000), "edges": (60_000, 25_000)}


def _milliseconds(step, device: str, repeats: int = 20) -> float:
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def atomic(src, index, lengths, groups: int, backward: bool) -> torch.Tensor:
    """Sum of ``src`` rows per group by ``index_add_`` (atomic adds on a GPU)."""
    out = src.new_zeros(groups, src.shape[1]).index_add_(0, index, src)
    if backward:
        out.sum().backward()
    return out


def csr(src, index, lengths, groups: int, backward: bool) -> torch.Tensor:
    """The same sum over sorted segments of the given ``lengths``."""
    out = torch.segment_reduce(src, "sum", lengths=lengths)
    if backward:
        out.sum().backward()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    name = (
        torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} thread(s)"
    )
    print(f"{name}, torch {torch.__version__}, width {args.width}")
    print("case     rows   groups  atomic fwd  csr fwd  atomic fwd+bwd  csr fwd+bwd  max |diff|")
    for case, (rows, groups) in CASES.items():
        index = torch.randint(0, groups, (rows,), device=args.device).sort().values
        src = torch.randn(rows, args.width, device=args.device, requires_grad=True)
        lengths = torch.bincount(index, minlength=groups)

        inputs = (src, index, lengths, groups)
        diff = (atomic(*inputs, backward=False) - csr(*inputs, backward=False)).abs().max().item()
        times = [
            _milliseconds(partial(f, *inputs, backward=b), args.device)
            for b in (False, True)
            for f in (atomic, csr)
        ]
        print(
            f"{case:8} {rows:6} {groups:7}  "
            + "  ".join(f"{t:10.2f}" for t in times)
            + f"  {diff:.2e}"
        )


if __name__ == "__main__":
    main()
