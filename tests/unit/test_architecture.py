"""The dependency rule of docs/architecture.md, read from the source: ``lab`` → ``terminal``,
``hce_card``, ``switch`` → ``emvtap``; never upward, never sideways, and no import cycles.

Every ``import`` statement counts, also the ones inside functions: a lazy import is still a
dependency, it only moves the failure from import time to run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: package → the first-party packages it may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "emvtap": frozenset(),
    "terminal": frozenset({"emvtap"}),
    "hce_card": frozenset({"emvtap"}),
    "switch": frozenset({"emvtap"}),
    "lab": frozenset({"emvtap", "terminal", "hce_card", "switch"}),
}
PACKAGES = tuple(ALLOWED)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every first-party module of the product, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = modules()[module].name == "__init__.py"
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_modules(module: str) -> Iterator[str]:
    """The first-party modules ``module`` imports, resolved to modules that exist."""
    tree = ast.parse(modules()[module].read_text(), filename=str(modules()[module]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            # ``from pkg import mod`` imports a module; ``from mod import name`` a name
            names = [f"{target}.{alias.name}" for alias in node.names] + [target]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in ALLOWED:
                continue
            while name and name not in modules():
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


@cache
def import_graph() -> dict[str, frozenset[str]]:
    return {module: frozenset(imported_modules(module)) for module in modules()}


def test_the_tree_has_every_layer() -> None:
    assert {name.split(".")[0] for name in modules()} == set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_the_layers_below_them(package: str) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items() if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in ALLOWED[package] | {package}
    )
    assert wrong == []


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _without_package_inits(graph: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """A package's ``__init__`` re-exporting its own modules is not a cycle of design: drop the
    edges from a module to the packages that contain it."""
    return {module: frozenset(t for t in targets if not module.startswith(f"{t}."))
            for module, targets in graph.items()}


def test_there_are_no_import_cycles() -> None:
    assert _cycles(_without_package_inits(import_graph())) == []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}),
             "d": frozenset({"a"})}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_import_reader_sees_lazy_and_relative_imports() -> None:
    graph = import_graph()
    # lab.cli imports the applet commands inside a method: a lazy import still counts
    assert "lab.applet.cli" in graph["lab.cli"]
    # ``from emvtap import masking`` names a module, not an attribute of the package
    assert "emvtap.masking" in graph["lab.cli"]
