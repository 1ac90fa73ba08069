"""DGL comes in through molgraph.graphs only, with GraphBolt replaced by a placeholder."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest
import torch

import molgraph
from molgraph.graphs import DGLGraph, dgl

PACKAGE = Path(molgraph.__file__).resolve().parent


def test_dgl_works_after_import() -> None:
    g = dgl.graph((torch.tensor([0, 1]), torch.tensor([1, 2])), num_nodes=3)
    assert isinstance(g, DGLGraph)
    assert (g.num_nodes(), g.num_edges()) == (3, 2)
    both = dgl.batch([g, g])
    assert (both.num_nodes(), both.num_edges()) == (6, 4)
    assert both.batch_num_nodes().tolist() == [3, 3]
    assert both.batch_num_edges().tolist() == [2, 2]
    src, dst = both.edges()
    assert src.tolist() == [0, 1, 3, 4]  # second copy shifted by 3 nodes
    assert dst.tolist() == [1, 2, 4, 5]


def test_graphbolt_is_the_placeholder() -> None:
    graphbolt = sys.modules["dgl.graphbolt"]
    assert isinstance(graphbolt, types.ModuleType)
    assert graphbolt.__doc__ == "Placeholder: molgraph does not use GraphBolt."
    assert getattr(graphbolt, "__file__", None) is None  # not the compiled package


def _dgl_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """``file:line module`` for every statement importing dgl or a submodule of it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            f"{path.relative_to(root)}:{node.lineno} {name}"
            for name in names
            if name == "dgl" or name.startswith("dgl.")
        ]
    return found


def test_only_graphs_module_imports_dgl() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "graphs.py" in sources
    assert len(sources) > 10  # the scan really walks the package
    offenders = [
        hit for path in sources if path != PACKAGE / "graphs.py" for hit in _dgl_imports(path)
    ]
    assert offenders == [], "import dgl through molgraph.graphs instead"
    # the scan does see an import where there is one
    assert [hit.split()[-1] for hit in _dgl_imports(PACKAGE / "graphs.py")] == ["dgl"]


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("import dgl", ["dgl"]),
        ("import dgl.function as fn", ["dgl.function"]),
        ("from dgl import batch", ["dgl"]),
        ("from dgl.nn import GINConv", ["dgl.nn"]),
        ("def f():\n    import dgl\n", ["dgl"]),  # imports inside functions count too
        ("from molgraph.graphs import dgl", []),
        ("import dglke", []),
        ("from . import dgl_helpers", []),
    ],
)
def test_scan_finds_dgl_imports(tmp_path: Path, source: str, flagged: list[str]) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    assert [hit.split()[-1] for hit in _dgl_imports(path, root=tmp_path)] == flagged
