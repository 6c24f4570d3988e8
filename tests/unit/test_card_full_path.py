"""The full path (EMV 4.4 Book 3 6.5.4, 6.5.5, 6.5.9, 9.3, 10.9; Book 2 6.5, 6.6, 8.2):
INTERNAL AUTHENTICATE, GENERATE AC 1 and 2 with card action analysis and CDA, issuer
authentication in the second GENERATE AC and by EXTERNAL AUTHENTICATE, and the status words of
everything out of sequence."""

from __future__ import annotations

import hashlib

import pytest
from card_fixtures import (
    MC_AID,
    QPBOC_AID,
    SEED,
    TTQ_FULL,
    VISA_AID,
    app_pan,
    assert_ac_verifies,
    icc_public_key,
    mastercard_profile,
    multi_profile,
    new_card,
    objects,
    ok,
    qpboc_profile,
    transaction,
)

from emvtap.apdu import SW
from emvtap.bits import CID
from emvtap.cryptogram import arpc_method_1, arpc_method_2, parse_pboc_iad
from emvtap.keys import derive_icc_master_key, derive_pboc_session_key, derive_visa_session_key
from emvtap.oda import OdaError, parse_idn, recover_dynamic_data, verify_cda
from emvtap.perso import issuer_keys

P1_AAC, P1_TC, P1_ARQC, P1_CDA = 0x00, 0x40, 0x80, 0x10


def pboc_session_key(atc: bytes) -> bytes:
    profile = qpboc_profile()
    mk = derive_icc_master_key(issuer_keys(SEED).imk_ac, profile.pan, profile.psn)
    return derive_pboc_session_key(mk, atc)


def format1(response) -> tuple[int, bytes, bytes, bytes]:
    """Book 3 6.5.5.4 Format 1: 80 L CID ‖ ATC ‖ AC ‖ IAD."""
    value = objects(response)[0x80]
    return value[0], value[1:3], value[3:11], value[11:]


def full_path(profile=None, aid=QPBOC_AID, amount=1000, **kw):
    card, term = new_card(profile or qpboc_profile(), **kw)
    values = transaction(amount=amount, ttq=TTQ_FULL)
    term.full_path(aid, values)
    return card, term, values


def first_arqc(amount=20000):
    card, term, values = full_path(amount=amount)
    cid, atc, ac, iad = format1(ok(term.generate_ac(P1_ARQC, values)))
    assert cid == CID.ARQC
    return card, term, values, atc, ac, iad


def cdol2_values(values, issuer_data: bytes, arc: bytes = b"00"):
    return values | {0x91: issuer_data, 0x8A: arc}


# --- GPO of the full path -------------------------------------------------------------------


def test_full_path_gpo_answers_aip_and_afl_and_advances_the_atc():
    card, term = new_card()
    ok(term.select(QPBOC_AID))
    response = objects(ok(term.gpo(transaction(ttq=TTQ_FULL))))
    assert set(response) == {0x82, 0x94}
    assert card.store.app(QPBOC_AID).atc == 1


# --- INTERNAL AUTHENTICATE ------------------------------------------------------------------


def test_internal_authenticate_signs_the_ddol_data_dda():
    profile = qpboc_profile()
    _card, term, _ = full_path(profile)
    un = bytes.fromhex("CAFEBABE")
    sdad = objects(ok(term.internal_authenticate(un)))[0x80]
    idn = parse_idn(recover_dynamic_data(icc_public_key(profile, term.app), sdad, un))
    assert len(idn) == 8
    with pytest.raises(OdaError):
        recover_dynamic_data(icc_public_key(profile, term.app), sdad, bytes(4))


def test_internal_authenticate_before_gpo_or_after_generate_ac_answers_6985():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.internal_authenticate(b"\x01\x02\x03\x04").sw == SW.CONDITIONS_NOT_SATISFIED
    _card, term, values = full_path()
    ok(term.generate_ac(P1_AAC, values))
    assert term.internal_authenticate(b"\x01\x02\x03\x04").sw == SW.CONDITIONS_NOT_SATISFIED


@pytest.mark.parametrize(("p1", "p2", "data", "sw"), [
    (1, 0, b"\x01\x02\x03\x04", SW.INCORRECT_P1P2),
    (0, 0, b"", SW.WRONG_LENGTH),
    (0, 0, bytes(200), SW.WRONG_LENGTH),
])
def test_internal_authenticate_malformed(p1, p2, data, sw):
    _card, term, _ = full_path()
    assert term.command(0x00, 0x88, p1, p2, data).sw == sw


# --- GENERATE AC 1 --------------------------------------------------------------------------


