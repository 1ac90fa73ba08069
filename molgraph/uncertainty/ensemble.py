"""Models that predict a mean and a spread: an ensemble of members, or one model sampled
with MC dropout, plus the calibration fitted on the validation set.

On disk an ensemble is a directory with ``ensemble.json`` (method, members, calibration)
and one sub-directory per member: a run directory (``model.pt``) in a training run, an
encoder bundle with its head (safetensors + ``recipe.json``, sha256 recorded in
``ensemble.json``) in an exported bundle. Nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from molgraph.bundles import export_run, is_bundle, read_bundle
from molgraph.errors import CheckpointError
from molgraph.models.checkpoint import read_checkpoint
from molgraph.models.module import PropertyModel
from molgraph.uncertainty.calibration import Calibration, apply_calibration, calibration_from_dict

ENSEMBLE_FILE = "ensemble.json"
FORMAT = "molgraph-ensemble"
METHODS = ("ensemble", "dropout")
_MEMBER = re.compile(r"^[A-Za-z0-9_.-]+$")

#: A member model → its predictions of the graphs at hand with variances, ``[n, 2T]``
#: (:meth:`PropertyModel.predict_batch` with ``variance=True``).
MemberScore = Callable[[PropertyModel], np.ndarray]
#: ``[M, n, T]`` predictions of the members (or passes), and their ``[M, n, T]`` predicted
#: variances where the members have a mean-variance head (else None).
Samples = tuple[np.ndarray, np.ndarray | None]


def is_ensemble(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding an ensemble (``ensemble.json``)."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


@contextlib.contextmanager
def dropout_active(model: nn.Module) -> Iterator[None]:
    """Dropout layers sample inside the block, also through ``model.eval()`` calls (their
    ``train`` is shadowed by a no-op meanwhile); everything else stays in eval mode."""
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0]
    if not layers:
        raise CheckpointError("MC dropout needs dropout layers with p > 0 (model.head.dropout)")
    for layer in layers:
        layer.train()
        layer.train = lambda mode=True, layer=layer: layer  # type: ignore[method-assign]
    try:
        yield
    finally:
        for layer in layers:
            del layer.train
            layer.eval()


@dataclass
class Ensemble:
    """Members (one for MC dropout), how they are sampled, and the calibration.

    Parameters
    ----------
    members
        Trained models sharing featurizer and task.
    method
        ``ensemble`` (one sample per member) or ``dropout`` (``samples`` passes of each
        member with dropout active).
    calibration
        Fitted on the validation set; None before fitting (raw mean and sd).
    """

    members: list[PropertyModel]
    method: str = "ensemble"
    samples: int = 1
    calibration: Calibration | None = None
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.members:
            raise CheckpointError("an ensemble needs at least one member")
        if self.method not in METHODS:
            raise CheckpointError(f"uncertainty method must be one of {METHODS}: {self.method!r}")
        tasks = {m.task for m in self.members}
        if len(tasks) != 1:
            raise CheckpointError(f"ensemble members predict different tasks: {tasks}")
        self.names = self.names or [f"member{i}" for i in range(len(self.members))]

    @property
    def task(self):
        return self.members[0].task

    @property
    def recipe(self):
        return self.members[0].recipe

    def sample(self, score: MemberScore) -> Samples:
        """Predictions ``[M, n, T]`` (each member once, or ``samples`` MC-dropout passes)
        and their variances (None without a mean-variance head)."""
        if self.method == "ensemble":
            out = np.stack([score(m) for m in self.members])
        else:
            passes = []
            for member in self.members:
                with dropout_active(member):
                    passes.extend(score(member) for _ in range(self.samples))
            out = np.stack(passes)
        values, variances = np.split(out, 2, axis=-1)
        return values, variances if self.task.variance else None

    def columns(self, members: bool = False) -> list[str]:
        """Output columns per target: ``<t>``, ``<t>_sd``, ``<t>_lower``, ``<t>_upper``,
        then ``<t>_<member>`` for each member with ``members`` (and, for mean-variance
        members, ``<t>_<member>_var``: its predicted variance, uncalibrated)."""
        cols = [f"{t}{s}" for t in self.task.names for s in ("", "_sd", "_lower", "_upper")]
        if members and self.method == "ensemble":
            cols += [f"{t}_{n}" for t in self.task.names for n in self.names]
            if self.task.variance:
                cols += [f"{t}_{n}_var" for t in self.task.names for n in self.names]
        return cols

    def summarize(self, samples: Samples, members: bool = False) -> np.ndarray:
        """Values ``[n, len(columns(members))]`` of :meth:`sample`'s samples."""
        parts = self.calibrated(samples)
        values, variances = samples
        targets = range(values.shape[2])
        blocks = [np.stack([parts[k][:, t] for k in ("mean", "sd", "lower", "upper")], axis=1)
                  for t in targets]  # fmt: skip
        if members and self.method == "ensemble":
            blocks += [values[:, :, t].T for t in targets]
            if variances is not None:
                blocks += [variances[:, :, t].T for t in targets]
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def calibrated(self, samples: Samples) -> dict[str, np.ndarray]:
        """``mean`` (probabilities recalibrated), ``sd``, ``lower``, ``upper`` ``[n, T]``."""
        return apply_calibration(self.calibration, *samples)

    def predict(self, score: MemberScore, members: bool = False) -> np.ndarray:
        """:meth:`summarize` of :meth:`sample`."""
        return self.summarize(self.sample(score), members)

    def record(self, members: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The ``ensemble.json`` record naming ``members`` (name, and sha256 in bundles)."""
        return {
            "format": FORMAT,
            "method": self.method,
            "samples": self.samples,
            "members": list(members),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """Write ``ensemble.json`` into ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / ENSEMBLE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return path / ENSEMBLE_FILE


def read_record(path: str | Path) -> dict[str, Any]:
    """The checked ``ensemble.json`` of ``path``: member names stay inside the folder."""
    file = Path(path) / ENSEMBLE_FILE
    try:
        record = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file}: unreadable ensemble record ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{file}: not a {FORMAT} record")
    for member in record.get("members") or []:
        name = member.get("name", "") if isinstance(member, dict) else ""
        if not _MEMBER.match(name) or name in (".", ".."):
            raise CheckpointError(f"{file}: member name {name!r} is not a plain folder name")
    if not record.get("members"):
        raise CheckpointError(f"{file}: no members")
    return record


