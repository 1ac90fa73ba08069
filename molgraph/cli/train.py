"""``molgraph train``: the Hydra application."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from molgraph.builder import config_dir, train_from_config


def _task(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    metrics = train_from_config(cfg, run_dir)
    if metrics:
        print(f"\nrun directory: {run_dir}")
        for part in ("val", "test"):
            means = {k: v for k, v in metrics[part].items() if "/" not in k}
            print(f"{part} metrics: " + json.dumps({k: round(v, 4) for k, v in means.items()}))
    return None


def main(argv: list[str]) -> int:
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")(_task)
    sys.argv = ["molgraph train", *argv]
    app()
    return 0
