"""Recipes: everything needed to rebuild a trained model and featurize its inputs.

A :class:`Recipe` travels inside every checkpoint (``model.pt``, Lightning ``.ckpt``) and
bundle (``recipe.json``) as plain JSON-able data: the featurizer's settings, the encoder
and head as a molgraph class plus constructor arguments (:class:`ModuleSpec`), the task,
the ESM fusion (:class:`~molgraph.nn.fusion.FusionSpec`) and what the model was trained on.
A recipe comes from a file, so building from it imports and calls molgraph's own
``nn.Module`` classes (of :data:`RECIPE_MODULES`) and nothing else, and a name outside
them is refused before anything is imported; no Hydra is involved.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

import molgraph
from molgraph.errors import CheckpointError
from molgraph.featurize import Featurizer, featurizer_from_dict
from molgraph.models.tasks import Task
from molgraph.nn.fusion import FusionSpec

#: The keys a recipe's JSON form gives its typed fields; any other key (a bundle's
#: ``format`` and ``weights``, keys of later versions) is carried through unchanged.
_FIELDS = ("featurizer", "encoder", "head", "task", "fusion", "trained_on", "molgraph_version")
#: The modules whose classes a recipe may name: molgraph's encoders and heads. A spec from
#: a config may also name classes of the packages the config trusts (``user_packages``).
RECIPE_MODULES = ("molgraph.nn", "molgraph.models")


def _within(module_name: str, packages: Sequence[str]) -> bool:
    return any(module_name == p or module_name.startswith(f"{p}.") for p in packages)


def public_name(cls: type) -> str:
    """The shortest dotted name a class is exported under (``molgraph.nn.GINEncoder``
    rather than ``molgraph.nn.encoders.gin.GINEncoder``), as configs name it."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:end]))
        if getattr(module, cls.__qualname__, None) is cls:
            return f"{'.'.join(parts[:end])}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class ModuleSpec:
    """A molgraph ``nn.Module`` class, by dotted name, and its constructor arguments.

    The JSON form is Hydra's: ``{"_target_": "molgraph.nn.GINEncoder", "hidden_dim": 300}``.
    ``target`` must lie in :data:`RECIPE_MODULES` or in a package of ``trusted`` (packages
    a config or a caller vouches for; never stored, so a recipe read back from a file
    names molgraph's classes only).
    """

    target: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    trusted: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, module_class: type[nn.Module], **arguments: Any) -> ModuleSpec:
        """The spec of ``module_class`` (its package trusted: the caller holds the class)
        with ``arguments``."""
        package = module_class.__module__.split(".")[0]
        return cls(
            public_name(module_class), arguments, () if package == "molgraph" else (package,)
        )

    @classmethod
    def from_dict(cls, node: Any, where: str, trusted: Sequence[str] = ()) -> ModuleSpec:
        """From the JSON form; nested targets, Hydra's ``_args_``-style keys and targets
        outside :data:`RECIPE_MODULES` and ``trusted`` are refused (nothing is imported)."""
        if not isinstance(node, Mapping) or not isinstance(node.get("_target_"), str):
            raise CheckpointError(f"{where}: expected a mapping with a _target_")
        arguments = {k: v for k, v in node.items() if k != "_target_"}
        if any(k.startswith("_") for k in arguments) or "_target_" in repr(arguments):
            raise CheckpointError(f"{where}: {node['_target_']!r} has nested targets or Hydra keys")
        spec = cls(node["_target_"], arguments, tuple(trusted))
        spec._check(where)
        return spec

    def _check(self, where: str) -> str:
        """The target's module name, if it may be imported; else CheckpointError."""
        module_name = self.target.rpartition(".")[0]
        if not _within(module_name, (*RECIPE_MODULES, *self.trusted)):
            raise CheckpointError(
                f"{where}: refusing {self.target!r}: a recipe names classes of "
                f"{' and '.join(RECIPE_MODULES)} only (a training config may add packages "
                "of your own with user_packages=[...])"
            )
        return module_name

    def to_dict(self) -> dict[str, Any]:
        return {"_target_": self.target, **self.arguments}

    def with_arguments(self, **arguments: Any) -> ModuleSpec:
        return replace(self, arguments={**self.arguments, **arguments})

    def module_class(self, where: str = "recipe") -> type[nn.Module]:
        """The class named by ``target``: only an ``nn.Module`` class defined in
        :data:`RECIPE_MODULES` (or a trusted package) is accepted (a dotted path could
        reach any function through module attributes), and the module is checked against
        them before it is imported."""
        module_name = self._check(where)
        name = self.target.rpartition(".")[2]
        refused = CheckpointError(f"{where}: refusing {self.target!r}: not a molgraph module class")
        try:
            cls = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError):
            raise CheckpointError(f"{where}: {self.target!r} is not a class") from None
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            raise refused
        if not _within(cls.__module__, (*RECIPE_MODULES, *self.trusted)):
            raise refused
        return cls

    def accepts(self, argument: str) -> bool:
        """Whether the class's constructor takes ``argument``."""
        return argument in inspect.signature(self.module_class()).parameters

    def build(self, where: str = "recipe") -> nn.Module:
        """A new (untrained) module."""
        return self.module_class(where)(**self.arguments)