def load_ensemble(path: str | Path) -> Ensemble:
    """The ensemble of a run directory or bundle holding ``ensemble.json``."""
    path = Path(path)
    record = read_record(path)
    models = []
    for member in record["members"]:
        folder = path / member["name"]
        if is_bundle(folder):
            bundle = read_bundle(folder, expected_sha256=member.get("sha256"))
            recipe, state = bundle.recipe, bundle.state_dict
        else:
            recipe, state = read_checkpoint(folder)
        models.append(PropertyModel.from_recipe(recipe, state, str(folder)))
    calibration = record.get("calibration")
    return Ensemble(
        models,
        method=record.get("method", "ensemble"),
        samples=int(record.get("samples") or 1),
        calibration=None if calibration is None else calibration_from_dict(calibration),
        names=[m["name"] for m in record["members"]],
    )


def export_ensemble(run_dir: str | Path, output: str | Path) -> Path:
    """An ensemble bundle from an ensemble run directory: one bundle per member and
    ``ensemble.json`` with the calibration and each member's weights checksum."""
    run_dir, output = Path(run_dir), Path(output)
    record = read_record(run_dir)
    members = []
    for member in record["members"]:
        bundle = export_run(run_dir / member["name"], output / member["name"])
        members.append({"name": member["name"], "sha256": read_bundle(bundle).sha256})
    write_record(output, {**record, "members": members})
    return output
