"""molgraph: graph-level property prediction for molecules and proteins."""

__version__ = "0.1.0"
