"""Every attack of the catalogue (docs/attacks.md) that needs no particular link, against our
own terminal in-process: each must end in the verdict a correct terminal reaches - the
outcome, and the TVR bits the catalogue names. The same catalogue runs over pcscd+vpcd and
nfcpy's udp radio in tests/integration/test_attack_bench.py."""

from __future__ import annotations

import pytest

from hce_card.attacks import catalogue
from lab.attack_bench import LoopbackTerminal, run_one

IN_PROCESS = [a for a in catalogue() if not a.scenario.links]


def test_most_of_the_catalogue_runs_in_process() -> None:
    assert len(IN_PROCESS) >= 30


@pytest.mark.parametrize("attack", IN_PROCESS, ids=[a.id for a in IN_PROCESS])
def test_our_terminal_reaches_the_expected_verdict(attack: object) -> None:
    row = run_one(LoopbackTerminal(), attack)  # type: ignore[arg-type]
    assert row.ran and row.observed is not None
    assert row.passed, f"{row.why} ({row.observed.outcome}: {row.observed.reason})"


def test_a_gpo_answer_longer_than_a_short_response_ends_the_application() -> None:
    """ISO/IEC 7816-4, 5.1: 256 data bytes at most; more is never data to act on."""
    (attack,) = [a for a in IN_PROCESS if a.id == "oversized-gpo"]
    row = run_one(LoopbackTerminal(), attack)
    assert row.observed is not None
    assert (row.observed.outcome, row.passed) == ("END APPLICATION", True)
    assert "more than a short response carries (256" in row.observed.reason


def test_cdcvm_claimed_only_in_the_unsigned_ctq_is_not_an_offline_approval() -> None:
    (attack,) = [a for a in IN_PROCESS if a.id == "ctq-cdcvm-offline"]
    row = run_one(LoopbackTerminal(), attack)
    assert row.observed is not None
    assert row.observed.outcome != "APPROVED" and row.passed
