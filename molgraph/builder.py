"""Configs → objects. The one module that calls ``hydra.utils.instantiate``.

Only ``_target_`` paths under :data:`ALLOWED_TARGETS` are instantiated, so a recipe read
from a checkpoint can name molgraph's own classes but nothing else.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

import molgraph
from molgraph.data.loader import GraphDataModule
from molgraph.errors import CheckpointError, ConfigError
from molgraph.models.module import PropertyModel
from molgraph.models.tasks import Task
from molgraph.train import EpochTimer, fit_and_report

log = logging.getLogger(__name__)

ALLOWED_TARGETS = ("molgraph.", "torch.optim.", "lightning.")
#: Settings that ride in the encoder's node for the builder, not for the constructor:
#: ``encoder.pretrained=BUNDLE encoder.freeze=true`` (see :func:`_pretrained`).
BUILDER_SETTINGS = ("pretrained", "freeze")


def embedded_dataset(name: str) -> str:
    """Path of a dataset shipped inside the package (``${embedded:esol.csv}`` in configs)."""
    return str(files("molgraph.datasets") / name)


if not OmegaConf.has_resolver("embedded"):
    OmegaConf.register_new_resolver("embedded", embedded_dataset)


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


def build(node: DictConfig | dict, where: str = "config", **kwargs: Any) -> Any:
    """``instantiate`` after checking every ``_target_`` is an allowed one.

    ``kwargs`` (built objects, derived sizes) replace the config's entries of the same
    name and are passed to the constructor as they are, never converted.
    """
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    assert isinstance(container, dict)
    container = {k: v for k, v in container.items() if k not in BUILDER_SETTINGS}
    _check_targets(container, where)
    if not kwargs:
        return instantiate(container, _convert_="all")
    rest = {k: v for k, v in container.items() if k not in kwargs}
    return instantiate({**rest, "_partial_": True}, _convert_="all")(**kwargs)


def _resolved(node: DictConfig, **values: Any) -> dict[str, Any]:
    container = OmegaConf.to_container(node, resolve=True)
    assert isinstance(container, dict)
    return {**{k: v for k, v in container.items() if k not in BUILDER_SETTINGS}, **values}


def _data_source(cfg: DictConfig, featurizer: Any) -> Any:
    """The data source the config names, checked against the featurizer.

    A source (``MoleculeCSV``, ``StructureFolder``, ``MutationalScan``) decides how it is
    loaded: ``source.load(featurizer, cache_dir, num_workers)`` gives the dataset.
    """
    source = build(cfg.data)
    for method in ("check_featurizer", "load"):
        if not callable(getattr(source, method, None)):
            raise ConfigError(
                f"data: {type(source).__name__} is not a data source (it has no {method}())"
            )
    source.check_featurizer(featurizer)
    return source


def _vector_input(encoder_cfg: DictConfig, featurizer: Any) -> dict[str, int]:
    """``in_node_vector_dim`` for encoders that take node vectors (the featurizer's
    channel count, 0 where it gives none); nothing for the others."""
    container = OmegaConf.to_container(encoder_cfg, resolve=True)
    _check_targets(container, "encoder")
    assert isinstance(container, dict)
    parameters = inspect.signature(get_class(container["_target_"])).parameters
    if "in_node_vector_dim" not in parameters:
        return {}
    return {"in_node_vector_dim": int(getattr(featurizer, "node_vector_dim", 0))}


def train_from_config(cfg: DictConfig, run_dir: Path) -> dict[str, dict[str, float]]:
    """Build everything the config names, train, and write the run's artefacts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = rank_zero_only.rank == 0  # under DDP every rank builds the run; rank zero writes
    if writer:
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    featurizer = build(cfg.featurizer)
    source = _data_source(cfg, featurizer)
    fusion = _fusion_settings(cfg, featurizer)
    encoder_cfg = None
    if fusion is None or fusion["mode"] != "esm_only":
        extra = fusion["proj_dim"] if fusion is not None and fusion["mode"] == "early" else 0
        encoder_cfg = _resolved(
            cfg.encoder,
            in_node_dim=featurizer.node_dim + extra,
            in_edge_dim=featurizer.edge_dim,
            **_vector_input(cfg.encoder, featurizer),
        )
    pretrained = _pretrained(cfg, featurizer, encoder_cfg)
    if pretrained is not None:
        encoder_cfg, encoder, _ = pretrained
    else:
        encoder = None if encoder_cfg is None else build(encoder_cfg)
    if getattr(encoder, "requires_positions", False) and not featurizer.has_coordinates:
        raise ConfigError(
            f"encoder {type(encoder).__name__} needs 3D coordinates but the featurizer "
            "gives none: set featurizer.conformer=true"
        )
    # ESM weights load before featurization, so a missing checkpoint fails at once
    esm_model = None if fusion is None else load_configured_esm(cfg.esm)
    language = None if esm_model is None else _language_model(esm_model[0], fusion, featurizer)
    dataset = source.load(featurizer, cfg.cache_dir, cfg.num_workers)
    if esm_model is not None and language is None:
        dataset = dataset.with_embeddings(esm_embeddings(cfg, dataset.sequences, esm_model))
    if fusion is not None:
        encoder = fused_encoder(encoder, fusion, language)
    splitter = build(cfg.split)
    split = splitter(dataset.items, dataset.y.numpy(), dataset.row_ids, table=dataset.table)
    if writer:
        split.save(run_dir / "split.json", dataset.row_ids)
    log.info("split: %d train, %d val, %d test", len(split.train), len(split.val), len(split.test))

    task = Task(source.task, source.target_columns)
    train_y = dataset.y[split.train]
    mean, std = None, None
    if task.kind == "regression":
        mean = torch.nanmean(train_y, dim=0)
        std = torch.sqrt(torch.nanmean((train_y - mean) ** 2, dim=0)).clamp_min(1e-6)
    head_cfg = _resolved(cfg.model.head, in_dim=encoder.out_dim, out_dim=len(task.names))
    recipe = {
        "molgraph_version": molgraph.__version__,
        "featurizer": featurizer.to_dict(),
        "encoder": encoder_cfg,
        "fusion": fusion,
        "head": head_cfg,
        "task": {"kind": task.kind, "names": list(task.names)},
        "trained_on": {
            "data": OmegaConf.to_container(cfg.data, resolve=True),
            "split": OmegaConf.to_container(cfg.split, resolve=True),
            **({"pretrained": pretrained[2]} if pretrained is not None else {}),
        },
    }
    model = build(
        cfg.model,
        encoder=encoder,
        head=build(head_cfg),
        task=task,
        target_mean=mean,
        target_std=std,
        recipe=recipe,
        # an in-model ESM sizes its token tensor from the batch: no fixed shapes to capture
        cuda_graphs=cfg.model.cuda_graphs and not (fusion or {}).get("finetune_layers"),
    )
    callbacks = [
        EarlyStopping(task.monitor, mode=task.mode, patience=cfg.patience),
        ModelCheckpoint(
            run_dir / "checkpoints", filename="best", monitor=task.monitor, mode=task.mode
        ),
        EpochTimer(),
    ]
    # the run directory already holds config.yaml and split.json: that is intended
    warnings.filterwarnings(
        "ignore", message="Experiment logs directory .* exists and is not empty"
    )
    trainer: L.Trainer = build(
        cfg.trainer,
        callbacks=callbacks,
        logger=_loggers(cfg, run_dir),
        default_root_dir=str(run_dir),
    )
    datamodule = GraphDataModule(
        dataset,
        split,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        pad_train_batches=model.cuda_graphs,
    )
    return fit_and_report(model, datamodule, trainer, run_dir)


