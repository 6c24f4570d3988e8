"""``emvtap switch``: what a new user gets wrong ends in a clear error with the exit code of
emvtap.exit_codes, and never in a silently changed or silently created store."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from emvtap.exit_codes import ExitCode
from emvtap.masking import mask_pan
from switch.cli import switch_group
from switch.store import Store
from switch.testing import make_profile

SPAN = "6228480000000015"  # Luhn-valid
EMVTAP = [sys.executable, "-c", "from lab.cli import main; main()"]


def _invoke(*args: Any) -> Any:
    return CliRunner().invoke(switch_group, [str(a) for a in args])


def _ok(*args: Any) -> str:
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def _profile(tmp_path: Path, profile: dict[str, Any], name: str = "card.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(profile))
    return path


# --- re-enrolment -------------------------------------------------------------------------------


def test_enrolling_the_same_card_again_says_already_enrolled(tmp_path: Path) -> None:
    db, path = tmp_path / "s.db", _profile(tmp_path, make_profile(5))
    _ok("enroll", "--db", db, path)
    out = _ok("enroll", "--db", db, path)
    assert out.startswith("already enrolled")


def test_another_card_with_an_enrolled_mpan_is_refused_and_keeps_the_first_keys(
        tmp_path: Path) -> None:
    first = make_profile(5)
    other = copy.deepcopy(first)
    other["applications"][0]["keys"]["ac"] = "11" * 16
    db = tmp_path / "s.db"
    _ok("enroll", "--db", db, _profile(tmp_path, first, "a.json"))
    result = _invoke("enroll", "--db", db, _profile(tmp_path, other, "b.json"))
    assert result.exit_code == ExitCode.REFUSED, result.output
    assert "enrolled already with other card keys" in result.output and "--force" in result.output
    with Store(db) as store:
        assert store.token(first["pan"]).key_ac.hex().upper() == \
            first["applications"][0]["keys"]["ac"]


def test_force_replaces_the_keys_of_an_enrolled_mpan(tmp_path: Path) -> None:
    first = make_profile(5)
    other = copy.deepcopy(first)
    other["applications"][0]["keys"]["ac"] = "11" * 16
    db = tmp_path / "s.db"
    _ok("enroll", "--db", db, _profile(tmp_path, first, "a.json"))
    out = _ok("enroll", "--db", db, "--force", _profile(tmp_path, other, "b.json"))
    assert "re-enrolled" in out
    with Store(db) as store:
        assert store.token(first["pan"]).key_ac == bytes.fromhex("11" * 16)


def test_enroll_json_says_what_happened(tmp_path: Path) -> None:
    db, path = tmp_path / "s.db", _profile(tmp_path, make_profile(5))
    first = json.loads(_invoke("enroll", "--db", db, "--json", "-", path).stdout)
    again = json.loads(_invoke("enroll", "--db", db, "--json", "-", path).stdout)
    assert first["format"] == {"name": "emvtap.switch.enroll", "version": 1}
    assert (first["status"], again["status"]) == ("enrolled", "already_enrolled")
    assert first["mpan"] == mask_pan(make_profile(5)["pan"])


# --- stores are not created by mistake ----------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["show", "tokens"],
    ["event", "--channel", "device", "device.lost", "phone-1"],
    ["card", "--account", "1", SPAN],
    ["replenish", "--out", "b.json", "7890"],
])
def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path,
                                                        args: list[str]) -> None:
    db = tmp_path / "typo.db"
    result = _invoke(args[0], "--db", db, *args[1:])
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "no such switch store" in result.output and "typo.db" in result.output
    assert not db.exists()


def test_a_store_in_a_missing_directory_names_the_file(tmp_path: Path) -> None:
    result = _invoke("account", "--db", tmp_path / "nodir" / "s.db")
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "nodir" in result.output and "does not exist" in result.output


# --- numbers as the commands print them -----------------------------------------------------------


@pytest.fixture
def two_tokens(tmp_path: Path) -> tuple[Path, str, str]:
    db = tmp_path / "s.db"
    a, b = make_profile(5), make_profile(6)
    _ok("enroll", "--db", db, _profile(tmp_path, a, "a.json"))
    _ok("enroll", "--db", db, _profile(tmp_path, b, "b.json"))
    return db, a["pan"], b["pan"]


def test_show_tokens_filters_by_mpan(two_tokens: tuple[Path, str, str]) -> None:
    db, a, b = two_tokens
    rows = json.loads(_invoke("show", "--db", db, "--json", "-", "--mpan", a,
                              "tokens").stdout)["rows"]
    assert [r["mpan"] for r in rows] == [mask_pan(a)]


@pytest.mark.parametrize("form", ["last4", "masked"])
def test_mpan_by_its_last_four_digits_or_masked_form(two_tokens: tuple[Path, str, str],
                                                     form: str) -> None:
    db, a, b = two_tokens
    text = a[-4:] if form == "last4" else mask_pan(a)
    assert a[-4:] != b[-4:]
    rows = json.loads(_invoke("show", "--db", db, "--json", "-", "--mpan", text,
                              "tokens").stdout)["rows"]
    assert [r["mpan"] for r in rows] == [mask_pan(a)]
    out = _ok("event", "--db", db, "--channel", "bank", "token.suspend", text)
    assert f"{mask_pan(a)} active → suspended" in out
    with Store(db) as store:
        assert store.token(a).state == "suspended" and store.token(b).state == "active"


def test_an_unknown_mpan_is_refused(two_tokens: tuple[Path, str, str]) -> None:
    db, _, _ = two_tokens
    result = _invoke("event", "--db", db, "--channel", "bank", "token.suspend", "0000")
    assert result.exit_code == ExitCode.REFUSED
    assert "no token 0000" in result.output


# --- input validation ---------------------------------------------------------------------------


@pytest.fixture
def db_with_account(tmp_path: Path) -> Path:
    db = tmp_path / "s.db"
    assert _ok("account", "--db", db).strip() == "1"
    return db


@pytest.mark.parametrize(("span", "message"), [
    ("6228480000000011", "fails the Luhn check"),
    ("abc", "is not a card number"),
])
def test_switch_card_refuses_a_bad_span(db_with_account: Path, span: str, message: str) -> None:
    result = _invoke("card", "--db", db_with_account, "--account", "1", span)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.output


def test_a_second_card_with_the_same_span_is_refused_in_words(db_with_account: Path) -> None:
    _ok("card", "--db", db_with_account, "--account", "1", SPAN)
    result = _invoke("card", "--db", db_with_account, "--account", "1", SPAN)
    assert result.exit_code == ExitCode.REFUSED
    assert "exists already" in result.output and "UNIQUE" not in result.output


@pytest.mark.parametrize("currency", ["abc", "9999", "-1", "000"])
def test_account_refuses_a_currency_that_is_not_iso_4217_numeric(tmp_path: Path,
                                                                 currency: str) -> None:
    result = _invoke("account", "--db", tmp_path / "s.db", "--currency", currency)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "ISO 4217" in result.output


@pytest.mark.parametrize("pin", ["12", "12345678901234", "12a4"])
def test_account_refuses_a_pin_the_terminal_could_never_enter(tmp_path: Path, pin: str) -> None:
    result = _invoke("account", "--db", tmp_path / "s.db", "--pin", pin)
    assert result.exit_code == ExitCode.USAGE
    assert "4 to 12 digits" in result.output


@pytest.mark.parametrize("amount", ["1e3", "-5", "1.234", "abc"])
def test_amounts_are_plain_decimals(tmp_path: Path, amount: str) -> None:
    result = _invoke("account", "--db", tmp_path / "s.db", "--balance", amount)
    assert result.exit_code == ExitCode.USAGE
    assert "is not an amount" in result.output


def test_replenish_refuses_a_count_of_zero(two_tokens: tuple[Path, str, str],
                                           tmp_path: Path) -> None:
    db, a, _ = two_tokens
    result = _invoke("replenish", "--db", db, "--count", "0", "--out", tmp_path / "batch.json", a)
    assert result.exit_code == ExitCode.USAGE
    assert not (tmp_path / "batch.json").exists()


def test_a_malformed_profile_is_described_in_its_own_words(tmp_path: Path) -> None:
    profile = make_profile(5)
    profile["token"] = 7
    result = _invoke("enroll", "--db", tmp_path / "s.db", _profile(tmp_path, profile))
    assert result.exit_code == ExitCode.USAGE
    assert "token is not a JSON object" in result.output
    profile = make_profile(5)
    profile["applications"] = [1]
    result = _invoke("enroll", "--db", tmp_path / "s.db", _profile(tmp_path, profile))
    assert result.exit_code == ExitCode.USAGE
    assert "application is not a JSON object" in result.output
    assert "subscriptable" not in result.output


# --- show -----------------------------------------------------------------------------------------


def test_show_prints_a_table_with_amounts_in_major_units(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _ok("account", "--db", db, "--holder", "A. Tester", "--balance", "1234.50")
    out = _ok("show", "--db", db, "accounts")
    assert "1,234.50" in out and "123450" not in out
    assert "Tester" in out and not out.lstrip().startswith("[")


def test_show_json_keeps_minor_units_and_carries_its_format(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _ok("account", "--db", db, "--balance", "1234.50")
    doc = json.loads(_invoke("show", "--db", db, "--json", "-", "accounts").stdout)
    assert doc["format"] == {"name": "emvtap.switch.show", "version": 1}
    assert doc["what"] == "accounts" and doc["rows"][0]["balance"] == 123450
    assert "created" in doc


@pytest.mark.parametrize("args", [
    ["account"], ["card", "--account", "1", SPAN],
])
def test_json_documents_of_the_issuer_commands(db_with_account: Path, args: list[str]) -> None:
    result = _invoke(args[0], "--db", db_with_account, "--json", "-", *args[1:])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format"]["name"] == f"emvtap.switch.{args[0]}"


# --- serve: ports -------------------------------------------------------------------------------


def _serve(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``switch serve`` that must fail at start: a switch that keeps serving is killed after
    20 s and fails the test."""
    try:
        return subprocess.run([*EMVTAP, "switch", "serve", "--db", str(db), *args],
                              capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("switch serve kept running instead of failing at start")


def test_serve_on_a_port_in_use_fails_with_the_port_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve(tmp_path / "s.db", "--port", str(port), "--admin-port", "-1")
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "internal error" not in done.stderr


def test_serve_fails_at_start_when_the_admin_port_is_busy(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve(tmp_path / "s.db", "--port", "0", "--admin-port", str(port))
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert "admin API" in done.stderr and "in use" in done.stderr
    assert "switch: serving" not in done.stdout


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    result = _invoke("serve", "--db", tmp_path / "s.db", "--port", "99999")
    assert result.exit_code == ExitCode.USAGE
    assert "99999" in result.output
    assert not (tmp_path / "s.db").exists()


def test_serve_with_a_store_in_a_missing_directory_names_it(tmp_path: Path) -> None:
    done = _serve(tmp_path / "nodir" / "s.db", "--port", "0", "--admin-port", "-1")
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert "nodir" in done.stderr and "internal error" not in done.stderr
