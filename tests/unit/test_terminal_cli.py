"""``emvtap terminal pay``: options, exit codes, the JSON record - with the reader replaced by
the HCE card on the loopback link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from test_terminal_doubles import Host

import terminal.transport as transport_module
from emvtap.perso import generate_profile
from hce_card.card import HceCard
from terminal.cli import parse_amount, terminal_group
from terminal.transport.loopback import LoopbackTransport


@pytest.fixture
def card(monkeypatch: pytest.MonkeyPatch) -> HceCard:
    """Every reader spec opens the loopback link to one HCE card."""
    hce = HceCard(generate_profile(3))

    def fake_open(spec: str, card: Any = None, **options: Any) -> LoopbackTransport:
        return LoopbackTransport(hce)

    monkeypatch.setattr(transport_module, "open_transport", fake_open)
    return hce


def _flat(output: str) -> str:
    """The panel's text without its frame, its wrapped lines joined."""
    words = [w for w in output.split() if w not in {"│", "╭", "╰"} and not w.startswith("─")]
    return " ".join(w.strip("│") for w in words)


def _pay(*args: str) -> Any:
    return CliRunner().invoke(terminal_group, ["pay", "--reader", "pcsc:0", "--switch", "none",
                                               *args])


def test_pay_offline_approval_exits_0_and_writes_the_json_record(card: HceCard,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "tap.json"
    result = _pay("--amount", "12.34", "--json", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["outcome"] == "APPROVED" and record["amount"] == 1234
    assert card.profile.pan not in out.read_text()


def test_pay_unable_to_go_online_exits_1(card: HceCard) -> None:
    result = _pay("--amount", "150.00", "--quiet")
    assert result.exit_code == 1
    assert "unable to go online" in _flat(result.output)


def test_pay_with_pin_and_json_to_stdout(card: HceCard) -> None:
    result = _pay("--amount", "350.00", "--pin", "1234", "--json", "-", "--quiet")
    record = json.loads(result.stdout[result.stdout.index("{"):])
    assert record["cvm"] == "ONLINE PIN"
    assert "online PIN entered" in record["tvr_bits"]


def test_pay_refuses_a_malformed_pin(card: HceCard) -> None:
    result = _pay("--amount", "1.00", "--pin", "12a4")
    assert result.exit_code == 2 and "a PIN is 4 to 12 digits" in result.output


def test_pay_refuses_a_configuration_it_cannot_use(card: HceCard, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"terminal_capabilities": "E0"}))
    result = _pay("--amount", "1.00", "--config", str(bad))
    assert result.exit_code == 2 and "terminal_capabilities: 1 bytes, expected 3" in result.output


def test_pay_force_online_asks_the_card_for_an_arqc(card: HceCard) -> None:
    """A purchase the card would approve offline, forced online by the merchant: TTQ
    "online cryptogram required", TVR byte 4 b4; no switch: unable to go online."""
    result = _pay("--amount", "1.00", "--force-online", "--json", "-", "--quiet")
    record = json.loads(result.stdout[result.stdout.index("{"):])
    assert record["outcome"] == "ONLINE REQUEST" and record["cryptogram"]["type"] == "ARQC"
    assert "merchant forced transaction online" in record["tvr_bits"]
    assert result.exit_code == 1


def test_pay_tap_again_delivers_the_issuer_update(monkeypatch: pytest.MonkeyPatch,
                                                  card: HceCard) -> None:
    import test_kernel_quick_path as quick

    import terminal.pay as pay

    host = quick._host_with_issuer_update(card.profile)
    real = pay.perform_transaction
    monkeypatch.setattr(pay, "perform_transaction",
                        lambda *a, **kw: real(*a, **(kw | {"authorise": host})))
    result = _pay("--amount", "150.00", "--json", "-", "--quiet")
    assert "issuer update: present the card again" in result.output
    record = json.loads(result.stdout[result.stdout.index("{\n"):])
    assert record["issuer_update"]["result"] == "delivered"
    assert record["issuer_update"]["script_results"] == "2000000001"
    assert result.exit_code == 0


@pytest.mark.parametrize(("text", "minor"), [("12.34", 1234), ("0", 0), ("5", 500)])
def test_parse_amount(text: str, minor: int) -> None:
    assert parse_amount(text, 2) == minor


@pytest.mark.parametrize("text", ["1.234", "-1", "abc"])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_amount(text, 2)


def test_host_double_answers_0110() -> None:
    assert Host("05")({"11": "000001", "55": b""})["39"] == "05"