def test_first_generate_ac_arqc_verifies_with_the_pboc_session_key():
    card, term, values, atc, ac, iad = first_arqc()
    assert_ac_verifies(term.app, qpboc_profile().pan, "01",
                       values | {0x82: term.app.aip, 0x9F36: atc, 0x9F10: iad}, ac)
    assert card.store.app(QPBOC_AID).last_online_not_completed


def test_card_action_analysis_turns_a_tc_request_above_the_limit_into_an_arqc():
    _card, term, values = full_path(amount=20000)
    cid, *_ = format1(ok(term.generate_ac(P1_TC, values)))
    assert cid == CID.ARQC


def test_tc_request_within_limits_is_approved_offline_and_counted():
    card, term, values = full_path(amount=1000)
    cid, atc, ac, iad = format1(ok(term.generate_ac(P1_TC, values)))
    assert cid == CID.TC
    assert_ac_verifies(term.app, qpboc_profile().pan, "01",
                       values | {0x82: term.app.aip, 0x9F36: atc, 0x9F10: iad}, ac)
    state = card.store.app(QPBOC_AID)
    assert (state.consecutive_offline, state.cumulative_offline_amount) == (1, 1000)


def test_aac_request_is_never_upgraded():
    _card, term, values = full_path(amount=1000)
    cid, *_ = format1(ok(term.generate_ac(P1_AAC, values)))
    assert cid == CID.AAC
    assert term.generate_ac(P1_TC, values).sw == SW.CONDITIONS_NOT_SATISFIED


@pytest.mark.parametrize(("p1", "p2"), [(0xC0, 0), (0x48, 0), (0x80, 1), (0x20, 0)])
def test_generate_ac_with_rfu_reference_control_answers_6a86(p1, p2):
    _card, term, values = full_path()
    from emvtap.dol import build_dol_data

    data = build_dol_data(term.app.cdol1, values)
    assert term.command(0x80, 0xAE, p1, p2, data).sw == SW.INCORRECT_P1P2
    assert term.command(0x80, 0xAE, 0x80, 0, data).sw == SW.OK  # nothing was used up


def test_generate_ac_with_wrong_cdol_length_answers_6700():
    _card, term, values = full_path()
    from emvtap.dol import build_dol_data

    data = build_dol_data(term.app.cdol1, values)
    assert term.command(0x80, 0xAE, P1_ARQC, 0, data[:-1]).sw == SW.WRONG_LENGTH


def test_generate_ac_before_gpo_answers_6985():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.generate_ac(P1_ARQC, transaction()).sw == SW.CONDITIONS_NOT_SATISFIED


def test_generate_ac_after_the_quick_path_answers_6985():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    ok(term.gpo(transaction()))
    assert term.generate_ac(P1_ARQC, transaction()).sw == SW.CONDITIONS_NOT_SATISFIED


def test_cda_not_supported_by_the_aip_answers_6a86():
    _card, term, values = full_path()
    assert term.generate_ac(P1_ARQC | P1_CDA, values).sw == SW.INCORRECT_P1P2


# --- GENERATE AC 2 and issuer authentication ------------------------------------------------


def test_second_generate_ac_with_a_good_arpc_gives_a_tc_and_resets_counters():
    card, term, values, atc, arqc, _ = first_arqc()
    arpc = arpc_method_1(pboc_session_key(atc), arqc, b"00") + b"00"
    second = cdol2_values(values, arpc)
    cid, atc2, tc, iad = format1(ok(term.generate_ac(P1_TC, second, second=True)))
    assert (cid, atc2) == (CID.TC, atc)
    cvr = parse_pboc_iad(iad).cvr
    assert cvr[1] >> 4 == 0b0110  # 2nd GENERATE AC TC (01), 1st ARQC (10)
    assert not cvr[1] & 0x08
    ac_values = values | second | {0x82: term.app.aip, 0x9F36: atc, 0x9F10: iad}
    assert_ac_verifies(term.app, qpboc_profile().pan, "01", ac_values, tc)
    state = card.store.app(QPBOC_AID)
    assert state.last_online_atc == 1 and not state.last_online_not_completed
    assert not state.issuer_authentication_failed


def test_second_generate_ac_with_a_bad_arpc_declines_and_remembers_the_failure():
    card, term, values, atc, _arqc, _ = first_arqc()
    bad = arpc_method_1(pboc_session_key(atc), bytes(8), b"00") + b"00"
    cid, _, _, iad = format1(ok(term.generate_ac(P1_TC, cdol2_values(values, bad),
                                                 second=True)))
    assert cid == CID.AAC
    assert parse_pboc_iad(iad).cvr[1] & 0x08  # issuer authentication failed
    assert card.store.app(QPBOC_AID).issuer_authentication_failed
    # the next transaction reports it (CVR byte 3 b4) and goes online
    ok(term.select(QPBOC_AID))
    response = objects(ok(term.gpo(transaction(amount=100))))
    assert response[0x9F27] == bytes([CID.ARQC])
    assert parse_pboc_iad(response[0x9F10]).cvr[2] & 0x08


