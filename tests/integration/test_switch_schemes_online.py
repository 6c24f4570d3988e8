"""The terminal pays online against a running switch (TCP, ISO 8583) with each scheme's device
card on the HCE card over loopback: qPBOC (PBOC CVN 01), qVSDC (Visa CVN 18) and M/Chip
(Mastercard CVN 16, full path with CDA). Every tap is approved with a verified ARQC, and its
ARPC is one the card accepts: in GENERATE AC 2 on the full path; on the quick path (where the
ARPC does not reach the card in the tap) by EXTERNAL AUTHENTICATE on re-presentation."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.cryptogram import arpc_method_1, arpc_method_2
from emvtap.keys import derive_pboc_session_key, derive_visa_session_key
from emvtap.luhn import luhn_complete
from emvtap.perso import generate_profile
from emvtap.perso_schemes import generate_mastercard_profile, generate_visa_profile
from emvtap.profile import CardProfile, TokenInfo
from hce_card.card import HceCard
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import running_switch
from terminal.config import TerminalConfig
from terminal.outcome import Outcome
from terminal.pay import perform_transaction
from terminal.transport import open_transport

NOW = datetime(2025, 11, 26, 11, 30, tzinfo=UTC)


def device_card(profile: CardProfile, n: int) -> CardProfile:
    """A scheme profile as a device card (emvtap.perso_schemes makes no token itself)."""
    return replace(profile, token=TokenInfo(
        mpan=profile.pan, span=luhn_complete(f"622848{n:09d}"), span_expiry="3112",
        token_expiry=profile.expiry[:4], device_id=f"phone-{n}", device_type="handset-se",
        token_requestor_id="50012345678", par=f"U001{n:025d}"))


PROFILES = {
    "qPBOC": generate_profile(61),
    "qVSDC": device_card(generate_visa_profile(62), 62),
    "M/Chip": device_card(generate_mastercard_profile(63), 63),
}
PATHS = {"qPBOC": "qPBOC quick path", "qVSDC": "qVSDC quick path", "M/Chip": "EMV full path"}
CVNS = {"qPBOC": 0x01, "qVSDC": 0x12, "M/Chip": 0x10}


@pytest.fixture
def switch(tmp_path):
    db = tmp_path / "switch.db"
    with Store(db) as store:
        for profile in PROFILES.values():
            enroll_profile(store, profile.to_dict(), balance=1_000_000)
    with running_switch(db) as server:
        yield db, f"127.0.0.1:{server.port}"


def send(card: HceCard, cmd: CommandApdu) -> ResponseApdu:
    return ResponseApdu.decode(card.process(cmd.encode()))


@pytest.mark.parametrize("scheme", list(PROFILES))
def test_each_scheme_is_approved_online_with_an_arpc_the_card_accepts(switch, scheme):
    db, address = switch
    profile = PROFILES[scheme]
    app = profile.application
    assert app.cvn == CVNS[scheme]
    card = HceCard(profile)
    config = TerminalConfig.default()  # terminal/data/terminal.json as shipped

    result = perform_transaction(open_transport("loopback:", card=card), config, 15000,
                                 switch=address, now=NOW, rng=random.Random(3))

    assert result.path == PATHS[scheme]
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.final_outcome == Outcome.APPROVED, result.reason
    assert result.online["response_code"] == "00"
    with Store(db) as store:
        record = store.authorizations(mpan=profile.pan)[0]
        (cryptogram,) = store.db.execute(
            "SELECT cryptogram FROM authorizations WHERE id = ?", (record["id"],)).fetchone()
    assert record["reason"] == "approved"
    arqc = bytes.fromhex(cryptogram)
    atc = record["atc"].to_bytes(2, "big")
    issuer_auth = bytes.fromhex(result.online["arpc"])

    if scheme == "M/Chip":
        # ARPC method 1 under the ICC MK (not the session key), checked by the card in
        # GENERATE AC 2 (91 in CDOL2) before it agreed to the TC
        assert issuer_auth == arpc_method_1(app.keys.ac, arqc, b"00") + b"00"
        assert result.online["arpc_verified"] is True
        assert "card accepted (TC in GENERATE AC 2)" in result.reason
        assert card.last_reason == "issuer approved"
        state = card.store.app(app.aid)
        assert not state.issuer_authentication_failed
        assert not state.issuer_authentication_not_performed
        assert state.online is not None and state.online.authenticated
        return

    # quick path: the card finished in GPO; present it again with the host's 91
    if scheme == "qPBOC":
        assert issuer_auth == arpc_method_1(derive_pboc_session_key(app.keys.ac, atc), arqc,
                                            b"00") + b"00"
    else:  # method 2: ARPC (4) ‖ CSU (4, "approved") under the EMV CSK session key
        key = derive_visa_session_key(app.keys.ac, atc)
        assert issuer_auth[4:] == bytes.fromhex("00820000")
        assert issuer_auth[:4] == arpc_method_2(key, arqc, issuer_auth[4:])
    card.reset()
    assert send(card, CommandApdu(0x00, 0xA4, 0x04, 0x00, app.aid, 0)).sw == SW.OK
    response = send(card, CommandApdu(0x00, 0x82, 0x00, 0x00, issuer_auth))
    assert response.sw == SW.OK  # 6300 would be an ARPC the card rejects
    state = card.store.app(app.aid)
    assert not state.issuer_authentication_failed
    assert state.online is not None and state.online.authenticated
    assert state.online.arqc == cryptogram


def test_a_wrong_arpc_is_rejected_by_the_card_on_re_presentation(switch):
    """The re-presentation check above can fail: a flipped ARPC answers 6300."""
    _, address = switch
    profile = PROFILES["qVSDC"]
    card = HceCard(profile)
    result = perform_transaction(open_transport("loopback:", card=card), TerminalConfig.default(),
                                 15000, switch=address, now=NOW, rng=random.Random(4))
    assert result.final_outcome == Outcome.APPROVED
    issuer_auth = bytearray.fromhex(result.online["arpc"])
    issuer_auth[0] ^= 0x01
    card.reset()
    send(card, CommandApdu(0x00, 0xA4, 0x04, 0x00, profile.application.aid, 0))
    response = send(card, CommandApdu(0x00, 0x82, 0x00, 0x00, bytes(issuer_auth)))
    assert response.sw == SW.STATE_UNCHANGED_WARNING
    assert card.store.app(profile.application.aid).issuer_authentication_failed
