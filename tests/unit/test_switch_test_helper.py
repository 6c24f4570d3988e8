"""switch/testing.py is the switch's documented public test helper (switch/README.md): the load
generator and the lab demo use it, the authorization path never does."""

from __future__ import annotations

import ast
from pathlib import Path

import switch.testing

SWITCH = Path(__file__).resolve().parents[2] / "switch"
HELPER_USERS = {"testing.py", "loadgen.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_switch_module_but_the_load_generator_imports_the_test_helper() -> None:
    users = sorted(p.name for p in SWITCH.glob("*.py")
                   if p.name not in HELPER_USERS and "switch.testing" in _imports(p))
    assert users == []


def test_the_test_helper_is_documented_as_public_with_a_stable_api() -> None:
    assert switch.testing.__all__ == ["SimCard", "luhn_complete", "make_profile",
                                      "mutated_messages", "running_switch"]
    assert "public test helper" in (switch.testing.__doc__ or "")
    assert "public test helper" in (SWITCH / "README.md").read_text()
