"""One exit-code table: emvtap/exit_codes.py, docs/exit-codes.md and the README show the same
codes, no tap outcome shares click's usage code 2, and the commands use the table."""

from __future__ import annotations

from pathlib import Path

from emvtap.exit_codes import EXIT_CODES, ExitCode, markdown_table
from terminal.cli import EXIT_CODES as PAY_EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]


def _table_in(path: Path) -> str:
    text = path.read_text()
    start = text.index("| code | name | meaning |")
    end = text.find("\n\n", start)
    return text[start:end if end != -1 else len(text)].strip()


def test_docs_table_is_the_modules_table() -> None:
    assert _table_in(ROOT / "docs" / "exit-codes.md") == markdown_table()


def test_readme_table_is_the_modules_table() -> None:
    assert _table_in(ROOT / "README.md") == markdown_table()


def test_every_code_is_documented_once_and_distinct() -> None:
    assert set(EXIT_CODES) == set(ExitCode)
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert len({name for name, _ in EXIT_CODES.values()}) == len(ExitCode)


def test_click_usage_errors_keep_2_and_no_tap_outcome_uses_it() -> None:
    import click

    assert click.UsageError("x").exit_code == ExitCode.USAGE == 2
    assert ExitCode.USAGE not in PAY_EXIT_CODES.values()
    assert ExitCode.TRY_AGAIN not in (ExitCode.USAGE, ExitCode.DECLINED, ExitCode.OK)
