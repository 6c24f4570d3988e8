"""The README stays true: its first screen gives exactly the two commands, and its lifecycle
table is the one the switch implements (switch/LIFECYCLE.md, itself checked against the code)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _table(text: str, header: str) -> str:
    start = text.index(header)
    end = text.find("\n\n", start)
    return text[start : end if end != -1 else len(text)].strip()


def test_first_screen_has_exactly_make_demo_and_make_test() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None and README.index(block.group(0)) < 600
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line]
    assert commands == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends by running exactly the README's `make test` (a line, not a substring)."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "set -euo pipefail" and lines[-1] == "make test"


def test_readme_lifecycle_table_is_the_switchs_table() -> None:
    lifecycle = (ROOT / "switch" / "LIFECYCLE.md").read_text()
    header = "| event | subject |"
    assert _table(README, header) == _table(lifecycle, header)


def test_every_local_link_in_the_readme_exists() -> None:
    targets = re.findall(r"\]\(([^)#:]+)\)", README)
    assert len(targets) >= 5  # the README links its docs; an empty match would prove nothing
    assert [t for t in targets if not (ROOT / t).exists()] == []
