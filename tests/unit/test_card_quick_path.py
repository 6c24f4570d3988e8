"""The quick path (Contactless C-7 qPBOC, C-3 qVSDC): the card decides in GPO, its
cryptogram verifies under keys derived independently from the issuer master keys, the fDDA
signature verifies through the test CA chain, card risk management counts offline
transactions, CDCVM follows the wallet's user verification and the in-app limit."""

from __future__ import annotations

import pytest
from card_fixtures import (
    QPBOC_AID,
    SEED,
    VISA_AID,
    assert_ac_verifies,
    icc_public_key,
    multi_profile,
    new_card,
    objects,
    ok,
    qpboc_profile,
    transaction,
    visa_profile,
)

from emvtap.bits import CID, CTQ, is_set
from emvtap.cryptogram import parse_pboc_iad
from emvtap.oda import fdda_terminal_data, parse_idn, recover_dynamic_data
from hce_card.state import AppState, CardState, StateStore

ONLINE_REQUIRED = bytes.fromhex("36804000")  # TTQ byte 2 b8
CVM_REQUIRED = bytes.fromhex("36404000")  # TTQ byte 2 b7
OFFLINE_ONLY = bytes.fromhex("3E004000")  # TTQ byte 1 b4


def quick(profile=None, aid=QPBOC_AID, store=None, **kw):
    card, term = new_card(profile or qpboc_profile(), store, **kw)
    ok(term.select(aid))
    return card, term


def gpo_values(term, values):
    response = objects(ok(term.gpo(values)))
    return response, values | {0x82: response[0x82], 0x9F36: response[0x9F36],
                               0x9F10: response[0x9F10]}


def test_offline_approval_returns_a_tc_that_verifies_with_the_pboc_session_key():
    _card, term = quick()
    response, values = gpo_values(term, transaction(amount=1000))
    assert response[0x9F27] == bytes([CID.TC])
    profile = qpboc_profile()
    assert_ac_verifies(term.app, profile.pan, profile.psn, values, response[0x9F26])


def test_fdda_signature_verifies_through_the_test_ca_chain():
    profile = qpboc_profile()
    _card, term = quick(profile)
    values = transaction(amount=1000)
    response = objects(ok(term.gpo(values)))
    card_auth = objects(ok(term.read_record(3, 1)))[0x9F69]
    icc_pk = icc_public_key(profile, term.app)
    dynamic = recover_dynamic_data(icc_pk, response[0x9F4B],
                                   fdda_terminal_data(values | {0x9F69: card_auth}))
    assert parse_idn(dynamic) == response[0x9F36]


def test_fdda_signature_does_not_verify_for_another_amount():
    profile = qpboc_profile()
    _card, term = quick(profile)
    values = transaction(amount=1000)
    response = objects(ok(term.gpo(values)))
    card_auth = objects(ok(term.read_record(3, 1)))[0x9F69]
    tampered = values | {0x9F02: bytes.fromhex("000000000999"), 0x9F69: card_auth}
    from emvtap.oda import OdaError

    with pytest.raises(OdaError, match="hash mismatch"):
        recover_dynamic_data(icc_public_key(profile, term.app), response[0x9F4B],
                             fdda_terminal_data(tampered))


def test_above_the_offline_limit_the_card_asks_for_an_arqc():
    _card, term = quick()
    response, values = gpo_values(term, transaction(amount=20000))
    assert response[0x9F27] == bytes([CID.ARQC])
    assert 0x9F4B not in response  # no fDDA signature on an online request
    assert_ac_verifies(term.app, qpboc_profile().pan, "01", values, response[0x9F26])


@pytest.mark.parametrize(("ttq", "cid"), [(ONLINE_REQUIRED, CID.ARQC), (OFFLINE_ONLY, CID.TC)])
def test_reader_qualifiers_drive_the_decision(ttq, cid):
    _card, term = quick()
    response, _ = gpo_values(term, transaction(amount=1000, ttq=ttq))
    assert response[0x9F27] == bytes([cid])


def test_offline_only_reader_and_a_card_that_must_go_online_gives_an_aac():
    _card, term = quick()
    response, _ = gpo_values(term, transaction(amount=20000, ttq=OFFLINE_ONLY))
    assert response[0x9F27] == bytes([CID.AAC])


def test_foreign_currency_goes_online():
    _card, term = quick()
    response, _ = gpo_values(term, transaction(amount=100, currency="0840"))
    assert response[0x9F27] == bytes([CID.ARQC])


def test_consecutive_offline_limit_sends_the_sixth_transaction_online_and_resets():
    card, term = quick()
    cids = []
    for _ in range(7):
        ok(term.select(QPBOC_AID))
        cids.append(objects(ok(term.gpo(transaction(amount=100))))[0x9F27][0])
    assert cids == [CID.TC] * 5 + [CID.ARQC, CID.TC]
    assert card.store.app(QPBOC_AID).consecutive_offline == 1


def test_cumulative_offline_amount_limit_from_the_profile_extra():
    profile = qpboc_profile()
    app = profile.applications[0]
    from dataclasses import replace

    limited = replace(profile, applications=(replace(app, extra={
        "risk": {"cumulative_offline_limit": 2500}}),))
    _card, term = quick(limited)
    cids = []
    for _ in range(3):
        ok(term.select(QPBOC_AID))
        cids.append(objects(ok(term.gpo(transaction(amount=1000))))[0x9F27][0])
    assert cids == [CID.TC, CID.TC, CID.ARQC]


