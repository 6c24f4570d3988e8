"""The runner's own parts, without readers: the tap clock and the mid-tap pull, the budgets,
and how a scenario ends when it cannot run here or this build lacks something."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.hil.loader import FORMAT, load_scenario
from lab.hil.model import Budget, Scenario
from lab.hil.person import NoPerson, Person
from lab.hil.results import NotRunnable, Status, TapTiming
from lab.hil.rigs import Readers
from lab.hil.runner import RunOptions, over_budget, run_scenario
from lab.hil.tap import TimedTransport
from terminal.transport.base import CardRemovedError


class FakeReader:
    """A reader whose card answers 9000 until it is pulled."""

    def __init__(self) -> None:
        self.present = True
        self.commands: list[bytes] = []
        self.exchanges: list[object] = []

    def connect(self, timeout: float | None = None) -> bytes:
        return b"\x3b\x80\x80\x01\x01"

    def transmit(self, apdu: bytes) -> bytes:
        if not self.present:
            raise CardRemovedError("gone")
        self.commands.append(apdu)
        return b"\x90\x00"

    def disconnect(self) -> None:
        return None


def test_the_card_is_pulled_before_the_command_after_pull_after() -> None:
    reader = FakeReader()
    timed = TimedTransport(reader, pull_after=2, pull=lambda: setattr(reader, "present", False))
    timed.connect(1.0)
    assert timed.transmit(b"\x00\xa4\x04\x00") == b"\x90\x00"
    assert timed.transmit(b"\x00\xa4\x04\x00") == b"\x90\x00"
    with pytest.raises(CardRemovedError):
        timed.transmit(b"\x80\xa8\x00\x00")
    assert timed.pulled and len(reader.commands) == 2
    (presentation,) = timed.presentations
    assert presentation.first is not None and presentation.last is not None
    assert presentation.last >= presentation.first


def test_each_connect_is_a_presentation_of_its_own() -> None:
    timed = TimedTransport(FakeReader())
    for _ in range(2):
        timed.connect(1.0)
        timed.transmit(b"\x00\xa4\x04\x00")
    assert len(timed.presentations) == 2
    assert all(p.first is not None for p in timed.presentations)


def test_budgets_flag_the_tap_and_each_slow_apdu() -> None:
    timing = TapTiming(in_field_ms=612.0, apdus=[
        {"name": "SELECT PPSE", "sw": "9000", "ms": 2.0},
        {"name": "GET PROCESSING OPTIONS", "sw": "9000", "ms": 150.0},
    ])
    assert over_budget(timing, Budget(tap_ms=500, apdu_ms=100)) == [
        "card in field 612.0 ms > 500 ms", "GET PROCESSING OPTIONS 150.0 ms > 100 ms"]
    assert over_budget(timing, Budget()) == []
    assert over_budget(timing, Budget(tap_ms=700).merged(Budget(apdu_ms=200))) == []


@dataclass
class StubRig:
    """A rig with no readers behind it (nothing here ever reaches a card)."""

    reason: str | None = None
    name: str = "stub"
    person: Person = field(default_factory=NoPerson)

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def readers(self) -> Readers:
        return Readers("pcsc:no reader here", "nfc:udp:127.0.0.1:9")

    def unavailable(self, scenario: Scenario) -> str | None:
        return self.reason

    def card_gone(self, readers: Readers) -> None:
        return None

    def prepare_emulator(self) -> None:
        return None


def scenario(tmp_path: Path, cards: str, steps: str) -> Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(f"format: {FORMAT}\ntitle: t\nswitch: false\ncards:\n{cards}\n"
                    f"steps:\n{steps}\n")
    return load_scenario(path)


def test_a_scenario_the_rig_cannot_take_is_not_run(tmp_path: Path) -> None:
    s = scenario(tmp_path, "  c: {form: hce, perso: {seed: 1}}", "  - tap: {amount: 1}")
    result = run_scenario(s, StubRig(reason="needs a bigger desk"))
    assert (result.status, result.message) == (Status.NOT_RUN, "not run on stub: needs a "
                                                               "bigger desk")
    assert result.steps == [] and result.workdir == ""


def test_a_real_card_without_a_person_is_not_run_at_its_step(tmp_path: Path) -> None:
    s = scenario(tmp_path, "  c: {form: real, prompt: a bank card}",
                 "  - tap: {amount: 1}")
    result = run_scenario(s, StubRig(), RunOptions(workdir=tmp_path / "work"))
    assert result.status is Status.NOT_RUN
    assert "needs a person at real readers: Present a bank card" in result.message
    (step,) = result.steps
    assert (step.index, step.status) == (0, Status.NOT_RUN)


def test_what_this_build_lacks_is_unsupported_not_failed(tmp_path: Path) -> None:
    # The applet bridge speaks vpcd only: on an nfc link it is not supported by this build.
    s = scenario(tmp_path, "  se: {form: applet, perso: {seed: 3}}", "  - tap: {amount: 1}")
    result = run_scenario(s, StubRig(), RunOptions(workdir=tmp_path / "work"))
    assert result.status is Status.UNSUPPORTED
    assert result.message.startswith("not supported by this build: the Java Card applet")
    assert result.steps[0].status is Status.UNSUPPORTED
    assert result.status.ok


def test_no_person_refuses_every_physical_action() -> None:
    with pytest.raises(NotRunnable):
        NoPerson().confirm("remove the card")
    with pytest.raises(NotRunnable):
        NoPerson().tell("present the card")


def test_a_pull_that_fails_is_not_swallowed_into_an_outcome() -> None:
    from lab.hil.tap import run_tap
    from terminal.config import TerminalConfig

    reader = FakeReader()

    def pull() -> None:
        raise NotRunnable("nobody to pull the card")

    with pytest.raises(NotRunnable, match="nobody to pull"):
        run_tap(reader, TerminalConfig.default(), 100, switch="none", card_timeout=1.0,
                pull_after=1, pull=pull)


def test_the_runner_never_imports_the_card_or_the_switch() -> None:
    """docs/architecture.md: actors meet on the wire - the runner reaches them by command line."""
    import subprocess
    import sys

    probe = ("import sys, lab.hil, lab.hil_cli, lab.hil.report, "
             "lab.hil.rigs, lab.hil.tap, terminal.pay; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hce_card', 'switch')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
