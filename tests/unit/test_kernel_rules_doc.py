"""docs/kernel-rules.md stays the truth of the kernel tests: every rule names a book section and
at least one test, every test it names exists, every TVR/TSI bit it names exists, and every TVR
bit is set by some rule or listed as one the reader never sets."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from emvtap.bits import TSI, TVR, Bit

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "kernel-rules.md").read_text()
ROW = re.compile(r"^\| (EP|FP|QP)-(\d+) \| (.+?) \| (.+?) \| (.+?) \| (.+) \|$", re.M)


def _rows() -> list[tuple[str, str, str, str, str]]:
    return [(f"{kind}-{n}", what, book, bits, tests)
            for kind, n, what, book, bits, tests in ROW.findall(DOC)]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)
            and n.name.startswith("test_")}


def _bits(table: type) -> set[str]:
    return {name for name, value in vars(table).items() if isinstance(value, Bit)}


def test_the_table_has_every_rule_once_in_order() -> None:
    ids = [row[0] for row in _rows()]
    assert len(ids) >= 40
    assert len(ids) == len(set(ids))
    for kind in ("EP", "FP", "QP"):
        numbers = [int(i.split("-")[1]) for i in ids if i.startswith(kind)]
        assert numbers == list(range(1, len(numbers) + 1)), kind


def test_every_rule_cites_a_book_section_and_names_a_test() -> None:
    for rule, _what, book, _bits_text, tests in _rows():
        assert re.search(r"Book (\d|[ABC])", book), f"{rule}: {book}"
        assert re.findall(r"`(test_\w+\.py)::(test_\w+)`", tests), rule


def test_every_named_test_exists() -> None:
    cache: dict[str, set[str]] = {}
    missing = []
    for rule, *_rest, tests in _rows():
        for file, name in re.findall(r"`(test_\w+\.py)::(test_\w+)`", tests):
            path = ROOT / "tests" / "unit" / file
            if file not in cache:
                cache[file] = _test_names(path) if path.is_file() else set()
            if name not in cache[file]:
                missing.append(f"{rule}: {file}::{name}")
    assert missing == []


def test_every_named_bit_exists() -> None:
    known = {f"TVR.{b}" for b in _bits(TVR)} | {f"TSI.{b}" for b in _bits(TSI)}
    named = {b for *_rest, bits, _tests in _rows() for b in re.findall(r"T[VS][RI]\.\w+", bits)}
    assert named - known == set()


def test_every_tvr_bit_is_set_by_a_rule_or_listed_as_never_set() -> None:
    named = {b for *_rest, bits, _tests in _rows() for b in re.findall(r"TVR\.(\w+)", bits)}
    never = set(re.findall(r"`(\w+)`", DOC.split("TVR bits no rule above sets", 1)[1]))
    assert _bits(TVR) - named == never & _bits(TVR)
    assert named & never == set()