def _loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """``metrics.csv`` (always: the run's curves and reports read it) and the config's
    ``logger``, if any, writing into ``run_dir``."""
    loggers: list[Logger] = [CSVLogger(run_dir, name="", version="")]
    if cfg.get("logger") is not None:
        try:
            loggers.append(build(cfg.logger, "logger", save_dir=str(run_dir)))
        except ModuleNotFoundError as exc:
            target = cfg.logger.get("_target_")
            raise ConfigError(
                f"logger {target} needs a package that is not installed: {exc}"
            ) from None
    return loggers


def _recipe_module(node: Any, where: str) -> torch.nn.Module:
    """Build an encoder or head from a recipe: only molgraph's own ``nn.Module`` classes.

    A recipe comes from a file, so its ``_target_`` is resolved and checked as a class
    (a dotted path can reach any function through module attributes), and nested
    targets are refused.
    """
    if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
        raise CheckpointError(f"{where}: expected a mapping with a _target_")
    target = node["_target_"]
    try:
        cls = get_class(target)
    except Exception:
        raise CheckpointError(f"{where}: {target!r} is not a class") from None
    if not (issubclass(cls, torch.nn.Module) and cls.__module__.startswith("molgraph.")):
        raise CheckpointError(f"{where}: refusing {target!r}: not a molgraph module class")
    arguments = {k: v for k, v in node.items() if k != "_target_"}
    if any(k.startswith("_") for k in arguments) or "_target_" in repr(arguments):
        raise CheckpointError(f"{where}: {target!r} has nested targets or Hydra keys")
    return cls(**arguments)


