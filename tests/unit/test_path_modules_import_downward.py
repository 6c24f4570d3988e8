"""The card's application and its command handlers, and the terminal's kernel table and its
paths, import one way only: counting imports made for type checking too, no module of
``hce_card`` or ``terminal`` reaches one that reaches it back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> dict[str, set[str]]:
    """module → the modules of ``package`` it imports (any ``import``, at any depth)."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        graph[name] = {m for m in found if m in modules and m not in (name, package)}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or ``None``."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


@pytest.mark.parametrize("package", ["hce_card", "terminal"])
def test_no_import_cycle_in_the_package(package: str) -> None:
    assert _cycle(_imports(package)) is None


def test_the_card_application_imports_none_of_its_command_handlers() -> None:
    graph = _imports("hce_card")
    handlers = {"hce_card.full_path", "hce_card.quick_path", "hce_card.scripts",
                "hce_card.commands"}
    assert not graph["hce_card.application"] & handlers
    assert {"hce_card.full_path", "hce_card.quick_path", "hce_card.scripts"} <= (
        graph["hce_card.commands"])


def test_the_kernel_table_and_the_quick_path_stay_below_the_paths_that_use_them() -> None:
    graph = _imports("terminal")
    assert graph["terminal.kernel.kernels"] == set()
    assert not graph["terminal.kernel.quick_path"] & {
        "terminal.kernel.full_path", "terminal.kernel.activation", "terminal.online"}
