"""switch.authorize: the authorization host's flow (docs/architecture.md
"One tap, as data"; JR/T 0025.7 PBOC CVN 01 ARQC/ARPC; Book 3 10.10 issuer scripts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emvtap import tlv
from emvtap.cryptogram import (
    arpc_method_1,
    generate_ac,
    pboc_arqc_data,
    pboc_iad,
    verify_script_mac,
)
from emvtap.iso8583 import TokenData, decode_message, decode_token_data, encode_message
from emvtap.keys import derive_pboc_session_key
from switch.authorize import Authorizer, HostConfig
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import SimCard, make_profile

NOW = datetime(2025, 11, 26, 11, 30, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "switch.db") as s:
        yield s


@pytest.fixture
def profile():
    return make_profile(7)


@pytest.fixture
def host(store, profile):
    enroll_profile(store, profile, balance=10_000)
    return Authorizer(store, HostConfig(atc_window=8), clock=lambda: NOW)


@pytest.fixture
def card(profile):
    return SimCard.from_profile(profile)


def send(host: Authorizer, fields: dict) -> dict:
    raw = host.handle_raw(encode_message(fields))
    assert raw is not None
    return decode_message(raw)


def balance(store: Store) -> int:
    account = store.account(store.card(make_profile(7)["token"]["span"]).account_id)
    return account.balance


# --- approval with an independently computed cryptogram --------------------------------------


def test_arqc_from_the_token_keys_is_approved_with_arpc_method_1(host, store, profile):
    icc_mk = bytes.fromhex(profile["applications"][0]["keys"]["ac"])
    atc = b"\x00\x05"
    values = {
        0x9F02: bytes.fromhex("000000001234"),
        0x9F03: bytes(6),
        0x9F1A: bytes.fromhex("0156"),
        0x95: bytes(5),
        0x5F2A: bytes.fromhex("0156"),
        0x9A: bytes.fromhex("251126"),
        0x9C: b"\x00",
        0x9F37: bytes.fromhex("CAFEBABE"),
        0x82: bytes.fromhex("3C00"),
        0x9F36: atc,
        0x9F10: pboc_iad(1, bytes.fromhex("03A00000")),
    }
    session_key = derive_pboc_session_key(icc_mk, atc)
    arqc = generate_ac(session_key, pboc_arqc_data(values))
    values |= {0x9F26: arqc, 0x9F27: b"\x80"}
    request = {
        "t": "0100",
        "2": profile["pan"],
        "3": "000000",
        "4": "000000001234",
        "11": "000001",
        "22": "071",
        "37": "000000000001",
        "41": "TERM0001",
        "42": "MERCHANT0000001",
        "49": "156",
        "55": tlv.encode(tlv.Tlv.primitive(t, v) for t, v in values.items()),
    }

    response = send(host, request)

    assert response["t"] == "0110"
    assert response["39"] == "00"
    assert len(response["38"]) == 6
    issuer_auth = tlv.find(tlv.decode(response["55"]), 0x91).value
    assert issuer_auth == arpc_method_1(session_key, arqc, b"00") + b"00"
    assert response["2"] == profile["pan"]  # the token goes back, never the SPAN
    assert profile["token"]["span"] not in str(response)
    assert response["56"] == profile["token"]["par"]
    token_data = decode_token_data(response["48"])
    assert token_data.token_status == "A"
    assert token_data.token_requestor_id == profile["token"]["token_requestor_id"]
    assert balance(store) == 10_000 - 1234


def test_wrong_cryptogram_is_declined_without_arpc(host, store, card):
    response = send(host, card.request(100, tamper=True))
    assert response["39"] == "05"
    assert "55" not in response
    assert balance(store) == 10_000
    assert store.authorizations()[0]["reason"] == "cryptogram_invalid"


def test_cryptogram_under_another_cards_keys_is_declined(host, store, profile):
    other = SimCard.from_profile(make_profile(8))
    other.mpan = profile["pan"]
    assert send(host, other.request(100))["39"] == "05"


def test_unknown_token_is_declined_with_14(host):
    stranger = SimCard.from_profile(make_profile(99))
    response = send(host, stranger.request(100))
    assert response["39"] == "14"


# --- ATC, replay, retransmission ---------------------------------------------------------------


def test_replayed_atc_with_a_valid_cryptogram_is_declined(host, store, card):
    first = card.request(500)
    assert send(host, first)["39"] == "00"
    replay = card.request(500, next_atc=False)  # new STAN, same ATC and cryptogram
    response = send(host, replay)
    assert response["39"] == "05"
    assert store.authorizations()[0]["reason"] == "atc_replayed"
    assert balance(store) == 10_000 - 500


def test_atc_far_below_the_highest_seen_is_declined(host, store, card):
    card.atc = 20
    assert send(host, card.request(100))["39"] == "00"  # ATC 21
    card.atc = 12  # next is 13 = 21 - 8: outside the window of 8
    assert send(host, card.request(100))["39"] == "05"
    assert store.authorizations()[0]["reason"] == "atc_too_old"


def test_lower_atc_inside_the_window_is_accepted_once(host, card):
    card.atc = 20
    assert send(host, card.request(100))["39"] == "00"  # ATC 21
    card.atc = 14  # ATC 15, never seen, inside the window
    assert send(host, card.request(100))["39"] == "00"


def test_retransmission_is_answered_from_the_record_and_not_approved_twice(host, store, card):
    request = card.request(700)
    first = host.handle_raw(encode_message(request))
    again = dict(request, **{"7": "1126113059"})  # a repeat may carry a new DE 7
    second = host.handle_raw(encode_message(again))
    assert second == first
    assert decode_message(second)["39"] == "00"
    assert balance(store) == 10_000 - 700
    assert len(store.authorizations()) == 1


def test_same_stan_and_terminal_with_other_content_is_a_duplicate_transmission(host, store, card):
    request = card.request(700)
    send(host, request)
    other = dict(request, **{"4": "000000000701"})
    assert send(host, other)["39"] == "94"
    assert balance(store) == 10_000 - 700


# --- state, domain, data checks ------------------------------------------------------------------


def test_suspended_token_is_declined_with_62(host, store, card, profile):
    store.update_token(profile["pan"], state="suspended", holds=["bank"])
    response = send(host, card.request(100))
    assert response["39"] == "62"
    assert decode_token_data(response["48"]).token_status == "S"


def test_deleted_token_gets_14_and_an_application_block_script(host, store, card, profile):
    store.update_token(profile["pan"], state="deleted")
    request = card.request(100)
    response = send(host, request)
    assert response["39"] == "14"
    objs = tlv.decode(response["55"])
    script = tlv.find(objs, 0x72)
    command = tlv.find(script.children, 0x86).value
    assert command[:5] == bytes.fromhex("841E000004")
    icc = tlv.flatten(tlv.decode(request["55"]))
    smi = bytes.fromhex(profile["applications"][0]["keys"]["smi"])
    sk_smi = derive_pboc_session_key(smi, icc[0x9F36])
    assert verify_script_mac(sk_smi, command[:5], icc[0x9F36], icc[0x9F26], b"", command[5:])
    assert tlv.find(objs, 0x91).value[8:] == b"14"


def test_card_reported_lost_declines_its_tokens_with_41_and_a_block_script(host, store, card):
    store.update_card(make_profile(7)["token"]["span"], status="lost")
    response = send(host, card.request(100))
    assert response["39"] == "41"
    assert tlv.find(tlv.decode(response["55"]), 0x72) is not None


def test_contactless_token_used_in_app_is_outside_its_domain(host, store, card):
    response = send(host, card.request(100, entry_mode="812"))
    assert response["39"] == "57"
    assert balance(store) == 10_000


def test_other_token_requestor_in_de48_is_outside_the_domain(host, card):
    response = send(host, card.request(100, token_data=TokenData(token_requestor_id="50099999999")))
    assert response["39"] == "57"


def test_amount_different_from_the_signed_9f02_is_declined(host, store, card):
    request = card.request(100)
    request["4"] = "000000000001"
    assert send(host, request)["39"] == "05"
    assert store.authorizations()[0]["reason"] == "amount_mismatch"


def test_offline_cryptogram_sent_online_is_declined(host, card):
    assert send(host, card.request(100, cid=0x40))["39"] == "05"


def test_insufficient_funds_gets_51_with_an_authenticated_decline(host, store, card):
    response = send(host, card.request(20_000))
    assert response["39"] == "51"
    assert tlv.find(tlv.decode(response["55"]), 0x91).value[8:] == b"51"
    assert balance(store) == 10_000


def test_daily_limit_is_enforced(host, store, card):
    store.update_account(1, daily_limit=1_000)
    assert send(host, card.request(600))["39"] == "00"
    assert send(host, card.request(600))["39"] == "61"


# --- format errors -----------------------------------------------------------------------------


def test_request_without_icc_data_is_a_format_error(host, card):
    request = card.request(100)
    del request["55"]
    assert send(host, request)["39"] == "30"


def test_icc_data_that_is_not_tlv_is_a_format_error(host, card):
    request = card.request(100)
    request["55"] = b"\x9f\x26\x09\x00"
    assert send(host, request)["39"] == "30"


def test_malformed_message_with_readable_mti_gets_30_with_its_stan(host, card):
    raw = encode_message(card.request(100))
    broken = raw[:-3]  # DE 55 cut short
    response = decode_message(host.handle_raw(broken))
    assert response["t"] == "0110"
    assert response["39"] == "30"
    assert response["11"] == f"{card.stan:06d}"


def test_unreadable_message_gets_no_response(host):
    assert host.handle_raw(b"\x00\x01garbage") is None
    assert host.handle_raw(b"0300" + bytes(8)) is None  # readable, but not a request we handle


def test_response_mti_sent_to_the_host_gets_no_response(host):
    assert host.handle_raw(encode_message({"t": "0110", "11": "000001", "39": "00"})) is None


# --- 0200, 0400, 0800 -----------------------------------------------------------------------------


def test_financial_request_0200_is_answered_with_0210(host, store, card):
    response = send(host, card.request(250, mti="0200"))
    assert (response["t"], response["39"]) == ("0210", "00")
    assert balance(store) == 10_000 - 250


def _reversal(request: dict, stan: str) -> dict:
    return {
        "t": "0400",
        "2": request["2"],
        "3": request["3"],
        "4": request["4"],
        "11": stan,
        "37": request["37"],
        "41": request["41"],
        "49": request["49"],
        "90": "0100" + request["11"] + "0" * 32,
    }


def test_reversal_undoes_the_original_exactly_once(host, store, card):
    request = card.request(900)
    send(host, request)
    assert balance(store) == 10_000 - 900
    reversal = _reversal(request, "900001")
    assert send(host, reversal)["39"] == "00"
    assert balance(store) == 10_000
    assert send(host, reversal)["39"] == "00"  # retransmitted 0400: from the record
    assert send(host, _reversal(request, "900002"))["39"] == "00"  # a second, distinct 0400
    assert balance(store) == 10_000
    reasons = [a["reason"] for a in store.authorizations() if a["mti"] == "0400"]
    assert reasons == ["already_reversed", "reversed"]


def test_reversal_of_an_unknown_original_gets_25(host, card):
    request = card.request(900)
    assert send(host, _reversal(request, "900001"))["39"] == "25"


def test_echo_test_0800_is_answered_0810_00(host):
    response = send(host, {"t": "0800", "7": "1126113000", "11": "000001", "70": "301"})
    assert response == {"t": "0810", "7": "1126113000", "11": "000001", "39": "00", "70": "301"}


def test_host_error_answers_96_and_keeps_nothing_of_the_request(host, store, card, monkeypatch):
    def boom(*args, **kwargs):
        store.post(1, -5000)  # a change that must be rolled back
        raise RuntimeError("simulated host fault")

    monkeypatch.setattr(host, "_decide", boom)
    response = send(host, card.request(100))
    assert response["39"] == "96"
    assert balance(store) == 10_000
    assert store.authorizations() == []


def test_log_lines_mask_the_pan(host, card, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="switch")
    send(host, card.request(100))
    send(host, card.request(100, tamper=True))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert card.mpan[:6] + "******" + card.mpan[-4:] in text
    assert card.mpan not in text
