"""The test-assertion table (tests/assertions/contactless.yaml) against our terminal,
in-process: each assertion is a card image (product + mutations), terminal settings and the
expected outcome / TVR / TSI / CVM / selected AID (docs/test-assertions.md)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from hce_card.attacks import Attack
from lab.assertions import load_assertions
from lab.attack_bench import LoopbackTerminal, run_one

TABLE = Path(__file__).resolve().parents[1] / "assertions" / "contactless.yaml"
ASSERTIONS = load_assertions(TABLE)

def _param(a: Attack) -> object:
    return pytest.param(a, id=a.id)


def test_the_table_has_at_least_100_assertions_over_entry_point_and_kernels_3_and_7() -> None:
    areas = collections.Counter(a.description.split("/")[0] for a in ASSERTIONS)
    assert len(ASSERTIONS) >= 100
    assert areas["entry-point"] >= 40
    assert areas["kernel 7"] >= 20 and areas["kernel 3"] >= 20
    prefixes = {a.id.split(".")[0] + "." + a.id.split(".")[1] for a in ASSERTIONS}
    assert {"EP.PP", "EP.CS", "EP.PR", "EP.OC", "K7.QP", "K3.QP"} <= prefixes
    rules = {a.kernel_rule for a in ASSERTIONS}
    assert {"redundancy", "pan-binding", "atc-binding"} <= rules


@pytest.mark.parametrize("assertion", [_param(a) for a in ASSERTIONS])
def test_assertion(assertion: Attack) -> None:
    row = run_one(LoopbackTerminal(), assertion, kind="assertion")
    assert row.observed is not None
    assert row.passed, f"{assertion.id} {assertion.title}: {row.why} ({row.observed.reason})"
