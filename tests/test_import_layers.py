"""Imports flow down the pipeline, and no module imports the ``api`` front door.

Reads every module's imports with ``ast`` (top-level and function-level alike) and checks them against the
layer order of the design (docs: DESIGN, README "Layout"). A unit may import units of a lower layer and
modules of its own unit; never a higher layer, never a sibling of the same layer.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "convscope"

#: Lower number = lower in the pipeline. Units on one layer are siblings: they may not import each other.
LAYERS: dict[str, int] = {
    "errors": 0, "store": 1,
    "render": 2, "backend": 2,
    "data": 3,
    "models": 4,
    "probe": 5,
    "attribution": 6, "featvis": 6, "scan": 6,
    "callbacks": 7, "diagnose": 7,
    "present": 8,
    "api": 9, "keras": 9, "__main__": 9, "__init__": 9,
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[tuple[str, int]]]:
    """``{module: {(imported convscope module, line)}}`` for every module of the package."""
    found: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        module = ".".join(("convscope", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from convscope import backend`` imports the unit ``backend``
                names = ([f"{node.module}.{a.name}" for a in node.names] if node.module == "convscope"
                         else [node.module])
            else:
                continue
            for name in names:
                if name.startswith("convscope."):
                    found[module].add((name, node.lineno))
    return found


IMPORTS = _imports()


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in IMPORTS} | {_unit(n) for deps in IMPORTS.values() for n, _ in deps}
    assert units <= set(LAYERS) | {"__version__"}, sorted(units - set(LAYERS))


def test_imports_flow_down_the_pipeline():
    upward = []
    for module, deps in IMPORTS.items():
        here = _unit(module)
        for name, line in deps:
            there = _unit(name)
            if there in (here, "__version__") or here == "__init__":
                continue
            if LAYERS[there] >= LAYERS[here]:
                upward.append(f"{module}:{line} imports {name} ({here} is layer {LAYERS[here]}, "
                              f"{there} is layer {LAYERS[there]})")
    assert not upward, "\n".join(sorted(upward))


def test_nothing_inside_the_package_imports_the_front_door():
    users = sorted(f"{m}:{line}" for m, deps in IMPORTS.items() for name, line in deps
                   if name == "convscope.api" and m != "convscope.api")
    assert not users, users


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every module-level import cycle (Tarjan's strongly connected components of size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules():
    modules = set(IMPORTS)
    graph = {m: {n for n, _ in deps if n in modules and n != m} for m, deps in IMPORTS.items()}
    # a package's __init__ re-exporting its own modules is not a cycle of the design
    graph = {m: {n for n in deps if not (n.startswith(m + ".") or m.startswith(n + "."))} for m, deps in graph.items()}
    assert not _cycles(graph)


@pytest.mark.parametrize("probe", [{"a": {"b"}, "b": {"a"}}, {"a": {"b"}, "b": {"c"}, "c": {"a"}}])
def test_the_cycle_finder_finds_cycles(probe):
    assert _cycles(probe)
