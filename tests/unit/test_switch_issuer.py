"""The issuer host behind the switch (switch.issuer, switch.pin) and the second cryptogram
version (EMV CSK, CVN 18 layout): online PIN, limits, card status, credit, reversals."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from emvtap import tlv
from emvtap.cryptogram import arpc_method_2, generate_ac, pboc_arqc_data
from emvtap.iso8583 import decode_message, encode_message
from emvtap.keys import derive_visa_session_key
from switch.authorize import Authorizer
from switch.enroll import enroll_profile
from switch.pin import TEST_ZPK, encipher_pin_block, hash_pin, pin_from_block, verify_pin
from switch.store import Store
from switch.testing import SimCard, make_profile

NOW = datetime(2025, 11, 26, 9, 0, tzinfo=UTC)
ONLINE_PIN_CVM = {0x9F34: bytes.fromhex("020000")}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.db") as s:
        yield s


@pytest.fixture
def card(store):
    profile = make_profile(31)
    enroll_profile(store, profile, balance=50_000)
    store.update_account(1, pin_hash=hash_pin("2468"))
    return SimCard.from_profile(profile)


def send(store, fields):
    return decode_message(Authorizer(store, clock=lambda: NOW).handle_raw(encode_message(fields)))


# --- online PIN ---------------------------------------------------------------------------------


def test_pin_block_format_0_round_trips():
    block = encipher_pin_block(TEST_ZPK, "2468", "6250940000000019")
    assert pin_from_block(TEST_ZPK, block, "6250940000000019") == "2468"
    assert verify_pin(hash_pin("2468"), TEST_ZPK, block, "6250940000000019")
    assert not verify_pin(hash_pin("2468"), TEST_ZPK, block, "6250940000000027")


def test_correct_online_pin_is_approved(store, card):
    block = encipher_pin_block(TEST_ZPK, "2468", card.mpan)
    response = send(store, card.request(100, pin_block=block, extra_tags=ONLINE_PIN_CVM))
    assert response["39"] == "00"


def test_wrong_online_pin_is_declined_with_55(store, card):
    block = encipher_pin_block(TEST_ZPK, "1357", card.mpan)
    assert send(store, card.request(100, pin_block=block, extra_tags=ONLINE_PIN_CVM))["39"] == "55"
    assert store.account(1).balance == 50_000


def test_online_pin_cvm_without_a_pin_block_is_declined_with_55(store, card):
    assert send(store, card.request(100, extra_tags=ONLINE_PIN_CVM))["39"] == "55"
    assert store.authorizations()[0]["reason"] == "pin_required"


def test_garbage_pin_block_is_a_wrong_pin(store, card):
    assert send(store, card.request(100, pin_block=b"\x00" * 8))["39"] == "55"


def test_pin_block_is_never_stored(store, card):
    block = encipher_pin_block(TEST_ZPK, "2468", card.mpan)
    request = card.request(100, pin_block=block)
    send(store, request)
    stored = json.loads(store.db.execute("SELECT request FROM authorizations").fetchone()[0])
    assert set(stored) == set(request) - {"52"}  # every field the switch received but DE 52
    assert stored["11"] == request["11"] and stored["4"] == request["4"]
    assert block.hex().upper() not in json.dumps(stored)


# --- card status, limits, credit, reversal of the daily spend ----------------------------------


def test_expired_physical_card_is_declined_with_54(store, card):
    store.update_card(store.token(card.mpan).span, expiry="2510")
    assert send(store, card.request(100))["39"] == "54"


def test_transaction_in_another_currency_than_the_account_is_declined(store, card):
    request = card.request(100, currency="0840")
    request["49"] = "840"
    assert send(store, request)["39"] == "12"


def test_credit_account_approves_up_to_its_credit_limit(store):
    profile = make_profile(32)
    enroll_profile(store, profile, balance=0, kind="credit")
    account_id = store.card(profile["token"]["span"]).account_id
    store.update_account(account_id, credit_limit=1_000)
    card = SimCard.from_profile(profile)
    assert send(store, card.request(600))["39"] == "00"
    assert send(store, card.request(600))["39"] == "51"
    assert store.account(account_id).balance == -600


def test_reversal_gives_back_the_daily_limit(store, card):
    store.update_account(1, daily_limit=1_000)
    first = card.request(800)
    assert send(store, first)["39"] == "00"
    assert send(store, card.request(800))["39"] == "61"
    reversal = {
        "t": "0400",
        "2": first["2"],
        "4": first["4"],
        "11": "555555",
        "37": first["37"],
        "41": first["41"],
        "49": "156",
        "90": "0100" + first["11"] + "0" * 32,
    }
    assert send(store, reversal)["39"] == "00"
    assert send(store, card.request(800))["39"] == "00"


# --- CVN 18: EMV common session key, ARPC method 2 -----------------------------------------------


def test_cvn_18_cryptogram_verifies_with_the_emv_common_session_key(store):
    profile = make_profile(33)
    profile["applications"][0]["cvn"] = 0x12
    enroll_profile(store, profile)
    mk = bytes.fromhex(profile["applications"][0]["keys"]["ac"])
    atc = b"\x00\x07"
    iad = bytes.fromhex("06011203A00000")
    values = {
        0x9F02: bytes.fromhex("000000000500"),
        0x9F03: bytes(6),
        0x9F1A: bytes.fromhex("0156"),
        0x95: bytes(5),
        0x5F2A: bytes.fromhex("0156"),
        0x9A: bytes.fromhex("251126"),
        0x9C: b"\x00",
        0x9F37: bytes.fromhex("0BADF00D"),
        0x82: bytes.fromhex("3C00"),
        0x9F36: atc,
        0x9F10: iad,
    }
    key = derive_visa_session_key(mk, atc)
    data = pboc_arqc_data(values)[:-4] + iad  # the Book 2 list, then the whole IAD
    arqc = generate_ac(key, data)
    values |= {0x9F26: arqc, 0x9F27: b"\x80"}
    card = SimCard.from_profile(profile)
    request = card.request(500)
    request["55"] = tlv.encode(tlv.Tlv.primitive(t, v) for t, v in values.items())
    response = send(store, request)
    assert response["39"] == "00"
    issuer_auth = tlv.find(tlv.decode(response["55"]), 0x91).value
    csu = issuer_auth[4:8]
    assert issuer_auth[:4] == arpc_method_2(key, arqc, csu)
    values[0x9F26] = bytes(8)
    request = card.request(500)
    request["55"] = tlv.encode(tlv.Tlv.primitive(t, v) for t, v in values.items())
    assert send(store, request)["39"] == "05"


def test_cryptogram_version_other_than_the_tokens_is_declined(store, card):
    store.update_token(card.mpan, cvn=0x12)
    assert send(store, card.request(100))["39"] == "05"
    assert store.authorizations()[0]["reason"] == "unsupported_cvn"


def test_lab_zpk_is_the_shipped_terminal_pin_key():
    import json
    from pathlib import Path

    import terminal

    config = json.loads((Path(terminal.__file__).parent / "data" / "terminal.json").read_text())
    assert bytes.fromhex(config["pin_encryption_key"]) == TEST_ZPK
