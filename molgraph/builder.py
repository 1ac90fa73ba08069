"""Configs → objects: the one module that calls ``hydra.utils.instantiate``.

Only ``_target_`` paths under :data:`ALLOWED_TARGETS` are instantiated. A config becomes
a :class:`~molgraph.train.TrainingRun` (:func:`run_from_config`), which the library
function :func:`~molgraph.train.train` trains; nothing below this module imports Hydra.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

import molgraph
from molgraph import paths
from molgraph.errors import CheckpointError, ConfigError
from molgraph.models.recipe import ModuleSpec
from molgraph.train import Metrics, TrainingRun, precompute_esm, train

ALLOWED_TARGETS = ("molgraph.", "torch.optim.", "lightning.")
#: Settings that ride in the encoder's node for the run, not for the constructor:
#: ``encoder.pretrained=BUNDLE encoder.freeze=true``.
RUN_SETTINGS = ("pretrained", "freeze")
#: A config's mark for a value the code derives (input widths, number of targets).
DERIVED = "???"


def embedded_dataset(name: str) -> str:
    """Path of a dataset shipped inside the package (``${embedded:esol.csv}`` in configs)."""
    return str(files("molgraph.datasets") / name)


if not OmegaConf.has_resolver("embedded"):
    OmegaConf.register_new_resolver("embedded", embedded_dataset)
if not OmegaConf.has_resolver("molgraph_cache"):  # ${molgraph_cache:}: $MOLGRAPH_CACHE or default
    OmegaConf.register_new_resolver("molgraph_cache", lambda: str(paths.cache_dir()))
if not OmegaConf.has_resolver("nonsense_stop"):  # featurizer.stop_residue from data.nonsense
    OmegaConf.register_new_resolver("nonsense_stop", lambda policy: str(policy) == "stop")


def config_dir() -> Path:
    """The Hydra configs: inside the installed package, or ``conf/`` of a source checkout."""
    packaged = Path(molgraph.__file__).parent / "conf"
    return packaged if packaged.is_dir() else Path(molgraph.__file__).parents[1] / "conf"


def _check_targets(node: Any, where: str) -> None:
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not str(target).startswith(ALLOWED_TARGETS):
            raise CheckpointError(f"{where}: refusing to instantiate {target!r}")
        for value in node.values():
            _check_targets(value, where)
    elif isinstance(node, list):
        for value in node:
            _check_targets(value, where)


def _container(node: DictConfig | dict) -> dict[str, Any]:
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    assert isinstance(container, dict)
    return container


def build(node: DictConfig | dict, where: str = "config", **kwargs: Any) -> Any:
    """``instantiate`` after checking every ``_target_`` is an allowed one.

    ``kwargs`` (built objects, derived sizes) replace the config's entries of the same
    name and are passed to the constructor as they are, never converted.
    """
    container = {k: v for k, v in _container(node).items() if k not in RUN_SETTINGS}
    _check_targets(container, where)
    if not kwargs:
        return instantiate(container, _convert_="all")
    rest = {k: v for k, v in container.items() if k not in kwargs}
    return instantiate({**rest, "_partial_": True}, _convert_="all")(**kwargs)


def _arguments(node: DictConfig, target: str, where: str, leave: tuple[str, ...] = ()) -> dict:
    """A constructor node's arguments, built (an optimizer factory, say), for ``target``."""
    container = _container(node)
    if container.get("_target_") != target:
        raise ConfigError(f"{where}: expected _target_ {target}, got {container.get('_target_')!r}")
    arguments = {k: v for k, v in container.items() if k != "_target_" and k not in leave}
    return build(arguments, where)


def _module_spec(node: DictConfig, where: str) -> ModuleSpec:
    """An encoder or head node as a spec; derived (``???``) values are left to the run."""
    container = {k: v for k, v in _container(node).items()
                 if k not in RUN_SETTINGS and v != DERIVED}  # fmt: skip
    _check_targets(container, where)
    return ModuleSpec.from_dict(container, where)


def _built(node: DictConfig, where: str) -> Any:
    """``build``, with a constructor's complaint (an unknown setting) as a ConfigError."""
    try:
        return build(node, where)
    except Exception as exc:
        raise ConfigError(f"{where}: {exc}") from None


def run_from_config(cfg: DictConfig) -> TrainingRun:
    """The training run a ``molgraph train`` config describes."""
    logger = None
    if cfg.get("logger") is not None:
        logger = build({**_container(cfg.logger), "_partial_": True}, "logger")
    return TrainingRun(
        data=build(cfg.data, "data"),
        featurizer=build(cfg.featurizer, "featurizer"),
        encoder=_module_spec(cfg.encoder, "encoder"),
        head=_module_spec(cfg.model.head, "model.head"),
        split=build(cfg.split, "split"),
        model=_arguments(cfg.model, "molgraph.models.PropertyModel", "model", leave=("head",)),
        trainer=_arguments(cfg.trainer, "lightning.Trainer", "trainer"),
        fusion=None if cfg.get("fusion") is None else _built(cfg.fusion, "fusion"),
        esm=_built(cfg.esm, "esm"),
        pretrained=cfg.encoder.get("pretrained") or None,
        freeze=bool(cfg.encoder.get("freeze", False)),
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        patience=cfg.patience,
        num_workers=cfg.num_workers,
        matmul_precision=cfg.matmul_precision,
        cache_dir=cfg.cache_dir,
        logger=logger,
    )


def train_from_config(cfg: DictConfig, run_dir: Path) -> Metrics:
    """Write the resolved config to ``run_dir/config.yaml`` and train the run it describes."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # under DDP every rank builds the run; rank zero writes
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return train(run_from_config(cfg), run_dir)


def precompute_esm_from_config(cfg: DictConfig) -> int:
    """Fill the ESM cache for the dataset the config names (``molgraph embed-esm``)."""
    featurizer = build(cfg.featurizer, "featurizer")
    return precompute_esm(build(cfg.data, "data"), featurizer, _built(cfg.esm, "esm"),
                          cfg.cache_dir, cfg.num_workers)  # fmt: skip
