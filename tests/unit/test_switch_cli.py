"""``emvtap switch enroll``: registering a personalised device card from its profile JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from switch.cli import switch_group
from switch.store import Store
from switch.testing import make_profile


def test_enroll_registers_account_card_device_and_token(tmp_path):
    profile = make_profile(5, device_type="hce")
    path = tmp_path / "card.json"
    path.write_text(json.dumps(profile))
    db = tmp_path / "switch.db"
    result = CliRunner().invoke(
        switch_group, ["enroll", "--db", str(db), "--balance", "250.50", "--pin", "1234", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert profile["pan"] not in result.output  # masked
    assert profile["pan"][-4:] in result.output
    with Store(db) as store:
        token = store.token(profile["pan"])
        assert token.span == profile["token"]["span"]
        assert token.state == "active" and token.is_default
        assert token.key_ac.hex().upper() == profile["applications"][0]["keys"]["ac"]
        assert store.account(store.card(token.span).account_id).balance == 25050
        assert store.device(token.device_id).device_type == "hce"
        assert [e["event"] for e in store.events()] == ["card.enrolled", "token.enrolled"]
        assert store.account(1).pin_hash.startswith("pbkdf2-sha256$")


def test_enrolling_twice_keeps_one_token(tmp_path):
    path = tmp_path / "card.json"
    path.write_text(json.dumps(make_profile(5)))
    db = tmp_path / "switch.db"
    for _ in range(2):
        assert (
            CliRunner().invoke(switch_group, ["enroll", "--db", str(db), str(path)]).exit_code == 0
        )
    with Store(db) as store:
        assert len(store.tokens()) == 1
        assert len(store.accounts()) == 1


def test_profile_without_token_is_refused(tmp_path):
    profile = make_profile(5)
    del profile["token"]
    path = tmp_path / "card.json"
    path.write_text(json.dumps(profile))
    result = CliRunner().invoke(switch_group, ["enroll", "--db", str(tmp_path / "s.db"), str(path)])
    assert result.exit_code != 0
    assert "not a device card" in result.output


def test_not_a_profile_is_refused(tmp_path):
    path = tmp_path / "card.json"
    path.write_text("{}")
    result = CliRunner().invoke(switch_group, ["enroll", "--db", str(tmp_path / "s.db"), str(path)])
    assert result.exit_code != 0
    assert "bad profile:" in result.output and "not an emvtap card profile" in result.output


def test_a_malformed_profile_is_refused_naming_the_field(tmp_path):
    """Enrolment reads the profile with the core's model (CardProfile.from_dict): its message
    names the field, and nothing reaches the store."""
    profile = make_profile(5)
    profile["applications"][0]["keys"]["ac"] = "00" * 8
    path = tmp_path / "card.json"
    path.write_text(json.dumps(profile))
    db = tmp_path / "s.db"
    result = CliRunner().invoke(switch_group, ["enroll", "--db", str(db), str(path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "bad profile:" in result.output and "keys: field 'ac'" in result.output
    with Store(db) as store:
        assert store.tokens() == []


def run(*args):
    result = CliRunner().invoke(switch_group, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_covers_account_card_provision_lifecycle_and_history(tmp_path):
    db = tmp_path / "switch.db"
    account = run("account", "--db", db, "--balance", "500.00", "--pin", "2468").strip()
    span = "6228480000000011"
    run("card", "--db", db, "--account", account, "--no-password-limit", "200", span)
    out = run(
        "provision",
        "--db",
        db,
        "--span",
        span,
        "--device-id",
        "android-1",
        "--device-type",
        "hce",
        "--seed",
        3,
        "--out",
        tmp_path / "dc.json",
        "--keys-out",
        tmp_path / "keys.json",
    )
    assert "(default)" in out and span not in out
    profile = json.loads((tmp_path / "dc.json").read_text())
    mpan = profile["pan"]
    assert json.loads((tmp_path / "keys.json").read_text())["mpan"] == mpan
    out = run("replenish", "--db", db, "--count", 4, "--out", tmp_path / "b2.json", mpan)
    assert "ATC 11-14" in out
    out = run("event", "--db", db, "--channel", "device", "device.lost", "android-1")
    assert "1 device card(s) affected" in out and "active → suspended" in out
    out = run(
        "event",
        "--db",
        db,
        "--channel",
        "bank",
        "--param",
        "amount=300.00",
        "card.no_password_limit",
        span,
    )
    with Store(db) as store:
        assert store.card(span).no_password_limit == 30000
        assert store.account(int(account)).pin_hash.startswith("pbkdf2-sha256$")
    events = json.loads(run("show", "--db", db, "events"))
    assert [e["event"] for e in events][-2:] == ["card.no_password_limit", "card.no_password_limit"]
    assert mpan not in run("show", "--db", db, "tokens")  # masked unless --clear
    assert mpan in run("show", "--db", db, "--clear", "tokens")
    assert "pin_hash" not in run("show", "--db", db, "accounts")


def test_cli_refuses_what_the_vault_forbids(tmp_path):
    db = tmp_path / "switch.db"
    account = run("account", "--db", db).strip()
    run("card", "--db", db, "--account", account, "6228480000000011")
    args = [
        "provision",
        "--db",
        str(db),
        "--span",
        "6228480000000011",
        "--device-id",
        "p",
        "--device-type",
        "handset-se",
        "--out",
        str(tmp_path / "a.json"),
    ]
    run(*args)
    result = CliRunner().invoke(switch_group, args)
    assert result.exit_code != 0 and "already_on_device" in result.output
    result = CliRunner().invoke(
        switch_group,
        ["event", "--db", str(db), "--channel", "device", "card.lost", "6228480000000011"],
    )
    assert result.exit_code != 0 and "channel" in result.output
