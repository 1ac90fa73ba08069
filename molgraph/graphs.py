"""The one place molgraph imports DGL.

DGL 2.1.0 on PyPI ships GraphBolt binaries only for torch <= 2.2.1, and ``import dgl``
fails while loading them under newer torch. molgraph never uses GraphBolt (sampling
pipelines); it needs DGL's graph objects, batching and ``save_graphs``/``load_graphs``.
A placeholder module registered as ``dgl.graphbolt`` before the first import lets DGL's
core load on any torch. Every other molgraph module imports ``dgl`` from here.
"""

from __future__ import annotations

import os
import sys
import types

os.environ.setdefault("DGLBACKEND", "pytorch")

#: Keys of the tensors a featurizer stores on a DGLGraph (the optional node fields map
#: onto theirs in :data:`molgraph.batch.OPTIONAL_NODE_FIELDS`).
NODE_FEATURES = "x"  # float [num_nodes, node_dim]
NODE_POSITIONS = "pos"  # float [num_nodes, 3], Å
NODE_VECTORS = "vec"  # float [num_nodes, channels, 3], rotate with the coordinates
EDGE_FEATURES = "e"  # float [num_edges, edge_dim]


def _import_dgl() -> types.ModuleType:
    if "dgl" not in sys.modules and "dgl.graphbolt" not in sys.modules:
        placeholder = types.ModuleType("dgl.graphbolt")
        placeholder.__doc__ = "Placeholder: molgraph does not use GraphBolt."
        sys.modules["dgl.graphbolt"] = placeholder
    import dgl

    return dgl


dgl = _import_dgl()
DGLGraph = dgl.DGLGraph

__all__ = [
    "EDGE_FEATURES",
    "NODE_FEATURES",
    "NODE_POSITIONS",
    "NODE_VECTORS",
    "DGLGraph",
    "dgl",
]
