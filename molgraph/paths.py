"""Where molgraph keeps its files by default: the one place that reads the environment.

``$MOLGRAPH_CACHE`` (default ``~/.cache/molgraph``) holds featurized datasets and, under
``esm/``, ESM embeddings; ``$MOLGRAPH_MODELS`` (default ``~/.cache/molgraph/models``) is
the registry of named bundles.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def cache_dir() -> Path:
    """``$MOLGRAPH_CACHE``, default ``~/.cache/molgraph``."""
    return Path(os.environ.get("MOLGRAPH_CACHE", "~/.cache/molgraph")).expanduser()


def models_dir() -> Path:
    """``$MOLGRAPH_MODELS``, default ``~/.cache/molgraph/models``."""
    return Path(os.environ.get("MOLGRAPH_MODELS", "~/.cache/molgraph/models")).expanduser()


#: A staging file or folder older than this (seconds) is stale even if its pid is reused.
STALE_AFTER_S = 24 * 3600


def staging_prefix(stem: str = ".tmp-") -> str:
    """Prefix of a staging name that records its owner: ``<stem><pid>-``."""
    return f"{stem}{os.getpid()}-"


def _owner_alive(name: str, stem: str) -> bool:
    pid = name[len(stem) :].split("-", 1)[0]
    if not pid.isdigit():  # written before owners were recorded: age decides
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, owned by another user
        return True
    return True


def remove_stale(directory: Path, stem: str = ".tmp-", max_age_s: float = STALE_AFTER_S) -> int:
    """Remove the staging entries ``<stem>*`` a killed writer left in ``directory``: those
    whose owner pid is dead, or older than ``max_age_s``. Returns how many went."""
    now, removed = time.time(), 0
    for entry in Path(directory).glob(f"{stem}*") if Path(directory).is_dir() else ():
        try:
            stale = now - entry.stat().st_mtime > max_age_s or not _owner_alive(entry.name, stem)
            if not stale:
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed += 1
        except FileNotFoundError:  # another process cleaned it first
            continue
    return removed
