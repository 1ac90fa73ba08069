"""Encoder bundles: export from a training run, load for embedding or prediction, a local
registry of named bundles, and import of DGL-LifeSci's pre-trained GINs.

>>> from molgraph import load_encoder                  # doctest: +SKIP
>>> enc = load_encoder("path/to/bundle")               # doctest: +SKIP
>>> enc.embed(["CCO", "c1ccccc1O"])                    # doctest: +SKIP
"""

from molgraph.pretrained.bundle import Bundle, export_run, read_bundle, write_bundle
from molgraph.pretrained.encoder import PretrainedEncoder, load_encoder
from molgraph.pretrained.registry import open_bundle, register, registered, registry_dir

__all__ = [
    "Bundle",
    "PretrainedEncoder",
    "export_run",
    "load_encoder",
    "open_bundle",
    "read_bundle",
    "register",
    "registered",
    "registry_dir",
    "write_bundle",
]
