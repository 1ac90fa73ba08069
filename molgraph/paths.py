"""Where molgraph keeps its files by default: the one place that reads the environment.

``$MOLGRAPH_CACHE`` (default ``~/.cache/molgraph``) holds featurized datasets and, under
``esm/``, ESM embeddings; ``$MOLGRAPH_MODELS`` (default ``~/.cache/molgraph/models``) is
the registry of named bundles.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$MOLGRAPH_CACHE``, default ``~/.cache/molgraph``."""
    return Path(os.environ.get("MOLGRAPH_CACHE", "~/.cache/molgraph")).expanduser()


def models_dir() -> Path:
    """``$MOLGRAPH_MODELS``, default ``~/.cache/molgraph/models``."""
    return Path(os.environ.get("MOLGRAPH_MODELS", "~/.cache/molgraph/models")).expanduser()
