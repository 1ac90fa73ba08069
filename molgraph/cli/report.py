"""``molgraph report SWEEP_DIR``: one table (CSV, Markdown) and one plot for a sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from molgraph.builder import build
from molgraph.dms import fold_table, markdown, summarise
from molgraph.errors import MolgraphError
from molgraph.report import ReportError, write_report


def write_dms_report(sweep_dir: Path, out: Path, zero_shot: list[str]) -> str:
    """``dms_folds.csv`` and ``dms_report.md`` of the fold runs under ``sweep_dir``; the
    dataset is rebuilt (from the cache) from the first run's ``config.yaml``."""
    configs = sorted(Path(sweep_dir).rglob("config.yaml"))
    if not configs:
        raise ReportError(f"{sweep_dir}: no run with a config.yaml")
    cfg = OmegaConf.load(configs[0])
    data = build(cfg.data, "data")
    dataset = data.load(build(cfg.featurizer, "featurizer"), cfg.get("cache_dir"), progress=False)
    scores = {}
    for spec in zero_shot:
        name, path = spec.split("=", 1)
        table = pd.read_csv(path, keep_default_na=False)
        column = "masked_marginal" if "masked_marginal" in table else "wt_marginal"
        values = pd.to_numeric(table[column], errors="coerce").to_numpy()
        scores[name] = np.nan_to_num(values[dataset.row_ids], nan=np.nanmin(values))
    folds = fold_table(Path(sweep_dir), dataset, getattr(data, "bin_column", None), scores)
    out.mkdir(parents=True, exist_ok=True)
    folds.to_csv(out / "dms_folds.csv", index=False)
    text = markdown(summarise(folds))
    (out / "dms_report.md").write_text(text)
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="molgraph report",
        description="Aggregate the runs of a sweep (molgraph train -m ...): mean ± sd over "
        "seeds per configuration, sorted by the validation metric, failed runs listed.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the sweep directory (hydra.sweep.dir)")
    parser.add_argument(
        "--out", type=Path, default=None, help="where report.{csv,md,png} go (default: SWEEP_DIR)"
    )
    parser.add_argument(
        "--dms", action="store_true",
        help="mutational-scan folds: also ProteinGym's metrics per model and fold, with the "
        "one-hot ridge refitted on every fold's split (dms_report.md, dms_folds.csv)",
    )  # fmt: skip
    parser.add_argument("--zero-shot", action="append", default=[], metavar="NAME=CSV",
                        help="with --dms: scores of molgraph score-variants, as a baseline")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.dms:
            print(write_dms_report(args.sweep_dir, args.out or args.sweep_dir, args.zero_shot))
        paths = write_report(args.sweep_dir, args.out)
    except MolgraphError as exc:
        print(f"molgraph report: {exc}", file=sys.stderr)
        return 1
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
