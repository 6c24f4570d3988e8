"""``terminal read`` / ``terminal apdu`` / ``readers`` command lines: bad input is refused with
the reason before any reader is opened (exit 2), an unwritable --json before the card is
touched (exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import cli
from terminal.rawapdu import parse_apdu, parse_script


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_apdu_hex_with_spaces_and_colons() -> None:
    assert parse_apdu("00 A4 04 00 02 3F00 00") == bytes.fromhex("00A40400023F0000")
    assert parse_apdu("00:B2:01:0C:00") == bytes.fromhex("00B2010C00")


@pytest.mark.parametrize(("text", "why"), [
    ("00A4", "at least 4 needed"),
    ("zz", "is not hex"),
    ("00A40400053F00", "Lc says 5 data bytes"),
    ("   ", "empty"),
])
def test_bad_apdus_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_apdu(text)


def test_script_skips_comments_and_names_the_bad_line() -> None:
    assert parse_script("# select PPSE\n00A404000E325041592E5359532E444446303100\n\n"
                        "80CA9F3600  # ATC\n") == [
        bytes.fromhex("00A404000E325041592E5359532E444446303100"),
        bytes.fromhex("80CA9F3600")]
    with pytest.raises(ValueError, match=r"s\.apdu line 2: 'XYZ' is not hex"):
        parse_script("00B2010C00\nXYZ\n", "s.apdu")
    with pytest.raises(ValueError, match="no APDU"):
        parse_script("# nothing\n", "s.apdu")


def test_terminal_apdu_bad_input_exits_2_before_any_reader() -> None:
    code, out = run("terminal", "apdu", "--reader", "pcsc:nope", "00A4")
    assert code == 2 and "APDU 1: command APDU of 2 bytes" in out
    code, out = run("terminal", "apdu", "--reader", "pcsc:0")
    assert code == 2 and "at least one APDU" in out


def test_terminal_read_bad_reader_spec_is_a_usage_error() -> None:
    code, out = run("terminal", "read", "--reader", "bogus", "--timeout", "1")
    assert code == 2 and "'bogus' has no kind" in out


def test_json_to_a_missing_directory_fails_before_the_card(tmp_path: Path) -> None:
    target = tmp_path / "nodir" / "r.json"
    code, out = run("terminal", "read", "--reader", "pcsc:nope", "--json", str(target))
    assert code == 4 and f"directory {target.parent} does not exist" in out
    code, out = run("terminal", "apdu", "--reader", "pcsc:nope", "--json", str(target),
                    "00B2010C00")
    assert code == 4
    code, out = run("readers", "--no-nfc", "--json", str(target))
    assert code == 4


def test_card_run_needs_a_profile_or_a_recording(tmp_path: Path) -> None:
    code, out = run("card", "run", "--link", "loopback")
    assert code == 2 and "--recording" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": {"name": "emvtap-card-recording", "version": 9}}')
    code, out = run("card", "run", "--recording", str(bad), "--link", "loopback")
    assert code == 2 and "format version 9 is not supported" in out
