"""The package's import graph runs one way, and every module imports on its own.

The graph has an edge A -> B for every import of B anywhere in A: at the top, and inside functions too (a
function-local import only postpones a cycle to the first call). Imports under `if TYPE_CHECKING:` never run and
are left out. A cycle fails the test, which names it with the file and line of each import in it.

Each module is then imported on its own, in a fresh interpreter: one subprocess that, before each module, drops
every `scenebias` module it has loaded (third-party libraries stay loaded, so torch is imported once), so a module
that only imports after another one fails here.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scenebias"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere in the file but an `if TYPE_CHECKING:` body."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """{module: {module it imports: line of the (first) import}}, intra-package only."""
    known = modules()

    def resolve(name: str) -> str | None:  # the longest module prefix of a dotted name
        parts = name.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        return ".".join(parts) if parts else None

    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        edges = graph.setdefault(name, {})
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = package[:len(package) - node.level + 1] if node.level else []
                prefix = ".".join(base + ([node.module] if node.module else []))
                targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
            for target in targets:
                found = resolve(target)
                if found is not None and found != name and found.split(".")[0] == "scenebias":
                    edges.setdefault(found, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle [a, b, ..., a] in each strongly connected part of the graph that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = set()
            while True:
                member = stack.pop()
                part.add(member)
                if member == node:
                    break
            if len(part) > 1:
                parts.append(part)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_within(graph, part) for part in sorted(parts, key=sorted)]


def _cycle_within(graph: dict[str, dict[str, int]], part: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected part (breadth-first search)."""
    start = min(part)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start] + path[::-1][1:] + [start]
                if nxt in part and nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected part always has one


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert len(graph) > 50 and "scenebias.data.formats" in graph
    assert "scenebias.config" in graph["scenebias.plan"]  # a top-level relative import
    assert "scenebias.report.table_pages" in graph["scenebias.report.build"]  # `from . import table_pages`
    assert any(graph["scenebias.cli"])  # the CLI imports only inside its commands


def test_no_import_cycle():
    graph = import_graph()
    known = modules()
    report = []
    for cycle in cycles(graph):
        report.append("import cycle: " + " -> ".join(cycle))
        report += [f"  {a} -> {b} ({known[a].relative_to(ROOT)}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    assert not report, "\n".join(report)


CHILD = r"""
import importlib, json, sys, traceback, warnings
warnings.simplefilter("ignore")
failed, imported = {}, 0
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "scenebias" or m.startswith("scenebias.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
        imported += 1
    except BaseException:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps({"failed": failed, "imported": imported}))
"""


def test_every_module_imports_on_its_own():
    names = sorted(modules())
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(names)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["failed"], "modules that do not import on their own:\n" + "\n".join(
        f"{name}:\n{error}" for name, error in result["failed"].items())
    assert result["imported"] == len(names)
