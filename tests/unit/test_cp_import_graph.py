"""The control plane's import graph: no cycles, and the layers of docs/architecture.md.

Read from the source with ``ast`` (every import, including those inside functions and
under ``TYPE_CHECKING``), so a cycle is caught even where Python would not trip on it
at import time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
Graph = dict[str, set[str]]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, here: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        parts = here.split(".") if is_package else here.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    yield base
    yield from (f"{base}.{alias.name}" for alias in node.names)  # kept if a module


def import_graph(root: Path, package: str) -> Graph:
    """Module -> the modules of ``package`` it imports, with the packages above each one
    that the importer is not inside (importing ``a.b.c`` runs ``a/b/__init__``)."""
    files = {module_name(root, p): p for p in (root / package).rglob("*.py")
             if "migrations" not in p.parts}
    graph: Graph = {}
    for name, path in files.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, path.name == "__init__.py"):
                if target not in files or target == name:
                    continue
                edges.add(target)
                parts = target.split(".")
                edges |= {p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
                          if p in files and not name.startswith(p + ".")}
        graph[name] = edges
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (pkg / "c.py").write_text("from . import a\n")
    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.sub.b"]]


def test_control_plane_has_no_import_cycle() -> None:
    graph = import_graph(ROOT, "control_plane")
    assert len(graph) > 80  # the walk found the package
    assert cycles(graph) == [], "import cycles between control-plane modules"


# Who may import what (docs/architecture.md, "Dependency rules"): entry points on top,
# adapters (HTTP, CLI, MQTT) over the domain, the domain over store, schemas and config.
ENTRY = {"processes"}
ADAPTERS = {"api", "cli", "ingest", "broker"}
DOMAIN = {"services", "rollouts", "drift", "retraining"}
FOUNDATION = {"store", "schemas", "config"}
# The states and transition tables are vocabulary every layer may use (the store's
# gauges list the states, API bodies name them); they and their packages' __init__
# import nothing of the control plane.
VOCABULARY = {"control_plane.rollouts.states", "control_plane.rollouts",
              "control_plane.services.states", "control_plane.services"}


def _layer_of(module: str) -> str:
    """``control_plane.rollouts.engine`` -> ``rollouts``; top-level modules have their name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize(
    ("importers", "forbidden"),
    [
        # nothing but the CLI starts a process
        ((ADAPTERS - {"cli"}) | DOMAIN | FOUNDATION, ENTRY),
        # the domain knows no HTTP, CLI, MQTT or broker
        (DOMAIN | FOUNDATION, ADAPTERS),
        # store, schemas and config know nothing of the domain
        (FOUNDATION, DOMAIN),
    ],
    ids=["entry-points-on-top", "domain-below-adapters", "foundation-at-the-bottom"],
)
def test_layers(importers: set[str], forbidden: set[str]) -> None:
    graph = import_graph(ROOT, "control_plane")
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if _layer_of(module) in importers
        and _layer_of(target) in forbidden
        and _layer_of(module) != _layer_of(target)
        and target not in VOCABULARY
    )
    assert not wrong, wrong


def test_the_vocabulary_is_a_leaf() -> None:
    graph = import_graph(ROOT, "control_plane")
    assert {m: graph[m] - {"control_plane"} for m in VOCABULARY} == {m: set() for m in VOCABULARY}
