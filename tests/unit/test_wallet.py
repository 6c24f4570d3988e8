"""The HCE wallet (docs/domain.md, Device types: limited-use keys): no master key on
the card, each limited-use key used for exactly one transaction, "batch low" reported, no key
left → AAC with a reason, replenishment through the inbox, and cryptograms the switch's TSP
verifies with the key it issued for that ATC."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from test_card_helpers import QPBOC_AID, TTQ_FULL, new_card, objects, ok, qpboc_profile, transaction

from emvtap.bits import CID
from emvtap.cryptogram import arpc_method_1, generate_ac, pboc_arqc_data, script_mac
from emvtap.perso_schemes import hce_wallet_profile, test_luk_batch
from hce_card.card import HceCard
from hce_card.state import StateStore
from hce_card.wallet import LOW_WATER, NO_KEY_REASON, parse_batch, wallet_status

SE = qpboc_profile()


def wallet(first_atc: int = 1, count: int = 5, store: StateStore | None = None, **kw):
    batch = test_luk_batch(SE.applications[0], first_atc, count)
    profile = hce_wallet_profile(SE, batch, **kw)
    return (*new_card(profile, store), batch)


def tap(term, amount: int = 20000, **kw) -> dict[int, bytes]:
    ok(term.select(QPBOC_AID))
    values = transaction(amount=amount, **kw)
    response = objects(ok(term.gpo(values)))
    return values | response


def test_the_card_holds_no_master_key():
    card, _term, _ = wallet()
    app = card.payment_applications[0]
    assert app.wallet and app.app.keys.ac == app.app.keys.smi == app.app.keys.smc == b""


def test_each_key_is_used_once_in_atc_order_and_its_cryptogram_verifies():
    card, term, batch = wallet(first_atc=1, count=3)
    keys = {k["atc"]: bytes.fromhex(k["ac"]) for k in batch["keys"]}
    atcs = []
    for _ in range(3):
        values = tap(term)
        atc = int.from_bytes(values[0x9F36], "big")
        atcs.append(atc)
        assert values[0x9F27] == bytes([CID.ARQC])
        assert generate_ac(keys[atc], pboc_arqc_data(values)) == values[0x9F26]
    assert atcs == [1, 2, 3]
    assert card.store.app(QPBOC_AID).keys == ()


def test_the_atc_jumps_to_the_next_keys_atc():
    card, term, _ = wallet(first_atc=40, count=2)
    assert tap(term)[0x9F36] == (40).to_bytes(2, "big")
    assert card.store.app(QPBOC_AID).atc == 40


def test_no_key_left_declines_offline_with_a_clear_reason():
    card, term, _ = wallet(count=1)
    tap(term)
    values = tap(term)
    assert values[0x9F27] == bytes([CID.AAC])
    assert card.last_reason == NO_KEY_REASON
    assert card.store.app(QPBOC_AID).atc == 2  # the AAC still takes its own ATC
    assert wallet_status(card.store, QPBOC_AID).empty


def test_no_key_on_the_full_path_declines_in_generate_ac():
    card, term, _ = wallet(count=1)
    tap(term)
    ok(term.select(QPBOC_AID))
    values = transaction(amount=100, ttq=TTQ_FULL)
    ok(term.gpo(values))
    value = objects(ok(term.generate_ac(0x80, values)))[0x80]
    assert value[0] == CID.AAC and card.last_reason == NO_KEY_REASON


def test_batch_low_is_reported(caplog):
    card, term, _ = wallet(count=LOW_WATER + 2)
    with caplog.at_level(logging.WARNING, logger="emvtap.card"):
        tap(term)
        assert not any("limited-use keys left" in r.message for r in caplog.records)
        tap(term)
    assert any(f"{LOW_WATER} limited-use keys left (low)" in r.message for r in caplog.records)
    assert card.wallet_status() == {QPBOC_AID.hex().upper(): f"{LOW_WATER} limited-use keys "
                                                             "left (low)"}


def test_expired_keys_are_skipped():
    batch = test_luk_batch(SE.applications[0], 1, 2)
    batch["keys"][0]["expires"] = "2020-01-01T00:00:00Z"
    _card, term = new_card(hce_wallet_profile(SE, batch))
    assert tap(term)[0x9F36] == b"\x00\x02"


def test_replenish_through_the_inbox_while_the_card_runs(tmp_path):
    store = StateStore(tmp_path / "card.json")
    _card, term, _ = wallet(count=1, store=store)
    tap(term)
    fresh = test_luk_batch(SE.applications[0], 2, 3, batch=2) | {"no_password_limit": 30000}
    assert store.inbox is not None
    store.inbox.mkdir()
    (store.inbox / "batch-000002.json").write_text(json.dumps(fresh))
    assert tap(term)[0x9F36] == b"\x00\x02"  # imported at SELECT
    assert not list(store.inbox.iterdir())
    state = store.app(QPBOC_AID)
    assert state.batches == (1, 2) and state.no_password_limit == 30000


def test_keys_for_passed_atcs_or_already_held_are_not_imported():
    card, term, _ = wallet(first_atc=1, count=3)
    tap(term)
    tap(term)
    again = parse_batch(test_luk_batch(SE.applications[0], 1, 4))
    assert card.store.add_batch(QPBOC_AID, again) == 1  # only ATC 4 is new
    assert [k.atc for k in card.store.app(QPBOC_AID).keys] == [3, 4]


def test_a_rejected_inbox_file_is_set_aside(tmp_path):
    store = StateStore(tmp_path / "card.json")
    _card, term, _ = wallet(store=store)
    store.inbox.mkdir()
    (store.inbox / "bad.json").write_text('{"keys": [{"atc": 3, "ac": "00"}]}')
    tap(term)
    assert (store.inbox / "bad.rejected").exists()


@pytest.mark.parametrize("doc", [
    "not json", "{}", '{"keys": [{"atc": 0, "ac": "' + "11" * 16 + '"}]}',
    '{"keys": [{"ac": "' + "11" * 16 + '"}]}', '{"format": "other", "keys": []}',
    '{"keys": [{"atc": 1}]}', '{"keys": [{"atc": 1, "ac": "11", "expires": "soon"}]}',
])
def test_malformed_batches_are_refused(doc):
    with pytest.raises(ValueError):
        parse_batch(doc)


def test_a_used_key_is_not_reused_after_a_simulated_crash(tmp_path):
    from test_card_state import CrashingStore, SimulatedCrash

    path = tmp_path / "card.json"
    batch = test_luk_batch(SE.applications[0], 1, 3)
    profile = hce_wallet_profile(SE, batch)
    HceCard(profile, StateStore(path))
    _card, term = new_card(profile, CrashingStore(path, crash_at=1, after_rename=True))
    ok(term.select(QPBOC_AID))
    with pytest.raises(SimulatedCrash):
        term.gpo(transaction(amount=20000))  # key 1 taken durably, nothing answered
    _card, term = new_card(profile, StateStore(path))
    assert tap(term)[0x9F36] == b"\x00\x02"


def test_issuer_authentication_and_scripts_with_the_batchs_session_keys():
    card, term, batch = wallet()
    key = batch["keys"][0]
    values = tap(term)
    atc, arqc = values[0x9F36], values[0x9F26]
    card.reset()
    ok(term.select(QPBOC_AID))
    ok(term.external_authenticate(arpc_method_1(bytes.fromhex(key["ac"]), arqc, b"00") + b"00"))
    header = bytes.fromhex("841E000004")
    mac = script_mac(bytes.fromhex(key["smi"]), header, atc, arqc, b"")
    ok(term.send(header + mac))
    assert card.store.app(QPBOC_AID).application_blocked


def test_in_app_limit_pushed_with_the_batch_asks_for_device_verification():
    card, term, _ = wallet(no_password_limit=500)
    reader = bytes.fromhex("22004000")  # no online PIN
    assert tap(term, amount=400, ttq=reader)[0x9F27] == bytes([CID.TC])
    assert tap(term, amount=600, ttq=reader)[0x9F27] == bytes([CID.AAC])
    card.store.update(user_verified=True)
    assert tap(term, amount=600, ttq=reader)[0x9F27] == bytes([CID.TC])


# --- against the switch's TSP ---------------------------------------------------------------

NOW = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)
SPAN = "6228480000000011"


@pytest.fixture
def switch_store(tmp_path):
    from switch.store import Store

    with Store(tmp_path / "switch.db") as store:
        account = store.add_account(balance=1_000_000)
        store.add_card(SPAN, account, "3112", psn="01", no_password_limit=100_000)
        yield store


def provision_hce(store):
    import random

    from emvtap.profile import CardProfile
    from switch.tsp import provision

    result = provision(store, span=SPAN, device_id="phone-1", device_type="hce",
                       token_requestor_id="50012345678", rng=random.Random(3), now=NOW)
    return CardProfile.from_dict(result.profile)


def authorize(store, values: dict[int, bytes], mpan: str, stan: int) -> dict:
    from emvtap import tlv
    from emvtap.iso8583 import decode_message, encode_message
    from switch.authorize import Authorizer

    tags = (0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x9F37, 0x95, 0x9A, 0x9C, 0x9F02, 0x9F03, 0x5F2A,
            0x82, 0x9F1A)
    fields = {
        "t": "0100", "2": mpan, "3": "000000", "4": values[0x9F02].hex(),
        "7": NOW.strftime("%m%d%H%M%S"), "11": f"{stan:06d}", "12": NOW.strftime("%H%M%S"),
        "13": NOW.strftime("%m%d"), "14": "3012", "22": "071", "23": "001",
        "37": f"0001{stan:08d}", "41": "TERM0001", "42": "MERCHANT0000001", "49": "156",
        "55": tlv.encode(tlv.Tlv.primitive(t, values[t]) for t in tags),
    }
    raw = Authorizer(store, clock=lambda: NOW).handle_raw(encode_message(fields))
    return decode_message(raw)


def test_the_switch_verifies_the_wallets_cryptograms_and_its_arpc_verifies_on_the_card(
        switch_store):
    profile = provision_hce(switch_store)
    card, term = new_card(profile)
    assert card.payment_applications[0].wallet
    for stan in (1, 2):
        values = tap(term)
        response = authorize(switch_store, values, profile.pan, stan)
        assert response["39"] == "00"
        from emvtap import tlv

        arpc = tlv.flatten(tlv.decode(response["55"]))[0x91]
        card.reset()
        ok(term.select(QPBOC_AID))
        ok(term.external_authenticate(arpc))
    status = switch_store.limited_use_key_status(profile.pan)
    assert status["used"] == 2


def test_emvtap_card_replenish_fetches_a_batch_from_the_tsp(tmp_path, switch_store):
    from click.testing import CliRunner

    from hce_card.cli import card_group
    from switch.admin import AdminServer

    profile = provision_hce(switch_store)
    profile_path = tmp_path / "hce.json"
    profile.save(profile_path)
    state = tmp_path / "hce.state.json"
    card, term = new_card(profile, StateStore(state))
    for _ in range(10):
        tap(term)
    assert wallet_status(card.store, QPBOC_AID).empty
    admin = AdminServer(tmp_path / "switch.db", "tok", port=0)
    admin.start()
    try:
        result = CliRunner().invoke(card_group, [
            "replenish", "--profile", str(profile_path), "--switch",
            f"127.0.0.1:{admin.port}", "--token", "tok", "--count", "4"])
    finally:
        admin.stop()
    assert result.exit_code == 0, result.output
    assert "4 keys (ATC 11-14)" in result.output and profile.pan not in result.output
    values = tap(term)  # the running card imports the batch at SELECT
    assert values[0x9F36] == (11).to_bytes(2, "big") and values[0x9F27] == bytes([CID.ARQC])
    assert authorize(switch_store, values, profile.pan, 99)["39"] == "00"


def test_emvtap_card_replenish_refusals(tmp_path):
    from click.testing import CliRunner

    from hce_card.cli import card_group

    se_path = tmp_path / "se.json"
    SE.save(se_path)
    result = CliRunner().invoke(card_group, ["replenish", "--profile", str(se_path),
                                             "--token", "t"])
    assert result.exit_code != 0 and "no limited-use" in result.output
    hce_path = tmp_path / "hce.json"
    hce_wallet_profile(SE).save(hce_path)
    result = CliRunner(env={"EMVTAP_SWITCH_ADMIN_TOKEN": ""}).invoke(
        card_group, ["replenish", "--profile", str(hce_path)])
    assert result.exit_code != 0 and "token" in result.output
    result = CliRunner().invoke(card_group, ["replenish", "--profile", str(hce_path),
                                             "--token", "t", "--switch", "127.0.0.1:1"])
    assert result.exit_code != 0 and "cannot reach the TSP" in result.output
