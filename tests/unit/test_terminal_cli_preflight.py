"""``emvtap terminal pay`` checks everything it can before the card is asked for, and its
exit codes follow emvtap.exit_codes: a payment is never made and then left without a record,
a configuration error is never shown as a tap outcome."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

import terminal.pay as pay
import terminal.transport as transport_module
from emvtap.exit_codes import ExitCode
from emvtap.perso import generate_profile
from hce_card.card import HceCard
from terminal.cli import terminal_group
from terminal.outcome import Outcome, TransactionResult
from terminal.render import render_result
from terminal.transport.loopback import LoopbackTransport


@pytest.fixture
def card(monkeypatch: pytest.MonkeyPatch) -> HceCard:
    hce = HceCard(generate_profile(3))
    monkeypatch.setattr(transport_module, "open_transport",
                        lambda spec, card=None, **options: LoopbackTransport(hce))
    return hce


def _pay(*args: str) -> Any:
    return CliRunner().invoke(terminal_group, ["pay", "--reader", "pcsc:0", *args])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once it is closed


def test_json_into_a_missing_directory_fails_before_the_tap(card: HceCard,
                                                            tmp_path: Path) -> None:
    atc = card.store.state.atc
    result = _pay("--amount", "1.00", "--switch", "none",
                  "--json", str(tmp_path / "nodir" / "t.json"))
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "nodir" in result.output and "does not exist" in result.output
    assert card.store.state.atc == atc  # the card was never asked


def test_an_unreachable_switch_fails_before_the_tap(card: HceCard) -> None:
    atc = card.store.state.atc
    result = _pay("--amount", "150.00", "--switch", f"127.0.0.1:{_closed_port()}")
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "not reachable" in result.output
    assert "APPROVED" not in result.output and "DECLINED" not in result.output
    assert card.store.state.atc == atc


@pytest.mark.parametrize(("switch", "message"), [
    ("nonsense", "is not HOST:PORT"),
    ("127.0.0.1:99999", "out of range"),
])
def test_a_bad_switch_address_is_a_usage_error_not_an_outcome(card: HceCard, switch: str,
                                                              message: str) -> None:
    atc = card.store.state.atc
    result = _pay("--amount", "1.00", "--switch", switch)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.output
    assert "END APPLICATION" not in result.output
    assert card.store.state.atc == atc


def test_a_usb_reader_that_is_not_there_is_an_environment_error() -> None:
    result = CliRunner().invoke(terminal_group, ["pay", "--reader", "nfc:usb:ffff:ffff",
                                                 "--amount", "1.00", "--switch", "none"])
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "no nfcpy reader found" in result.output
    assert "END APPLICATION" not in result.output


def test_loopback_is_refused_on_the_command_line() -> None:
    result = CliRunner().invoke(terminal_group, ["pay", "--reader", "loopback:",
                                                 "--amount", "1.00", "--switch", "none"])
    assert result.exit_code == ExitCode.USAGE
    assert "in-process link for tests" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--amount", "1e3"], "is not an amount"),
    (["--amount", "-1"], "is not an amount"),
    (["--amount", "1.00", "--timeout", "-1"], "--timeout"),
    (["--amount", "1.00", "--timeout", "0"], "--timeout"),
])
def test_bad_values_are_usage_errors(card: HceCard, args: list[str], message: str) -> None:
    result = _pay("--switch", "none", *args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.output


def test_no_card_is_the_other_outcome_code_not_the_usage_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "open_transport",
                        lambda spec, card=None, **options: LoopbackTransport(None))
    result = _pay("--amount", "1.00", "--switch", "none", "--quiet")
    assert result.exit_code == ExitCode.TRY_AGAIN == 3
    assert "END APPLICATION" in result.output


def test_the_prompt_goes_to_stderr_even_with_quiet(card: HceCard) -> None:
    result = _pay("--amount", "1.00", "--switch", "none", "--quiet", "--json", "-")
    assert "present a card to pcsc:0" in result.stderr
    record = json.loads(result.stdout)
    assert record["outcome"] == "APPROVED"


def test_the_tap_record_carries_its_format_and_a_timestamp(card: HceCard) -> None:
    result = _pay("--amount", "1.00", "--switch", "none", "--quiet", "--json", "-")
    record = json.loads(result.stdout)
    assert record["format"] == {"name": "emvtap.tap", "version": 1}
    assert record["created"].endswith("Z") and record["created"][:2] == "20"


def test_the_outcome_panel_shows_the_whole_reason_at_100_columns() -> None:
    reason = ("card declined offline (AAC); issuer action code denial matched TVR byte 1 b8 "
              "offline data authentication was not performed; unable to go online (switch "
              "127.0.0.1:8583 refused the connection)")
    result = TransactionResult(outcome=Outcome.DECLINED, reason=reason)
    console = Console(width=100, record=True)
    render_result(result, console, trace=False)
    text = console.export_text()
    flat = " ".join(w.strip("│") for w in text.split() if w.strip("│╭╰─"))
    assert reason in flat


def test_after_the_script_is_delivered_the_footer_no_longer_asks_for_the_card(
        monkeypatch: pytest.MonkeyPatch, card: HceCard) -> None:
    import test_kernel_quick_path as quick

    host = quick._host_with_issuer_update(card.profile)
    real = pay.perform_transaction
    monkeypatch.setattr(pay, "perform_transaction",
                        lambda *a, **kw: real(*a, **(kw | {"authorise": host})))
    result = _pay("--amount", "150.00", "--switch", "none", "--json", "-", "--quiet")
    record = json.loads(result.stdout)
    assert record["issuer_update"]["result"] == "delivered"
    assert "present card again" not in record["reason"]
    assert "issuer update delivered" in record["reason"]


def test_tap_time_does_not_include_the_wait_for_the_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card comes 5 s (of a fake clock) after the terminal starts waiting; the tap itself
    is timed from the card's activation."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(pay.time, "perf_counter", lambda: clock["now"])

    class LateCard(LoopbackTransport):
        def connect(self, timeout: float | None = None) -> bytes:
            clock["now"] += 5.0
            return super().connect(timeout)

    from terminal.config import TerminalConfig

    result = pay.perform_transaction(LateCard(HceCard(generate_profile(3))),
                                     TerminalConfig.load(None), 100, switch="none")
    assert result.outcome_after_online == Outcome.APPROVED
    assert result.tap_seconds < 5.0