def test_issuer_decline_with_a_valid_arpc_gives_an_aac():
    card, term, values, atc, arqc, _ = first_arqc()
    arpc = arpc_method_1(pboc_session_key(atc), arqc, b"05") + b"05"
    cid, *_ = format1(ok(term.generate_ac(P1_TC, cdol2_values(values, arpc, b"05"),
                                          second=True)))
    assert cid == CID.AAC
    assert not card.store.app(QPBOC_AID).issuer_authentication_failed


def test_unable_to_go_online_approves_offline_within_limits():
    _card, term, values, *_ = first_arqc(amount=1000)
    cid, _, _, iad = format1(ok(term.generate_ac(P1_TC, cdol2_values(values, bytes(10), b"Y3"),
                                                 second=True)))
    assert cid == CID.TC
    assert parse_pboc_iad(iad).cvr[1] & 0x01  # unable to go online


def test_unable_to_go_online_above_the_offline_limit_declines():
    _card, term, values, *_ = first_arqc(amount=20000)
    cid, *_ = format1(ok(term.generate_ac(P1_TC, cdol2_values(values, bytes(10), b"Z3"),
                                          second=True)))
    assert cid == CID.AAC


def test_second_generate_ac_rejects_arqc_and_a_third_is_out_of_sequence():
    _card, term, values, atc, arqc, _ = first_arqc()
    arpc = arpc_method_1(pboc_session_key(atc), arqc, b"00") + b"00"
    second = cdol2_values(values, arpc)
    assert term.generate_ac(P1_ARQC, second, second=True).sw == SW.INCORRECT_P1P2
    ok(term.generate_ac(P1_TC, second, second=True))
    assert term.generate_ac(P1_TC, second, second=True).sw == SW.CONDITIONS_NOT_SATISFIED


def test_last_online_transaction_not_completed_is_reported_next_time():
    _card, term, *_ = first_arqc()
    term.card.reset()  # card pulled away before the second GENERATE AC
    ok(term.select(QPBOC_AID))
    response = objects(ok(term.gpo(transaction(amount=100))))
    assert response[0x9F27] == bytes([CID.ARQC])
    assert parse_pboc_iad(response[0x9F10]).cvr[2] & 0x80


# --- EXTERNAL AUTHENTICATE ------------------------------------------------------------------


def test_external_authenticate_good_then_second_generate_ac_tc():
    _card, term, values, atc, arqc, _ = first_arqc()
    arpc = arpc_method_1(pboc_session_key(atc), arqc, b"00") + b"00"
    ok(term.external_authenticate(arpc))
    assert term.external_authenticate(arpc).sw == SW.CONDITIONS_NOT_SATISFIED  # once
    cid, *_ = format1(ok(term.generate_ac(P1_TC, cdol2_values(values, bytes(10)),
                                          second=True)))
    assert cid == CID.TC


def test_external_authenticate_bad_answers_6300_and_is_remembered():
    card, term, values, _atc, _arqc, _ = first_arqc()
    assert term.external_authenticate(bytes(10)).sw == SW.STATE_UNCHANGED_WARNING
    assert card.store.app(QPBOC_AID).issuer_authentication_failed
    cid, *_ = format1(ok(term.generate_ac(P1_TC, cdol2_values(values, bytes(10)),
                                          second=True)))
    assert cid == CID.AAC


def test_external_authenticate_without_an_arqc_answers_6985_and_bad_length_6700():
    _card, term, _values = full_path()
    assert term.external_authenticate(bytes(10)).sw == SW.CONDITIONS_NOT_SATISFIED
    assert term.external_authenticate(bytes(7)).sw == SW.WRONG_LENGTH
    assert term.command(0x00, 0x82, 0, 1, bytes(10)).sw == SW.INCORRECT_P1P2


def test_issuer_update_on_re_presentation_after_a_quick_path_arqc():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    response = objects(ok(term.gpo(transaction(amount=20000))))
    assert response[0x9F27] == bytes([CID.ARQC])
    term.card.reset()
    ok(term.select(QPBOC_AID))
    arpc = arpc_method_1(pboc_session_key(response[0x9F36]), response[0x9F26], b"00") + b"00"
    ok(term.external_authenticate(arpc))