def test_cvr_reports_ac_type_new_card_and_offline_dda():
    _card, term = quick()
    response = objects(ok(term.gpo(transaction(amount=1000))))
    cvr = parse_pboc_iad(response[0x9F10]).cvr
    assert cvr[0] == 0x03
    assert cvr[1] == 0b1001_0000  # 2nd GENERATE AC not requested (10), 1st TC (01)
    assert cvr[2] & 0x10  # new card: never online yet
    assert cvr[3] & 0x02  # offline dynamic data authentication performed


def test_cvr_of_the_next_transaction_reports_last_issuer_authentication_failure():
    store = StateStore(initial=CardState(applications={
        QPBOC_AID.hex().upper(): AppState(issuer_authentication_failed=True,
                                          last_online_atc=3, atc=3)}))
    _card, term = quick(store=store)
    response = objects(ok(term.gpo(transaction(amount=1000))))
    assert response[0x9F27] == bytes([CID.ARQC])  # card risk management: go online
    cvr = parse_pboc_iad(response[0x9F10]).cvr
    assert cvr[2] & 0x08 and not cvr[2] & 0x10


def test_cvm_required_with_online_pin_reader_sets_ctq_online_pin():
    _card, term = quick()
    response = objects(ok(term.gpo(transaction(amount=1000, ttq=CVM_REQUIRED))))
    assert is_set(response[0x9F6C], CTQ.ONLINE_PIN_REQUIRED)
    assert response[0x9F27] == bytes([CID.ARQC])


def test_cdcvm_marks_the_transaction_device_verified():
    _card, term = quick(cdcvm=lambda: True)
    response = objects(ok(term.gpo(transaction(amount=1000, ttq=CVM_REQUIRED))))
    assert is_set(response[0x9F6C], CTQ.CDCVM_PERFORMED)
    assert not is_set(response[0x9F6C], CTQ.ONLINE_PIN_REQUIRED)
    assert response[0x9F27] == bytes([CID.TC])


def test_cdcvm_needs_a_reader_that_supports_it():
    _card, term = quick(cdcvm=lambda: True)
    no_cdcvm_reader = bytes.fromhex("36400000")
    response = objects(ok(term.gpo(transaction(amount=1000, ttq=no_cdcvm_reader))))
    assert not is_set(response[0x9F6C], CTQ.CDCVM_PERFORMED)


def test_user_verified_flag_covers_exactly_one_transaction():
    card, term = quick()
    card.store.update(user_verified=True)
    first = objects(ok(term.gpo(transaction(amount=1000, ttq=CVM_REQUIRED))))
    ok(term.select(QPBOC_AID))
    second = objects(ok(term.gpo(transaction(amount=1000, ttq=CVM_REQUIRED))))
    assert is_set(first[0x9F6C], CTQ.CDCVM_PERFORMED)
    assert not is_set(second[0x9F6C], CTQ.CDCVM_PERFORMED)
    assert card.store.state.user_verified is False


def test_in_app_limit_decides_when_device_verification_is_needed():
    profile = qpboc_profile()
    from dataclasses import replace

    app = replace(profile.applications[0], extra={"no_password_limit": 500})
    limited = replace(profile, applications=(app,))
    no_pin_reader = bytes.fromhex("22004000")  # qPBOC, signature, CDCVM; no online PIN
    card, term = quick(limited)
    small = objects(ok(term.gpo(transaction(amount=400, ttq=no_pin_reader))))
    ok(term.select(QPBOC_AID))
    large = objects(ok(term.gpo(transaction(amount=600, ttq=no_pin_reader))))
    assert small[0x9F27] == bytes([CID.TC])
    assert large[0x9F27] == bytes([CID.AAC])
    assert "authenticate on the device" in card.last_reason
    _verified_card, verified = quick(limited, cdcvm=lambda: True)
    again = objects(ok(verified.gpo(transaction(amount=600, ttq=no_pin_reader))))
    assert again[0x9F27] == bytes([CID.TC]) and is_set(again[0x9F6C], CTQ.CDCVM_PERFORMED)


def test_visa_qvsdc_cryptogram_is_cvn18_and_fdda_format_95():
    profile = visa_profile()
    _card, term = quick(profile, VISA_AID)
    response, values = gpo_values(term, transaction(amount=1000))
    assert response[0x9F10][:3] == bytes([0x06, 0x01, 0x12])
    pan = profile.pan
    assert_ac_verifies(term.app, pan, "01", values, response[0x9F26], SEED)
    card_auth = objects(ok(term.read_record(3, 1)))[0x9F69]
    icc_pk = icc_public_key(profile, term.app)
    recovered = icc_pk.recover_raw(response[0x9F4B])
    assert recovered[1] == 0x95
    recover_dynamic_data(icc_pk, response[0x9F4B],
                         fdda_terminal_data(values | {0x9F69: card_auth}))


def test_ecash_offline_approval_debits_the_balance_and_reports_it():
    _card, term = quick(multi_profile())
    response = objects(ok(term.gpo(transaction(amount=1200))))
    assert response[0x9F27] == bytes([CID.TC])
    assert response[0x9F5D] == bytes.fromhex("000000003800")
    ok(term.select(QPBOC_AID))
    assert ok(term.get_data(0x9F79)).data == bytes.fromhex("9F7906000000003800")


def test_ecash_balance_too_low_goes_online_and_keeps_the_balance():
    _card, term = quick(multi_profile())
    response = objects(ok(term.gpo(transaction(amount=6000))))
    assert response[0x9F27] == bytes([CID.ARQC])
    assert response[0x9F5D] == bytes.fromhex("000000005000")
