"""docs/json-formats.md describes, key for key, the JSON documents the commands write: each
starts with ``format`` {name, version} and ``created``, then the keys of its table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import terminal.transport as transport_module
from emvtap.perso import generate_profile
from hce_card.card import HceCard
from lab.cli import cli
from switch.testing import make_profile
from terminal.transport.loopback import LoopbackTransport

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "json-formats.md").read_text()
SPAN = "6228480000000015"


def documented_keys(name: str) -> list[str]:
    """The keys of the table under the heading of format *name*."""
    section = DOC.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, re.M)


def _run(*args: Any) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _check(doc: dict[str, Any], name: str) -> None:
    assert doc["format"] == {"name": name, "version": 1}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["created"])
    assert list(doc)[2:] == documented_keys(name)


def test_every_format_name_in_the_code_is_documented() -> None:
    names = set()
    for path in [*ROOT.glob("lab/**/*.py"), *ROOT.glob("switch/*.py"), *ROOT.glob("terminal/*.py")]:
        names |= set(re.findall(r'(?:document\(\s*|FORMAT = \(|"name": )"(emvtap\.[a-z.]+)"',
                                path.read_text()))
    assert {"emvtap.tap", "emvtap.perso", "emvtap.switch.show", "emvtap.hil.report"} <= names
    for name in names:
        assert f"## `{name}`" in DOC, name


def test_the_envelope_is_documented() -> None:
    assert "| `format` | object |" in DOC
    assert "| `created` | string |" in DOC


def test_tap_record(monkeypatch: pytest.MonkeyPatch) -> None:
    card = HceCard(generate_profile(3))
    monkeypatch.setattr(transport_module, "open_transport",
                        lambda spec, card_=None, **kw: LoopbackTransport(card))
    doc = _run("terminal", "pay", "--reader", "pcsc:0", "--amount", "1.00", "--switch", "none",
               "--quiet", "--json", "-")
    _check(doc, "emvtap.tap")


def test_perso(tmp_path: Path) -> None:
    _check(_run("perso", "--seed", "1", "--out", tmp_path / "c.json", "--json", "-"),
           "emvtap.perso")


def test_switch_documents(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    profile = tmp_path / "card.json"
    profile.write_text(json.dumps(make_profile(5)))
    _check(_run("switch", "enroll", "--db", db, "--json", "-", profile), "emvtap.switch.enroll")
    _check(_run("switch", "account", "--db", db, "--json", "-"), "emvtap.switch.account")
    _check(_run("switch", "card", "--db", db, "--account", "2", "--json", "-", SPAN),
           "emvtap.switch.card")
    _check(_run("switch", "provision", "--db", db, "--span", SPAN[-4:], "--device-id", "p1",
                "--device-type", "hce", "--out", tmp_path / "dc.json", "--keys-out",
                tmp_path / "k.json", "--json", "-"), "emvtap.switch.provision")
    _check(_run("switch", "event", "--db", db, "--channel", "device", "--json", "-",
                "device.lost", "p1"), "emvtap.switch.event")
    _check(_run("switch", "show", "--db", db, "--json", "-", "tokens"), "emvtap.switch.show")


def test_hil_list() -> None:
    _check(_run("hil", "list", ROOT / "scenarios", "--json", "-"), "emvtap.hil.list")


def test_hil_report_keys_are_documented() -> None:
    from datetime import UTC, datetime

    from lab.hil.report import json_report

    doc = json_report([], datetime.now(UTC))
    assert doc["format"] == {"name": "emvtap.hil.report", "version": 1}
    assert list(doc)[2:] == documented_keys("emvtap.hil.report")