# --- Mastercard-style: GENERATE AC with CDA -------------------------------------------------


def mc_first(p1=P1_ARQC | P1_CDA, amount=20000):
    profile = mastercard_profile()
    card, term = new_card(profile)
    values = transaction(amount=amount)
    ok(term.select(MC_AID))
    ok(term.command(0x80, 0xA8, data=bytes.fromhex("8300")))
    response = ok(term.generate_ac(p1, values))
    return profile, card, term, values, response


def test_cda_signature_verifies_with_verify_cda_and_the_ac_inside_verifies():
    profile, _card, term, values, response = mc_first()
    icc_pk = icc_public_key(profile, term.app)
    result = verify_cda(icc_pk, response.data, values[0x9F37], b"", term.cdol1_data)
    assert result.cid == CID.ARQC
    flat = objects(response)
    assert 0x9F26 not in flat  # in CDA the AC travels only inside the signature
    assert_ac_verifies(term.app, profile.pan, "01",
                       values | {0x82: term.app.aip, 0x9F36: flat[0x9F36],
                                 0x9F10: flat[0x9F10]}, result.ac)
    assert flat[0x9F10][3] & 0x40  # M/Chip CVR byte 2: CDA returned in 1st GENERATE AC


def test_cda_signature_fails_for_a_different_unpredictable_number_or_cdol():
    profile, _card, term, values, response = mc_first()
    icc_pk = icc_public_key(profile, term.app)
    with pytest.raises(OdaError):
        verify_cda(icc_pk, response.data, bytes(4), b"", term.cdol1_data)
    with pytest.raises(OdaError, match="hash"):
        verify_cda(icc_pk, response.data, values[0x9F37], b"", bytes(len(term.cdol1_data)))


def test_cda_is_not_applied_to_an_aac():
    _profile, _card, _term, _values, response = mc_first(p1=P1_AAC | P1_CDA)
    flat = objects(response)
    assert flat[0x9F27] == bytes([CID.AAC]) and 0x9F4B not in flat and 0x9F26 in flat


def test_cda_in_the_second_generate_ac_covers_cdol2():
    profile, _card, term, values, response = mc_first()
    result = verify_cda(icc_public_key(profile, term.app), response.data, values[0x9F37], b"",
                        term.cdol1_data)
    imk = hashlib.sha256(f"emvtap test IMK M/Chip AC {SEED}".encode()).digest()[:16]
    mk = derive_icc_master_key(imk, profile.pan, "01")
    arpc = arpc_method_1(mk, result.ac, b"00") + b"00"  # M/Chip: ARPC under the ICC MK
    second = values | {0x91: arpc, 0x8A: b"00", 0x9F37: bytes.fromhex("0BADF00D")}
    response2 = ok(term.generate_ac(P1_TC | P1_CDA, second, second=True))
    from emvtap.dol import build_dol_data

    cdol2_data = build_dol_data(term.app.cdol2, second)
    result2 = verify_cda(icc_public_key(profile, term.app), response2.data,
                         bytes.fromhex("0BADF00D"), b"", term.cdol1_data, cdol2_data)
    assert result2.cid == CID.TC


# --- Visa CVN 18: ARPC method 2 -------------------------------------------------------------


def test_visa_second_generate_ac_checks_an_arpc_method_2_with_csu():
    profile = multi_profile()
    visa = profile.applications[1]
    _card, term = new_card(profile)
    values = transaction(amount=20000, ttq=TTQ_FULL)
    term.full_path(VISA_AID, values)
    cid, atc, arqc, _iad = format1(ok(term.generate_ac(P1_ARQC, values)))
    assert cid == CID.ARQC
    imk = hashlib.sha256(f"emvtap test IMK qVSDC AC {SEED}".encode()).digest()[:16]
    sk = derive_visa_session_key(derive_icc_master_key(imk, app_pan(visa), "01"), atc)
    csu = bytes.fromhex("00800000")
    arpc = arpc_method_2(sk, arqc, csu) + csu
    cid2, *_ = format1(ok(term.generate_ac(P1_TC, values | {0x91: arpc, 0x8A: b"00"},
                                           second=True)))
    assert cid2 == CID.TC


def test_external_authenticate_after_the_transaction_completed_answers_6985():
    _card, term, values, atc, arqc, _ = first_arqc()
    arpc = arpc_method_1(pboc_session_key(atc), arqc, b"00") + b"00"
    ok(term.generate_ac(P1_TC, cdol2_values(values, arpc), second=True))
    term.card.reset()
    ok(term.select(QPBOC_AID))
    assert term.external_authenticate(arpc).sw == SW.CONDITIONS_NOT_SATISFIED
