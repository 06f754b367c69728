"""No import circles: the package's modules import each other in one direction only.

Every ``.py`` file of the package is a node (``symdiff/`` is ``symdiff``, ``lowering/`` is
``symdiff.lowering``, ``nn/`` is ``symdiff.nn``, as pyproject's ``wheel.packages`` maps them).
Every import statement is an edge, module-level and function-local alike, relative ones
resolved: a function-local import is still a dependency, it only runs later.

- ``import a.b`` and ``from a.b import f`` are edges to ``a.b``;
- ``from a import b`` is an edge to ``a.b`` when that is a module of the package (or the
  compiled extension, which is not a ``.py`` file and so not a node), else to ``a`` itself;
- the implicit import of a module's parent packages is not an edge (every module of a package
  runs its ``__init__`` first; that is Python's rule, not a dependency the module chose).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import defaultdict
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

# Cycles still in the tree, each being removed by work in progress; empty is the goal. An entry
# that is no longer a cycle fails test_known_cycles_are_still_cycles: delete it then.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _folders() -> dict[str, Path]:
    """Package name -> source folder, from pyproject's ``wheel.packages``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = config["tool"]["scikit-build"]["wheel"]["packages"]
    return {target.replace("/", "."): ROOT / folder for target, folder in packages.items()}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in _folders().items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _extensions() -> set[str]:
    """Compiled modules: ``install(TARGETS _native DESTINATION symdiff/lowering)`` in CMakeLists."""
    text = (ROOT / "CMakeLists.txt").read_text()
    return {f"{where.replace('/', '.')}.{target}"
            for target, where in re.findall(r"install\(TARGETS\s+(\w+)\s+DESTINATION\s+([\w/]+)", text)}


def _imports(name: str, source: str, is_package: bool, modules, extensions):
    """(imported module, line, nested?) for every import of the package's modules in ``source``,
    the text of the module ``name``; nested: not a statement of the module's body (in a function,
    a class, an ``if`` or a ``try``)."""
    tree = ast.parse(source)
    top_level = {id(statement) for statement in tree.body}
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        local = id(node) not in top_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name, node.lineno, local
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    yield submodule, node.lineno, local
                elif submodule not in extensions and base in modules:
                    yield base, node.lineno, local


def _graph():
    modules, extensions = _modules(), _extensions()
    edges = defaultdict(dict)  # module -> {imported module: "file:line"}
    for name, path in modules.items():
        source = path.read_text()
        for target, line, _ in _imports(name, source, path.name == "__init__.py", modules, extensions):
            if target != name:
                edges[name].setdefault(target, f"{path.relative_to(ROOT)}:{line}")
    return modules, edges


def _cycles(nodes, edges) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _describe(component, edges) -> str:
    """One circle through the component, spelled out with where each import is."""
    members = set(component)
    path, seen = [component[0]], {component[0]: 0}
    while True:
        step = min(t for t in edges[path[-1]] if t in members)
        if step in seen:
            circle = path[seen[step]:] + [step]
            break
        seen[step] = len(path)
        path.append(step)
    lines = [f"  {a} -> {b}  ({edges[a][b]})" for a, b in itertools.pairwise(circle)]
    return f"{len(component)} modules: {', '.join(component)}\n" + "\n".join(lines)


def test_the_edge_rule():
    modules = {"p", "p.a", "p.b", "p.sub", "p.sub.c", "p.sub.d"}
    source = """
import p.sub.c                # the module itself: not its parents p and p.sub
import numpy
from p import b, name         # b is a module; name is something p's __init__ defines
from p import _native         # a compiled module: no node
from . import c               # p.sub.c
from .. import a              # p.a
def f():
    from ..b import thing     # function-local and relative: p.b
"""
    found = set(_imports("p.sub.d", source, False, modules, {"p._native"}))
    assert found == {("p.sub.c", 2, False), ("p.b", 4, False), ("p", 4, False), ("p.sub.c", 6, False),
                     ("p.a", 7, False), ("p.b", 9, True)}


def test_the_walker_sees_the_package():
    modules, edges = _graph()
    assert {"symdiff", "symdiff.node", "symdiff.lowering", "symdiff.nn"} <= set(modules)
    assert "symdiff.lowering._native" in _extensions()
    assert "symdiff.node" in edges["symdiff.graph"]
    assert "symdiff.ops.registry" in edges["symdiff.ops"]


def test_no_import_cycles():
    modules, edges = _graph()
    cycles = [c for c in _cycles(modules, edges) if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, edges) for c in cycles)


def test_known_cycles_are_still_cycles():
    modules, edges = _graph()
    current = {frozenset(c) for c in _cycles(modules, edges)}
    assert not KNOWN_CYCLES - current, "remove these from KNOWN_CYCLES: they are gone"