@dataclass(frozen=True)
class Recipe:
    """How a model was built and how its inputs are featurized.

    Parameters
    ----------
    featurizer
        Inputs → graphs, exactly as in training.
    encoder
        The graph encoder; None for a sequence-only (``esm_only``) fusion.
    head, task
        The task head and task (kinds and target names); None in an encoder-only bundle.
    fusion
        ESM fusion, or None.
    trained_on
        Provenance: data source, split, pretrained bundle, metrics.
    extra
        Other keys of the JSON form, carried through as they are.
    """

    featurizer: Featurizer
    encoder: ModuleSpec | None
    head: ModuleSpec | None = None
    task: Task | None = None
    fusion: FusionSpec | None = None
    trained_on: Mapping[str, Any] = field(default_factory=dict)
    molgraph_version: str = molgraph.__version__
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_head(self) -> bool:
        """Whether the recipe predicts (it has a task head and a task)."""
        return self.head is not None and self.task is not None

    def encoder_only(self) -> Recipe:
        """This recipe without its head and task."""
        return replace(self, head=None, task=None)

    def build_encoder(self, where: str = "recipe") -> nn.Module:
        """The (untrained) encoder, fused with ESM where the recipe says so."""
        encoder = None if self.encoder is None else self.encoder.build(f"{where} (encoder)")
        if self.fusion is None:
            if encoder is None:
                raise CheckpointError(f"{where}: neither an encoder nor a fusion")
            return encoder
        try:
            return self.fusion.encoder(encoder, self.fusion.language_model())
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise CheckpointError(f"{where} (fusion): {exc!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what checkpoints and bundles store)."""
        parts = {
            "molgraph_version": self.molgraph_version,
            "featurizer": self.featurizer.to_dict(),
            "encoder": None if self.encoder is None else self.encoder.to_dict(),
            "fusion": None if self.fusion is None else self.fusion.to_dict(),
        }
        if self.head is not None:
            parts["head"] = self.head.to_dict()
        if self.task is not None:
            parts["task"] = {"kind": self.task.kind, "names": list(self.task.names)}
            if self.task.variance:  # written only when set: older recipes read unchanged
                parts["task"]["variance"] = True
        return {**parts, "trained_on": dict(self.trained_on), **self.extra}

    @classmethod
    def from_dict(cls, data: Any, where: str = "recipe") -> Recipe:
        """From the JSON form of any molgraph version; :class:`CheckpointError` names
        what is missing or unusable."""
        if not isinstance(data, Mapping):
            raise CheckpointError(f"{where}: not a molgraph recipe")
        for key in ("featurizer", "encoder"):
            if key not in data:
                raise CheckpointError(f"{where} lacks {key!r}: not a molgraph model")
        try:
            featurizer = featurizer_from_dict(data["featurizer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: unusable featurizer recipe ({exc})") from None
        head, task = data.get("head"), data.get("task")
        return cls(
            featurizer=featurizer,
            encoder=None if data["encoder"] is None else ModuleSpec.from_dict(data["encoder"], f"{where} (encoder)"),
            head=None if head is None else ModuleSpec.from_dict(head, f"{where} (head)"),
            task=None if task is None else _task(task, where),
            fusion=None if data.get("fusion") is None else _fusion(data["fusion"], where),
            trained_on=data.get("trained_on") or {},
            molgraph_version=str(data.get("molgraph_version", molgraph.__version__)),
            extra={k: v for k, v in data.items() if k not in _FIELDS},
        )  # fmt: skip


def _task(data: Any, where: str) -> Task:
    try:
        return Task(data["kind"], tuple(data["names"]), bool(data.get("variance", False)))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} (task): {exc!r}") from None


def _fusion(data: Any, where: str) -> FusionSpec:
    if not isinstance(data, Mapping) or not {"mode", "esm_dim"} <= set(data):
        raise CheckpointError(f"{where} (fusion): expected mode and esm_dim")
    try:
        return FusionSpec.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} (fusion): {exc!r}") from None
