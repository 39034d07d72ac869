"""The package's import graph must be acyclic: between modules, and between subpackages (no import running
back up the layers). Every import counts, also those inside functions (a lazy import is still a dependency).

    python tools/import_graph.py          # exit 1 and the circles when there are any
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    """Top-level package name (``posestream.engine``) -> its folder, as pyproject.toml maps them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {name: ROOT / folder for name, folder in config["tool"]["setuptools"]["package-dir"].items()}


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its ``__init__``'s name)."""
    found = {}
    for name, folder in package_dirs().items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((name, *parts))] = path
    return found


def imported(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The package's modules that ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # `from package import module` depends on the module; `from module import name` on the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def graph(collapse: int | None = None) -> dict[str, set[str]]:
    """Module -> the modules it imports; with ``collapse``, modules below that depth
    (``posestream.engine.sinks.
    slp`` at depth 3) merge into their subpackage, so that a circle between subpackages shows."""
    known = modules()

    def node(name: str) -> str:
        parts = name.split(".")
        if collapse is None or len(parts) <= collapse:
            return name
        is_package = known[name].name == "__init__.py" and len(parts) == collapse
        return ".".join(parts[:collapse]) if len(parts) > collapse or is_package else name

    edges: dict[str, set[str]] = {}
    for module, path in known.items():
        for target in imported(module, path, known):
            if node(target) != node(module):
                edges.setdefault(node(module), set()).add(node(target))
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    failed = False
    for label, collapse in (("modules", None), ("subpackages", 3), ("packages", 2)):
        for circle in circles(graph(collapse)):
            failed = True
            print(f"import circle between {label}: " + " <-> ".join(circle))
    print(
        "import graph: circles found"
        if failed
        else "import graph: acyclic (modules, subpackages and packages)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