def encoder_from_recipe(recipe: dict[str, Any], where: str) -> torch.nn.Module:
    """The (untrained) encoder a recipe describes, fused with ESM where it says so."""
    fusion, encoder = recipe.get("fusion"), None
    if recipe.get("encoder") is not None:
        encoder = _recipe_module(recipe["encoder"], f"{where} (encoder)")
    if fusion is not None:
        return _recipe_fusion(encoder, fusion)
    if encoder is None:
        raise CheckpointError(f"{where}: neither an encoder nor a fusion")
    return encoder


def model_from_recipe(recipe: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> PropertyModel:
    """Rebuild a trained model from a checkpoint's recipe and weights."""
    for key in ("featurizer", "encoder", "head", "task"):
        if key not in recipe:
            raise CheckpointError(f"checkpoint recipe lacks {key!r}: not a molgraph model")
    model = PropertyModel(
        encoder=encoder_from_recipe(recipe, "checkpoint recipe"),
        head=_recipe_module(recipe["head"], "checkpoint recipe (head)"),
        task=Task(recipe["task"]["kind"], tuple(recipe["task"]["names"])),
        recipe=recipe,
    )
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not match the recipe: {exc}") from None
    return model.eval()


# ESM fusion ------------------------------------------------------------------------------

_FUSION_KEYS = ("mode", "proj_dim", "combine")


def _fusion_settings(cfg: DictConfig, featurizer: Any) -> dict[str, Any] | None:
    """The fusion the config asks for, with the ESM settings a model needs to be rebuilt
    (model name, layer, width; the architecture when ESM runs inside the model), or None."""
    node = cfg.get("fusion")
    if node is None or node.get("mode", "none") == "none":
        return None
    fusion = OmegaConf.to_container(node, resolve=True)
    assert isinstance(fusion, dict)
    unknown = set(fusion) - set(_FUSION_KEYS) - {"_target_"}
    if unknown:
        raise ConfigError(f"fusion: unknown settings {sorted(unknown)} (known: {_FUSION_KEYS})")
    if getattr(featurizer, "residue_type_columns", None) is None:
        raise ConfigError(
            f"fusion={fusion['mode']} needs residue graphs (featurizer=protein), "
            f"not {type(featurizer).__name__}"
        )
    esm_cfg = cfg.esm
    return {
        **{k: fusion[k] for k in _FUSION_KEYS if k in fusion},
        "esm_model": _esm_name(esm_cfg),
        "esm_layer": int(esm_cfg.layer),
        "finetune_layers": int(esm_cfg.finetune_layers),
    }


def _esm_name(esm_cfg: DictConfig) -> str:
    return Path(esm_cfg.path).name.split(".")[0] if esm_cfg.path else str(esm_cfg.model)


def load_configured_esm(esm_cfg: DictConfig) -> tuple[torch.nn.Module, Any]:
    """The ESM model and alphabet the ``esm`` settings name (local file, hub cache, download)."""
    from molgraph.esm import load_esm

    return load_esm(esm_cfg.model, esm_cfg.path, download=bool(esm_cfg.download))


def _language_model(model: torch.nn.Module, fusion: dict[str, Any], featurizer: Any) -> Any:
    """Records the ESM width in ``fusion``; returns the in-model ESM (loaded weights) when
    its last layers are fine-tuned, else None (embeddings are then precomputed)."""
    fusion["esm_dim"] = int(model.embed_dim)
    if not fusion["finetune_layers"]:
        return None
    fusion["esm_architecture"] = [
        int(model.num_layers), int(model.embed_dim), int(model.attention_heads)
    ]  # fmt: skip
    columns = featurizer.residue_type_columns
    fusion["residue_columns"] = [int(columns.start), int(columns.stop)]
    language = _recipe_language_model(fusion)
    language.model.load_state_dict(model.state_dict())
    return language


def _recipe_language_model(fusion: dict[str, Any]) -> Any:
    """The in-model ESM (untrained) that ``fusion``'s architecture and columns describe."""
    from molgraph.nn.fusion import ESMResidueEmbedding

    layers, dim, heads = fusion["esm_architecture"]
    return ESMResidueEmbedding(
        layers, dim, heads, tuple(fusion["residue_columns"]), fusion["esm_layer"],
        fusion["finetune_layers"],
    )  # fmt: skip


def fused_encoder(encoder: Any, fusion: dict[str, Any], language: Any = None) -> torch.nn.Module:
    """The FusedEncoder that ``fusion`` (as :func:`_fusion_settings` gives it) describes."""
    from molgraph.nn.fusion import FusedEncoder

    return FusedEncoder(
        encoder,
        fusion["mode"],
        fusion["esm_dim"],
        proj_dim=fusion.get("proj_dim", 128),
        combine=fusion.get("combine", "concat"),
        language_model=language,
    )


def _recipe_fusion(encoder: Any, fusion: Any) -> torch.nn.Module:
    if not isinstance(fusion, dict) or not {"mode", "esm_dim"} <= set(fusion):
        raise CheckpointError("checkpoint recipe (fusion): expected mode and esm_dim")
    try:
        language = _recipe_language_model(fusion) if fusion.get("finetune_layers") else None
        return fused_encoder(encoder, fusion, language)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint recipe (fusion): {exc!r}") from None


def _esm_cache(cfg: DictConfig, loaded: tuple[torch.nn.Module, Any] | None = None) -> tuple:
    """The configured ESM as an embedder, and its on-disk cache under ``cache_dir/esm``."""
    from molgraph.esm import EmbeddingCache, ESMEmbedder

    model, alphabet = loaded or load_configured_esm(cfg.esm)
    embedder = ESMEmbedder(
        model,
        alphabet,
        _esm_name(cfg.esm),
        layer=cfg.esm.layer,
        toks_per_batch=cfg.esm.toks_per_batch,
    )
    return embedder, EmbeddingCache.of(embedder, cfg.cache_dir)


def esm_embeddings(
    cfg: DictConfig, sequences: Sequence[str], loaded: tuple[torch.nn.Module, Any] | None = None
) -> list[torch.Tensor]:
    """Per-residue ESM embeddings of ``sequences`` (as the config's ``esm`` settings ask),
    from the on-disk cache; missing ones are computed and stored."""
    embedder, cache = _esm_cache(cfg, loaded)
    return cache.embed(embedder, list(sequences), progress=True)


def precompute_esm(cfg: DictConfig) -> int:
    """Fill the ESM cache for the dataset the config names (``molgraph embed-esm``);
    returns the number of sequences."""
    featurizer = build(cfg.featurizer)
    source = _data_source(cfg, featurizer)
    dataset = source.load(featurizer, cfg.cache_dir, cfg.num_workers)
    if not hasattr(dataset, "sequences"):
        raise ConfigError(f"data: {type(source).__name__} gives no protein sequences to embed")
    embedder, cache = _esm_cache(cfg)
    cache.compute(embedder, list(dataset.sequences), progress=True)  # memory: one chunk
    return len(dataset.sequences)


# Training from a bundle ------------------------------------------------------------------


def _pretrained(
    cfg: DictConfig, featurizer: Any, encoder_cfg: dict[str, Any] | None
) -> tuple[dict[str, Any], torch.nn.Module, dict[str, Any]] | None:
    """With ``encoder.pretrained`` set: the bundle's encoder recipe and module (frozen with
    ``encoder.freeze``) and provenance for the run's recipe; the other ``encoder.*``
    settings are not used. None without it."""
    reference, freeze = cfg.encoder.get("pretrained"), bool(cfg.encoder.get("freeze", False))
    if not reference:
        if freeze:
            raise ConfigError("encoder.freeze=true needs encoder.pretrained=BUNDLE")
        return None
    if encoder_cfg is None:
        raise ConfigError("encoder.pretrained: this fusion mode has no graph encoder to load")
    from molgraph.pretrained.finetune import pretrained_encoder

    encoder_cfg, encoder, provenance = pretrained_encoder(
        str(reference), freeze, featurizer, encoder_cfg
    )
    log.info("encoder from bundle %s (%s)", reference, "frozen" if freeze else "fine-tuned")
    return encoder_cfg, encoder, provenance
