"""The scan package's modules import each other without a cycle (module- and function-level imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import convscope.scan

PACKAGE = "convscope.scan"


def scan_imports() -> dict[str, set[str]]:
    """``{module: {scan modules it imports}}`` for every module of the scan package."""
    root = Path(convscope.scan.__file__).parent
    modules = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        edges: set[str] = set()
        for node in ast.walk(ast.parse((root / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                base = node.module if node.level == 0 else f"{PACKAGE}.{node.module}"
                if base == PACKAGE:
                    edges |= {a.name for a in node.names if a.name in modules}
                elif base.startswith(PACKAGE + "."):
                    edges.add(base.split(".")[2])
            elif isinstance(node, ast.Import):
                edges |= {a.name.split(".")[2] for a in node.names if a.name.startswith(PACKAGE + ".")}
        graph[name] = edges & modules
    return graph


def test_no_import_cycle_inside_scan():
    graph = scan_imports()
    assert "health" in graph["result"] and "result" not in graph["health"]  # the result imports its health
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for dep in sorted(graph[node]):
            visit(dep, (*path, node))
        done.add(node)

    for module in graph:
        visit(module, ())
