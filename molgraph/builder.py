"""Configs → objects: the one module that calls ``hydra.utils.instantiate``.

Only ``_target_`` paths under :data:`ALLOWED_TARGETS`, or under a package the config lists
in ``user_packages`` (classes of your own), are instantiated. A config becomes
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
from molgraph.ensembles import UncertaintySettings, train_ensemble
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


def user_packages(cfg: DictConfig | dict) -> tuple[str, ...]:
    """The packages a config trusts besides :data:`ALLOWED_TARGETS` (``user_packages``)."""
    packages = cfg.get("user_packages") or ()
    if isinstance(packages, str) or not all(isinstance(p, str) and p for p in packages):
        raise ConfigError(f"user_packages must be a list of package names, got {packages!r}")
    return tuple(str(p).strip(".") for p in packages)


def _check_targets(node: Any, where: str, trusted: tuple[str, ...] = ()) -> None:
    if isinstance(node, dict):
        target = node.get("_target_")
        allowed = (*ALLOWED_TARGETS, *(f"{p}." for p in trusted))
        if target is not None and not str(target).startswith(allowed):
            raise CheckpointError(
                f"{where}: refusing to instantiate {target!r} (allowed: {', '.join(allowed)}; "
                "add a package of your own with user_packages=[...])"
            )
        for value in node.values():
            _check_targets(value, where, trusted)
    elif isinstance(node, list):
        for value in node:
            _check_targets(value, where, trusted)


def _container(node: DictConfig | dict) -> dict[str, Any]:
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    assert isinstance(container, dict)
    return container


def build(
    node: DictConfig | dict, where: str = "config", trusted: tuple[str, ...] = (), **kwargs: Any
) -> Any:
    """``instantiate`` after checking every ``_target_`` is an allowed one (or in a
    ``trusted`` package).

    ``kwargs`` (built objects, derived sizes) replace the config's entries of the same
    name and are passed to the constructor as they are, never converted.
    """
    container = {k: v for k, v in _container(node).items() if k not in RUN_SETTINGS}
    _check_targets(container, where, trusted)
    if not kwargs:
        return instantiate(container, _convert_="all")
    rest = {k: v for k, v in container.items() if k not in kwargs}
    return instantiate({**rest, "_partial_": True}, _convert_="all")(**kwargs)


def _arguments(
    node: DictConfig, target: str, where: str, leave: tuple[str, ...] = (), trusted=()
) -> dict:
    """A constructor node's arguments, built (an optimizer factory, say), for ``target``."""
    container = _container(node)
    if container.get("_target_") != target:
        raise ConfigError(f"{where}: expected _target_ {target}, got {container.get('_target_')!r}")
    arguments = {k: v for k, v in container.items() if k != "_target_" and k not in leave}
    return build(arguments, where, trusted)


def _module_spec(node: DictConfig, where: str, trusted: tuple[str, ...] = ()) -> ModuleSpec:
    """An encoder or head node as a spec; derived (``???``) values are left to the run."""
    container = {k: v for k, v in _container(node).items()
                 if k not in RUN_SETTINGS and v != DERIVED}  # fmt: skip
    _check_targets(container, where, trusted)
    return ModuleSpec.from_dict(container, where, trusted)


def _built(node: DictConfig, where: str, trusted: tuple[str, ...] = ()) -> Any:
    """``build``, with a constructor's complaint (an unknown setting) as a ConfigError."""
    try:
        return build(node, where, trusted)
    except Exception as exc:
        raise ConfigError(f"{where}: {exc}") from None


def run_from_config(cfg: DictConfig) -> TrainingRun:
    """The training run a ``molgraph train`` config describes."""
    own = user_packages(cfg)
    logger = None
    if cfg.get("logger") is not None:
        logger = build({**_container(cfg.logger), "_partial_": True}, "logger", own)
    return TrainingRun(
        data=build(cfg.data, "data", own),
        featurizer=build(cfg.featurizer, "featurizer", own),
        encoder=_module_spec(cfg.encoder, "encoder", own),
        head=_module_spec(cfg.model.head, "model.head", own),
        split=build(cfg.split, "split", own),
        model=_arguments(cfg.model, "molgraph.models.PropertyModel", "model", ("head",), own),
        trainer=_arguments(cfg.trainer, "lightning.Trainer", "trainer", trusted=own),
        fusion=None if cfg.get("fusion") is None else _built(cfg.fusion, "fusion", own),
        esm=_built(cfg.esm, "esm", own),
        variance=bool(cfg.get("variance", False)),
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


def train_from_config(cfg: DictConfig, run_dir: Path, resume: bool = False) -> Metrics:
    """Write the resolved config to ``run_dir/config.yaml`` and train the run it describes
    (``resume``: go on from the run's last epoch)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # under DDP every rank builds the run; rank zero writes
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    settings = uncertainty_from_config(cfg)
    if settings is None:
        return train(run_from_config(cfg), run_dir, resume)
    if resume:
        raise ConfigError(f"resume={run_dir}: an ensemble run cannot be resumed; train it again")
    return train_ensemble(run_from_config(cfg), run_dir, settings)


def uncertainty_from_config(cfg: DictConfig) -> UncertaintySettings | None:
    """The run's uncertainty settings: the ``uncertainty`` group, or an ensemble of
    ``ensemble`` members when only that is set; None for a plain single-model run."""
    members = int(cfg.get("ensemble", 1) or 1)
    if cfg.get("uncertainty") is not None:
        return _built(cfg.uncertainty, "uncertainty")
    return UncertaintySettings(members=members) if members > 1 else None


def precompute_esm_from_config(cfg: DictConfig) -> int:
    """Fill the ESM cache for the dataset the config names (``molgraph embed-esm``)."""
    featurizer = build(cfg.featurizer, "featurizer")
    return precompute_esm(build(cfg.data, "data"), featurizer, _built(cfg.esm, "esm"),
                          cfg.cache_dir, cfg.num_workers)  # fmt: skip
