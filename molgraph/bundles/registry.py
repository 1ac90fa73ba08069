"""A local registry of named bundles.

The registry is a directory (``$MOLGRAPH_MODELS``, default ``~/.cache/molgraph/models``)
holding one bundle directory per name and ``registry.json``, which records each name's
weights sha256 when it was registered. Loading a name checks the weights against both the
bundle's recipe and that record, so neither a changed weights file nor a changed recipe
goes unnoticed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from molgraph import paths
from molgraph.bundles.format import Bundle, is_bundle, read_bundle
from molgraph.errors import CheckpointError

INDEX = "registry.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def registry_dir() -> Path:
    """``$MOLGRAPH_MODELS``, default ``~/.cache/molgraph/models``."""
    return paths.models_dir()


def _index(root: Path) -> dict[str, dict[str, str]]:
    path = root / INDEX
    if not path.is_file():
        return {}
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the registry index is not valid JSON ({exc})") from None
    return index if isinstance(index, dict) else {}


def registered() -> dict[str, dict[str, str]]:
    """Registered names → their record (``sha256``, ``path``)."""
    return _index(registry_dir())


def register(bundle: str | Path, name: str, overwrite: bool = False) -> Path:
    """Copy bundle directory ``bundle`` into the registry as ``name``; returns its new path.

    The bundle is verified first; its weights' sha256 is recorded in the index.
    """
    if not _NAME.fullmatch(name):
        raise CheckpointError(
            f"{name!r}: a registry name is letters, digits, '.', '_' and '-' (not starting "
            "with '.' or '-')"
        )
    root = registry_dir()
    index = _index(root)
    if name in index and not overwrite:
        raise CheckpointError(f"{name!r} is already registered in {root} (pass overwrite)")
    sha = read_bundle(bundle).sha256
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bundle, target)
    index[name] = {"sha256": sha}
    (root / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return target


def resolve(reference: str | Path) -> tuple[Path, str | None]:
    """A bundle directory and the sha256 its weights must have (None: the recipe's).

    ``reference`` is a bundle directory, or the name of a registered bundle.
    """
    path = Path(reference)
    if is_bundle(path):
        return path, None
    name = str(reference)
    if _NAME.fullmatch(name):
        root = registry_dir()
        record = _index(root).get(name)
        if record is not None:
            if not is_bundle(root / name):
                raise CheckpointError(f"{name!r} is registered but {root / name} is missing")
            return root / name, record["sha256"]
    if path.exists():
        raise CheckpointError(f"{path}: not a molgraph bundle (no recipe.json in it)")
    names = ", ".join(sorted(registered())) or "none"
    raise CheckpointError(
        f"{reference!r}: no such file or directory, and no bundle of that name in the "
        f"registry {registry_dir()} (registered: {names})"
    )


def open_bundle(reference: str | Path) -> Bundle:
    """Read and verify a bundle given by directory or registered name."""
    path, sha = resolve(reference)
    return read_bundle(path, expected_sha256=sha)
