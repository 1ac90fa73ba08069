"""Encoder bundles: a directory holding ``weights.safetensors`` and ``recipe.json``.

The recipe says everything needed to rebuild and use the weights without the repository's
``conf/``: the encoder class and arguments, the featurizer settings (every feature's
vocabulary spelled out), optionally the task head, target names and ESM settings (any
other key of the training run's recipe is carried through as it is), the molgraph
version, what it was trained on (data, split, metrics) and the sha256 of the weights.

Reading a bundle never runs code from it: the recipe is JSON, the weights are safetensors
(a header and raw tensor bytes), and the checksum is verified before the weights are
parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import Tensor, nn

import molgraph
from molgraph.errors import CheckpointError
from molgraph.models.checkpoint import read_checkpoint
from molgraph.models.recipe import Recipe

FORMAT = "molgraph-encoder-bundle"
FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
RECIPE = "recipe.json"


@dataclass(frozen=True)
class Bundle:
    """A bundle read from disk: its directory, recipe and weights (verified)."""

    path: Path
    recipe: Recipe
    state_dict: dict[str, Tensor]

    @property
    def has_head(self) -> bool:
        """Whether the bundle also predicts (it holds a task head)."""
        return self.recipe.has_head

    @property
    def sha256(self) -> str:
        """The weights' checksum (verified on reading)."""
        return str(self.recipe.extra["weights"]["sha256"])

    def encoder(self) -> nn.Module:
        """The bundle's encoder with its weights, in eval mode."""
        module = self.recipe.build_encoder(str(self.path))
        prefix = "encoder."
        state = {k[len(prefix) :]: v for k, v in self.state_dict.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{self.path}: weights do not match the recipe: {exc}") from None
        return module.eval()


def to_json(obj: Any) -> str:
    """Indented JSON with arrays of plain values on one line (feature vocabularies)."""

    def inline(match: re.Match) -> str:
        try:
            return json.dumps(json.loads(match.group(0)))
        except json.JSONDecodeError:  # a bracket inside a string: leave it as it is
            return match.group(0)

    return re.sub(r"\[[^\[\]{}]*\]", inline, json.dumps(obj, indent=2, allow_nan=False))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a bundle directory (it holds ``recipe.json``)."""
    return (Path(path) / RECIPE).is_file()


def write_bundle(path: str | Path, recipe: Recipe, state_dict: dict[str, Tensor]) -> Path:
    """Write ``recipe`` and ``state_dict`` as a bundle directory ``path`` (replaced whole
    if it exists, written in a staging folder first so a half-written bundle is never seen).

    The format and the weights' checksum are added to the recipe's JSON form.
    """
    path = Path(path)
    recipe_json = recipe.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
        save_file(tensors, staging / WEIGHTS, metadata={"format": FORMAT})
        full = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **{k: v for k, v in recipe_json.items() if k not in ("format", "format_version")},
            "weights": {"file": WEIGHTS, "sha256": sha256_of(staging / WEIGHTS)},
        }
        (staging / RECIPE).write_text(to_json(full) + "\n")
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe of bundle ``path`` (JSON only; the weights are not read)."""
    path = Path(path)
    if not is_bundle(path):
        raise CheckpointError(f"{path}: not a molgraph bundle (no {RECIPE} in it)")
    try:
        recipe = json.loads((path / RECIPE).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path / RECIPE}: not valid JSON ({exc})") from None
    if not isinstance(recipe, dict) or recipe.get("format") != FORMAT:
        raise CheckpointError(f"{path / RECIPE}: not a {FORMAT} recipe")
    if recipe.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: bundle format version {recipe.get('format_version')!r}; this molgraph "
            f"({molgraph.__version__}) reads version {FORMAT_VERSION}"
        )
    return recipe


def read_bundle(path: str | Path, expected_sha256: str | None = None) -> Bundle:
    """Read and verify bundle ``path``.

    The weights file's sha256 must equal the recipe's (and ``expected_sha256``, a
    registry's record, when given) before it is parsed as safetensors.

    Raises
    ------
    CheckpointError
        Not a bundle, a checksum mismatch, or weights that are not safetensors.
    """
    path = Path(path)
    recipe = read_recipe(path)
    weights = path / WEIGHTS  # never a name from the recipe: no path leaves the bundle
    if not weights.is_file():
        raise CheckpointError(f"{path}: the bundle has no {WEIGHTS}")
    recorded = recipe.get("weights", {}).get("sha256")
    actual = sha256_of(weights)
    for source, expected in (("its recipe", recorded), ("the registry", expected_sha256)):
        if expected is not None and actual != expected:
            raise CheckpointError(
                f"{weights}: sha256 {actual[:16]}… does not match {source}'s "
                f"{str(expected)[:16]}…: the weights were changed or corrupted; refusing to "
                "load them"
            )
    if recorded is None:
        raise CheckpointError(f"{path / RECIPE}: no sha256 of the weights recorded")
    try:
        state_dict = load_file(weights)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{weights}: not a safetensors file ({exc})") from None
    return Bundle(path, Recipe.from_dict(recipe, str(path)), state_dict)


def export_run(run_dir: str | Path, output: str | Path, with_head: bool = True) -> Path:
    """A bundle from a training run directory (its ``model.pt`` and ``metrics.json``).

    ``with_head=False`` leaves out the task head, target names and scalers (an
    encoder-only bundle).
    """
    run_dir = Path(run_dir)
    recipe, state_dict = read_checkpoint(run_dir)
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    trained_on = {**recipe.trained_on, "metrics": metrics, "run": str(run_dir)}
    recipe = replace(recipe, trained_on=trained_on)
    if not with_head:
        recipe = recipe.encoder_only()
        state_dict = {k: v for k, v in state_dict.items() if k.startswith("encoder.")}
    return write_bundle(output, recipe, state_dict)


def count_parameters(state_dict: dict[str, Tensor], prefix: str = "") -> int:
    return sum(
        v.numel()
        for k, v in state_dict.items()
        if k.startswith(prefix) and v.is_floating_point() and "running_" not in k
    )


def describe(bundle: Bundle) -> str:
    """A human-readable summary: the recipe and the weights' sizes."""
    state = bundle.state_dict
    lines = [
        f"bundle: {bundle.path}",
        f"weights: {WEIGHTS} ({len(state)} tensors, {count_parameters(state):,} parameters; "
        f"encoder {count_parameters(state, 'encoder.'):,}), sha256 verified",
    ]
    if "target_mean" in state and "target_std" in state and bundle.recipe.task is not None:
        names = bundle.recipe.task.names
        for name, mean, std in zip(
            names, state["target_mean"].tolist(), state["target_std"].tolist(), strict=False
        ):
            lines.append(f"target scaler {name!r}: mean {mean:.6g}, std {std:.6g}")
    lines.append("recipe:")
    lines.append((bundle.path / RECIPE).read_text().rstrip())
    return "\n".join(lines)
