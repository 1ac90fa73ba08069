"""Encoder bundles: a directory of ``weights.safetensors`` and ``recipe.json``.

Written from a training run (:func:`export_run`) or a DGL-LifeSci pre-trained GIN
(:mod:`molgraph.bundles.dgllife`), kept in a local registry of names
(:mod:`molgraph.bundles.registry`), and trained from (:mod:`molgraph.bundles.finetune`).
Reading one runs nothing from it: JSON and checksummed safetensors.
"""

from molgraph.bundles.format import (
    RECIPE,
    WEIGHTS,
    Bundle,
    describe,
    export_run,
    is_bundle,
    read_bundle,
    write_bundle,
)
from molgraph.bundles.registry import open_bundle, register, registered, registry_dir

__all__ = [
    "RECIPE",
    "WEIGHTS",
    "Bundle",
    "describe",
    "export_run",
    "is_bundle",
    "open_bundle",
    "read_bundle",
    "register",
    "registered",
    "registry_dir",
    "write_bundle",
]
