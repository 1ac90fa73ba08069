"""molgraph: graph-level property prediction for molecules and proteins."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``from molgraph import load_encoder`` without importing torch on ``import molgraph``
    if name == "load_encoder":
        from molgraph.pretrained import load_encoder

        return load_encoder
    raise AttributeError(f"module 'molgraph' has no attribute {name!r}")
