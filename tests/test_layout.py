"""The layout's rules, checked on the source: dependencies run one way and no module imports
itself back through others. Every import counts, function-level ones included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "catalog", "generation", "performance", "hooks", "demo", "config")
# What each package may import from the others: generation builds on catalog, the demo on
# both, and core on nothing of ours. config wires them all together.
ALLOWED = {
    "core": set(),
    "catalog": {"core"},
    "generation": {"core", "catalog"},
    # what the channels report about published images; nothing below it reads the figures
    "performance": {"core", "catalog", "generation"},
    # webhooks hear of both through their signals (catalog.events, generation.events)
    "hooks": {"core", "catalog", "generation"},
    "demo": {"core", "catalog", "generation", "performance"},
    "config": {"core", "catalog", "generation", "performance", "hooks", "demo"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that `name` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import sub" imports the submodule when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in modules)
    found.discard(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_the_checker_sees_the_project(graph):
    assert len(graph) > 50
    assert "catalog.importer.service" in graph["catalog.importer"]
    assert "core.queue" in graph["catalog.services"]


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_run_one_way(graph, package):
    crossings = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name.split(".")[0] == package
        for target in targets
        if target.split(".")[0] != package and target.split(".")[0] not in ALLOWED[package]
    )
    assert crossings == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
