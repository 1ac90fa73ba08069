"""``molgraph embed-esm``: a dataset's ESM embeddings computed once into the cache.

Takes the same config as ``molgraph train`` (Hydra overrides), so a later run with the
same ``data``, ``featurizer`` and ``esm`` settings finds every embedding cached:

    molgraph embed-esm experiment=gb1_gvp esm.path=/models/esm2_t33_650M_UR50D.pt
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from molgraph.builder import config_dir, precompute_esm_from_config


def _task(cfg: DictConfig) -> None:
    n = precompute_esm_from_config(cfg)
    print(
        f"{n} sequences embedded with {cfg.esm.model} (layer {cfg.esm.layer}), cached in "
        f"{cfg.cache_dir}/esm"
    )


def main(argv: list[str]) -> int:
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")(_task)
    # no run directory: this command writes only to the cache
    sys.argv = ["molgraph embed-esm", *argv, "hydra.output_subdir=null", "hydra.run.dir=."]
    app()
    return 0
