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
        switch_group, ["enroll", "--db", str(db), "--balance", "250.50", str(path)]
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
