"""The package's shape: an import graph without cycles that follows the layering the
README's Layout section declares (its ``layers`` block, read here, is the one place it is
written down), and small modules and functions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "molgraph"
#: Imports inside functions, with the reason each is there; any other is a failure.
LAZY_IMPORTS = {
    ("molgraph", "molgraph.pretrained"): "`import molgraph` stays free of torch",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, name: str) -> list[tuple[str, bool]]:
    """(molgraph module imported, whether the import is inside a function)."""
    tree = ast.parse(path.read_text(), str(path))
    inside = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).rstrip(".")
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            if target == "molgraph" or target.startswith("molgraph."):
                found.append((target, id(node) in inside))
    return found


def _graph() -> dict[str, set[str]]:
    """Module → the molgraph modules it imports when it is imported (a name imported from
    a package counts as the submodule when one exists, else the package); the lazy
    imports of :data:`LAZY_IMPORTS` run later, on use, and are left out."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, in_function in _imports(path, name):
            while target not in modules:
                target = target.rpartition(".")[0]
            if target != name and not (in_function and (name, target) in LAZY_IMPORTS):
                graph[name].add(target)
    return graph


def _layers() -> list[list[str]]:
    """The README's layering, top layer first: one line per layer, names comma-separated."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```text\n# layers.*?\n(.*?)```", readme, re.S)
    assert block, "README.md lacks the ```text # layers block of its Layout section"
    return [
        [n.strip() for n in line.split(",")] for line in block.group(1).splitlines() if line.strip()
    ]


def _layer_of(module: str, layers: list[list[str]]) -> int:
    """Index of the layer whose name is the longest prefix of ``module`` (0 = top)."""
    best, index = "", None
    for i, names in enumerate(layers):
        for n in names:
            full = "molgraph" if n == "molgraph" else f"molgraph.{n}"
            if (module == full or module.startswith(full + ".")) and len(full) > len(best):
                best, index = full, i
    assert index is not None, f"{module} is in no layer of README.md's layering"
    return index


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_every_import_follows_the_layering() -> None:
    layers = _layers()
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            if _layer_of(target, layers) < _layer_of(module, layers):
                wrong.append(f"{module} imports {target}, a layer above it")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_hides_inside_a_function() -> None:
    hidden = [
        f"{name} imports {target} inside a function"
        for name, path in _modules().items()
        for target, in_function in _imports(path, name)
        if in_function and not any(name == a and target.startswith(b) for a, b in LAZY_IMPORTS)
    ]
    assert not hidden, "\n".join(hidden)


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The layering check fails where it should: a leaf importing the CLI."""
    layers = _layers()
    assert _layer_of("molgraph.cli.main", layers) < _layer_of("molgraph.errors", layers)
    source = "def f():\n    from molgraph.cli import main\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert _imports(path, "molgraph.probe") == [("molgraph.cli", True), ("molgraph.cli.main", True)]


def test_modules_and_functions_stay_small() -> None:
    """No module of the package over 400 lines, no function over 60."""
    long = []
    for name, path in _modules().items():
        source = path.read_text()
        if len(source.splitlines()) > 400:
            long.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert not long, "\n".join(long)
