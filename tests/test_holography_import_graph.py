"""The holography and simulate packages have no import circles (offaxis imported phaseshift,
which imported offaxis back) and import no private names across package boundaries.

Read from the source (AST), so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ionscope

SRC = Path(ionscope.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``import`` / ``from ... import`` in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def _graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (the package itself is its
    ``__init__``; ``from pkg import mod`` counts as importing ``pkg.mod``)."""
    files = sorted((SRC / package).glob("*.py"))
    modules = {_module_name(f): f for f in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, names in _imports(path):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            if len(submodules) < len(names) or not names:
                submodules.append(module)  # a name defined in the module (or package) itself
            edges.update(t for t in submodules if t in modules and t != name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


@pytest.mark.parametrize("package", ["holography", "simulate"])
def test_no_import_circles(package):
    graph = _graph(package)
    assert graph, package
    assert _cycles(graph) == []


def test_phaseshift_and_offaxis_share_a_module_instead_of_importing_each_other():
    graph = _graph("holography")
    assert "ionscope.holography.offaxis" not in graph["ionscope.holography.phaseshift"]
    assert "ionscope.holography.statistics" in graph["ionscope.holography.phaseshift"]
    assert "ionscope.holography.inputs" in graph["ionscope.holography.phaseshift"]


@pytest.mark.parametrize("package", ["holography", "simulate"])
def test_no_private_names_across_package_boundaries(package):
    """Neither package imports another package's private names, and no other package imports
    theirs."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        me = _module_name(path)
        inside = me.startswith(f"ionscope.{package}")
        for module, names in _imports(path):
            if not module.startswith("ionscope"):
                continue
            theirs = module.startswith(f"ionscope.{package}")
            if inside == theirs:
                continue  # within the package, or between two other packages
            bad.extend(f"{me}: from {module} import {n}" for n in names if n.startswith("_"))
    assert bad == []
