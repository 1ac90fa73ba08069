"""The training run as a library function: :class:`TrainingRun` says what to train,
:func:`train` trains it and writes the run's artefacts. No Hydra here: ``molgraph train``
builds a :class:`TrainingRun` from its config (:func:`molgraph.builder.run_from_config`);
Python code builds one directly.

>>> run = TrainingRun(                                               # doctest: +SKIP
...     data=MoleculeCSV("solubility.csv", target_columns=["logS"]),
...     featurizer=MoleculeFeaturizer.preset("default"),
...     encoder=ModuleSpec.of(GINEncoder, hidden_dim=300),
...     trainer={"max_epochs": 30},
... )
>>> metrics = train(run, "runs/solubility")                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from molgraph import paths
from molgraph.bundles.finetune import pretrained_encoder
from molgraph.data.dataset import DataSource, GraphDataset
from molgraph.data.embeddings import esm_embeddings, fill_esm_cache
from molgraph.data.folds import ProteinGymFoldSplit
from molgraph.data.loader import GraphDataModule
from molgraph.data.scaffolds import ScaffoldSplit
from molgraph.data.split_checks import split_dataset
from molgraph.data.splits import Splitter
from molgraph.dms import ranking_scorer
from molgraph.errors import ConfigError
from molgraph.esm import ESMSettings, LoadedESM
from molgraph.featurize import Featurizer, ProteinFeaturizer
from molgraph.fit import EpochTimer, fit_and_report
from molgraph.models.heads import MLPHead
from molgraph.models.module import PropertyModel
from molgraph.models.recipe import ModuleSpec, Recipe, public_name
from molgraph.models.tasks import Task
from molgraph.nn.fusion import ESMResidueEmbedding, FusionSpec
from molgraph.nn.output import Encoder
from molgraph.progress import MetricsProgressBar
from molgraph.resume import (
    LoaderEpoch,
    RandomState,
    mark_finished,
    mark_running,
    resume_checkpoint,
)

log = logging.getLogger(__name__)

Metrics = dict[str, dict[str, float]]
#: ``lightning.Trainer`` arguments of a run that sets none.
DEFAULT_TRAINER: Mapping[str, Any] = {
    "max_epochs": 60, "deterministic": True, "log_every_n_steps": 10,
    "enable_model_summary": False,
}  # fmt: skip


@dataclass(frozen=True)
class TrainingRun:
    """What to train, as values: every field maps onto a constructor or a setting.

    Parameters
    ----------
    data
        A data source (``MoleculeCSV``, ``StructureFolder``, ``MutationalScan``).
    featurizer
        Inputs → graphs; its widths size the encoder.
    encoder
        The encoder class and its arguments; the input widths (``in_node_dim``,
        ``in_edge_dim``, ``in_node_vector_dim``) are filled in from the featurizer.
    head
        The task head; ``in_dim`` and ``out_dim`` are filled in.
    split
        A splitter (``ScaffoldSplit()``, ``RandomSplit()``, ...).
    model
        :class:`~molgraph.models.PropertyModel` keyword arguments (optimizer factory,
        warm-up, ``cuda_graphs``, ...).
    trainer
        ``lightning.Trainer`` keyword arguments (callbacks, logger and root directory are
        the run's).
    fusion, esm
        ESM fusion (None or mode ``none``: the graph encoder alone) and the ESM model.
    variance
        Regression: a mean-variance head (a variance per target too, Gaussian NLL; see
        :class:`~molgraph.models.tasks.Task`).
    pretrained, freeze
        Train from a bundle's encoder (directory or registered name), frozen or not.
    seed, batch_size, patience, num_workers, matmul_precision
        Seed of everything; graphs per batch; epochs without improvement before early
        stopping; featurization processes (None: every core); float32 matmul precision.
    cache_dir
        Featurized datasets and ESM embeddings (None: no dataset cache).
    logger
        Called with ``save_dir=`` the run directory: a Lightning logger beside
        ``metrics.csv``, or None.
    """

    data: DataSource
    featurizer: Featurizer
    encoder: ModuleSpec
    head: ModuleSpec = field(default_factory=lambda: ModuleSpec.of(MLPHead))
    split: Splitter = field(default_factory=ScaffoldSplit)
    model: Mapping[str, Any] = field(default_factory=dict)
    trainer: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRAINER))
    fusion: FusionSpec | None = None
    esm: ESMSettings = field(default_factory=ESMSettings)
    variance: bool = False
    pretrained: str | None = None
    freeze: bool = False
    seed: int = 0
    batch_size: int = 64
    patience: int = 20
    num_workers: int | None = None
    matmul_precision: str = "high"
    cache_dir: str | Path | None = field(default_factory=paths.cache_dir)
    logger: Callable[..., Logger] | None = None

    @property
    def fused(self) -> FusionSpec | None:
        """The fusion, if any (mode ``none`` is none)."""
        return self.fusion if self.fusion is not None and self.fusion.active else None


def train(run: TrainingRun, run_dir: str | Path, resume: bool = False) -> Metrics:
    """Build what ``run`` describes, train, and write the run's artefacts to ``run_dir``:
    ``split.json``, ``model.pt``, ``metrics.json``, ``predictions_test.csv``,
    ``metrics.csv``, ``training_curves.png`` and ``parity.png`` or ``roc.png`` (see
    :func:`molgraph.fit.fit_and_report`). Returns the validation and test metrics (empty
    on DDP ranks other than zero, which write nothing). ``resume``: go on from the run's
    last epoch (:mod:`molgraph.resume`); the run must be the same."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = resume_checkpoint(run_dir) if resume else None
    if rank_zero_only.rank == 0:
        mark_running(run_dir)
    L.seed_everything(run.seed, workers=True)
    torch.set_float32_matmul_precision(run.matmul_precision)
    _check(run)
    encoder_spec, encoder, provenance = _encoder(run)
    fusion, language, loaded = _language_model(run)  # ESM loads before featurization
    dataset = _dataset(run, fusion, language, loaded)
    if fusion is not None:
        encoder = fusion.encoder(encoder, language)
    split = split_dataset(run.split, dataset)  # identical items in one part; val scorable
    if rank_zero_only.rank == 0:  # under DDP every rank builds the run; rank zero writes
        split.save(run_dir / "split.json", dataset.row_ids)
    log.info("split: %d train, %d val, %d test", len(split.train), len(split.val), len(split.test))
    trained_on = {"data": describe(run.data), "split": describe(run.split)}
    if provenance is not None:
        trained_on["pretrained"] = provenance
    model = _model(run, dataset, split.train, encoder, encoder_spec, fusion, trained_on)
    datamodule = GraphDataModule(dataset, split, batch_size=run.batch_size, seed=run.seed,
                                 pad_train_batches=model.cuda_graphs)  # fmt: skip
    trainer = _trainer(run, model.task, run_dir)
    bins = getattr(run.data, "bin_column", None)
    ranking = None  # ProteinGym's ranking metrics for its folds or a scan with bins
    if isinstance(run.split, ProteinGymFoldSplit) or bins:
        ranking = ranking_scorer(dataset, bins)
    metrics = fit_and_report(model, datamodule, trainer, run_dir, checkpoint, ranking)
    if rank_zero_only.rank == 0:
        mark_finished(run_dir)
    return metrics


def load_dataset(run: TrainingRun) -> GraphDataset:
    """The run's featurized dataset as training sees it (ESM embeddings attached for a
    model fused with a frozen ESM)."""
    _check(run)
    return _dataset(run, *_language_model(run))


def _dataset(
    run: TrainingRun,
    fusion: FusionSpec | None,
    language: ESMResidueEmbedding | None,
    loaded: LoadedESM | None,
) -> GraphDataset:
    dataset = run.data.load(run.featurizer, run.cache_dir, run.num_workers)
    if fusion is not None and language is None:
        assert loaded is not None
        embeddings = esm_embeddings(dataset.graphs, _residue_columns(run),
                                    run.esm.embedder(loaded), run.cache_dir)  # fmt: skip
        dataset = dataset.with_embeddings(embeddings)
    return dataset


def _check(run: TrainingRun) -> None:
    """Choices that cannot work together fail here, before anything is featurized."""
    if not isinstance(run.data, DataSource):
        raise ConfigError(f"data: {type(run.data).__name__} is not a data source "
                          "(check_featurizer, load, path, target_columns, task)")  # fmt: skip
    run.data.check_featurizer(run.featurizer)
    try:  # the task the model will have: a variance head needs regression targets
        Task(run.data.task, run.data.target_columns, run.variance)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    fusion = run.fused
    if fusion is not None and not isinstance(run.featurizer, ProteinFeaturizer):
        raise ConfigError(
            f"fusion={fusion.mode} needs residue graphs (featurizer=protein), "
            f"not {type(run.featurizer).__name__}"
        )


def _residue_columns(run: TrainingRun) -> slice:
    assert isinstance(run.featurizer, ProteinFeaturizer)
    return run.featurizer.residue_type_columns


def _encoder(run: TrainingRun) -> tuple[ModuleSpec | None, Encoder | None, dict | None]:
    """The graph encoder (None for ``esm_only``) with its input widths, its spec, and the
    bundle it came from (or None)."""
    fusion = run.fused
    if run.freeze and not run.pretrained:
        raise ConfigError("encoder.freeze=true needs encoder.pretrained=BUNDLE")
    if fusion is not None and fusion.mode == "esm_only":
        if run.pretrained:
            raise ConfigError("encoder.pretrained: this fusion mode has no graph encoder to load")
        return None, None, None
    featurizer = run.featurizer
    widths = {
        "in_node_dim": featurizer.node_dim + (0 if fusion is None else fusion.extra_node_dim),
        "in_edge_dim": featurizer.edge_dim,
    }
    if run.encoder.accepts("in_node_vector_dim"):
        widths["in_node_vector_dim"] = featurizer.node_vector_dim
    spec, provenance = run.encoder.with_arguments(**widths), None
    if run.pretrained:
        spec, encoder, provenance = pretrained_encoder(run.pretrained, run.freeze, featurizer,
                                                       spec.to_dict())  # fmt: skip
        log.info("encoder from bundle %s (%s)", run.pretrained,
                 "frozen" if run.freeze else "fine-tuned")  # fmt: skip
    else:
        encoder = spec.build("encoder")
    if not isinstance(encoder, Encoder):
        raise ConfigError(f"encoder {type(encoder).__name__} is not a graph encoder (out_dim, "
                          "requires_positions, GraphBatch → EncoderOutput)")  # fmt: skip
    if encoder.requires_positions and not featurizer.has_coordinates:
        raise ConfigError(
            f"encoder {type(encoder).__name__} needs 3D coordinates but the featurizer "
            "gives none: set featurizer.conformer=true"
        )
    return spec, encoder, provenance


def _language_model(
    run: TrainingRun,
) -> tuple[FusionSpec | None, ESMResidueEmbedding | None, LoadedESM | None]:
    """The fusion with its ESM facts, the in-model ESM (loaded weights) when its last
    layers are fine-tuned, and the loaded ESM; Nones without fusion."""
    fusion = run.fused
    if fusion is None:
        return None, None, None
    loaded = run.esm.load()
    esm = run.esm
    fusion = fusion.with_esm(esm.name, esm.layer, esm.finetune_layers, loaded[0],
                             _residue_columns(run))  # fmt: skip
    language = fusion.language_model()
    if language is not None:
        language.model.load_state_dict(loaded[0].state_dict())
    return fusion, language, loaded


def _model(
    run: TrainingRun,
    dataset: GraphDataset,
    train_indices: Any,
    encoder: nn.Module,
    encoder_spec: ModuleSpec | None,
    fusion: FusionSpec | None,
    trained_on: dict[str, Any],
) -> PropertyModel:
    """The model to train: head sized from the encoder and targets, regression targets
    standardised with the training set's statistics (per target kind), and the recipe that rebuilds it."""
    task = Task(run.data.task, run.data.target_columns, run.variance)
    mean, std = None, None
    if task.kind != "classification":
        train_y = dataset.y[train_indices]
        mean = torch.nanmean(train_y, dim=0)
        std = torch.sqrt(torch.nanmean((train_y - mean) ** 2, dim=0)).clamp_min(1e-6)
        if task.kind != "regression":  # mixed: classification targets stay as logits
            regression = torch.tensor([k == "regression" for k in task.kinds])
            mean, std = torch.where(regression, mean, 0.0), torch.where(regression, std, 1.0)
    head = run.head.with_arguments(in_dim=encoder.out_dim, out_dim=task.num_outputs)
    recipe = Recipe(run.featurizer, encoder_spec, head, task, fusion, trained_on)
    options = dict(run.model)
    if options.get("cuda_graphs") and fusion is not None and fusion.finetune_layers:
        log.info("model.cuda_graphs off: an in-model ESM sizes its token tensor from each "
                 "batch, so there are no fixed shapes to capture")  # fmt: skip
        options["cuda_graphs"] = False
    return PropertyModel(encoder, head.build("head"), task, mean, std, recipe=recipe, **options)


def _trainer(run: TrainingRun, task: Task, run_dir: Path) -> L.Trainer:
    """The run's Lightning trainer: early stopping and best checkpoint on the task's
    monitored metric, epoch timing, ``metrics.csv`` and the run's logger, if any."""
    callbacks = [
        EarlyStopping(task.monitor, mode=task.mode, patience=run.patience),
        ModelCheckpoint(
            run_dir / "checkpoints",
            filename="best",
            monitor=task.monitor,
            mode=task.mode,
            save_last=True,
        ),
        EpochTimer(),
        RandomState(),
        LoaderEpoch(),
    ]
    if run.trainer.get("enable_progress_bar", True):
        callbacks.append(MetricsProgressBar(task.monitor))
    loggers: list[Logger] = [CSVLogger(run_dir, name="", version="")]
    if run.logger is not None:
        try:
            loggers.append(run.logger(save_dir=str(run_dir)))
        except ModuleNotFoundError as exc:
            raise ConfigError(f"logger {run.logger} needs a package that is not installed: "
                              f"{exc}") from None  # fmt: skip
    # the run directory already holds config.yaml and split.json: that is intended
    warnings.filterwarnings(
        "ignore", message="Experiment logs directory .* exists and is not empty"
    )
    return L.Trainer(**run.trainer, callbacks=callbacks, logger=loggers,
                     default_root_dir=str(run_dir))  # fmt: skip


def describe(obj: Any) -> dict[str, Any]:
    """A recipe's record of a data source or splitter: its class and settings."""
    record: dict[str, Any] = {"_target_": public_name(type(obj))}
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            record[f.name] = list(value) if isinstance(value, tuple) else value
    return record


def precompute_esm(
    data: DataSource,
    featurizer: Featurizer,
    esm: ESMSettings,
    cache_dir: str | Path | None = None,
    num_workers: int | None = None,
) -> int:
    """Fill the ESM cache for a protein dataset (``molgraph embed-esm``), one chunk in
    memory at a time; returns the number of sequences."""
    data.check_featurizer(featurizer)
    dataset = data.load(featurizer, cache_dir, num_workers)
    if not isinstance(featurizer, ProteinFeaturizer):
        raise ConfigError(f"data: {type(data).__name__} gives no protein sequences to embed")
    columns = featurizer.residue_type_columns
    return fill_esm_cache(dataset.graphs, columns, esm.embedder(), cache_dir)
