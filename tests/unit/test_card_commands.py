"""The card's commands and their status words (ISO 7816-4; EMV 4.4 Book 1 11-12, Book 3 6.5;
Contactless Book B 3.3): SELECT first/next, GPO, READ RECORD, GET DATA - and that a refused
command changes nothing."""

from __future__ import annotations

import pytest
from card_fixtures import (
    MC_AID,
    PPSE,
    QPBOC_AID,
    VISA_AID,
    multi_profile,
    new_card,
    objects,
    ok,
    transaction,
)

from emvtap.apdu import SW
from emvtap.dol import build_dol_data
from emvtap.tlv import Tlv, decode, find_all
from hce_card.state import StateStore

# --- SELECT ---------------------------------------------------------------------------------


def test_ppse_lists_every_application_with_priority_and_kernel_id():
    _card, term = new_card(multi_profile())
    fci = ok(term.select(PPSE)).data
    entries = find_all(decode(fci), 0x61)
    listed = [(e.find(0x4F).value, e.find(0x87).value[0], e.find(0x9F2A).value[0])
              for e in entries]
    assert listed == [(QPBOC_AID, 1, 7), (VISA_AID, 2, 3), (MC_AID, 3, 2)]


def test_select_by_partial_name_first_then_next_occurrence():
    _card, term = new_card(multi_profile())
    rid = bytes.fromhex("A000000003")
    first = ok(term.select(rid))
    assert decode(first.data)[0].find(0x84).value == VISA_AID
    assert term.select(rid, next_occurrence=True).sw == SW.FILE_NOT_FOUND
    all_a0 = bytes.fromhex("A0")
    found = [decode(ok(term.select(all_a0)).data)[0].find(0x84).value]
    while (r := term.select(all_a0, next_occurrence=True)).sw == SW.OK:
        found.append(decode(r.data)[0].find(0x84).value)
    assert found == [QPBOC_AID, VISA_AID, MC_AID]


def test_select_unknown_application_answers_6a82_and_deselects():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.select(bytes.fromhex("A0000009999999")).sw == SW.FILE_NOT_FOUND
    assert term.get_data(0x9F36).sw == SW.CONDITIONS_NOT_SATISFIED


def test_contact_pse_is_not_on_a_contactless_only_card():
    _card, term = new_card()
    assert term.select(b"1PAY.SYS.DDF01").sw == SW.FILE_NOT_FOUND


@pytest.mark.parametrize(("apdu", "sw"), [
    ("00A4040C07A0000003330101", SW.INCORRECT_P1P2),  # P2 0C: no FCI - not supported
    ("00A4000007A0000003330101", SW.INCORRECT_P1P2),  # select by file id
    ("80A4040007A0000003330101", SW.CLA_NOT_SUPPORTED),
    ("00A40400", SW.WRONG_LENGTH),  # no name
    ("00A404001100112233445566778899AABBCCDDEEFF0011", SW.WRONG_LENGTH),  # 17 bytes
    ("00A4040008A000000333", SW.WRONG_LENGTH),  # Lc longer than the data
])
def test_select_malformed_answers_its_status_word(apdu, sw):
    _card, term = new_card()
    assert term.send(apdu).sw == sw


@pytest.mark.parametrize(("apdu", "sw"), [
    ("B0CA9F3600", SW.CLA_NOT_SUPPORTED),
    ("00CA9F3600", SW.CLA_NOT_SUPPORTED),  # GET DATA is proprietary class 80
    ("80FE000000", SW.INS_NOT_SUPPORTED),
    ("00C0000000", SW.INS_NOT_SUPPORTED),
    ("00", SW.WRONG_LENGTH),
    ("80CA9F", SW.WRONG_LENGTH),
])
def test_unknown_or_malformed_commands_answer_their_status_word(apdu, sw):
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.send(apdu).sw == sw


def test_commands_before_any_select_answer_6985():
    _card, term = new_card()
    assert term.command(0x80, 0xA8, data=bytes.fromhex("8300")).sw == \
        SW.CONDITIONS_NOT_SATISFIED
    assert term.read_record(1, 1).sw == SW.CONDITIONS_NOT_SATISFIED


def test_ppse_answers_6d00_to_payment_commands():
    _card, term = new_card()
    ok(term.select(PPSE))
    assert term.command(0x80, 0xA8, data=bytes.fromhex("8300")).sw == SW.INS_NOT_SUPPORTED


# --- GET PROCESSING OPTIONS -----------------------------------------------------------------


def test_gpo_with_wrong_pdol_length_answers_6700_and_keeps_the_atc():
    card, term = new_card()
    ok(term.select(QPBOC_AID))
    good = build_dol_data(term.app.pdol, transaction())
    for data in (good[:-1], good + b"\x00", b""):
        assert term.command(0x80, 0xA8, data=Tlv.primitive(0x83, data).encode()).sw == \
            SW.WRONG_LENGTH
    assert term.command(0x80, 0xA8, le=0).sw == SW.WRONG_LENGTH  # no data field at all
    assert card.store.state.atc == 0


@pytest.mark.parametrize("data", ["8400", "83", "830500", "9F6604", "8300" "8300"])
def test_gpo_without_a_single_83_template_answers_6a80(data):
    card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.command(0x80, 0xA8, data=bytes.fromhex(data)).sw in (SW.WRONG_DATA,
                                                                      SW.WRONG_LENGTH)
    assert card.store.state.atc == 0


def test_gpo_with_p1p2_or_class_wrong():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    data = Tlv.primitive(0x83, build_dol_data(term.app.pdol, transaction())).encode()
    assert term.command(0x80, 0xA8, 1, 0, data).sw == SW.INCORRECT_P1P2
    assert term.command(0x00, 0xA8, 0, 0, data).sw == SW.CLA_NOT_SUPPORTED


def test_second_gpo_in_one_transaction_answers_6985():
    card, term = new_card()
    ok(term.select(QPBOC_AID))
    ok(term.gpo(transaction()))
    atc = card.store.state.atc
    assert term.gpo(transaction()).sw == SW.CONDITIONS_NOT_SATISFIED
    assert card.store.state.atc == atc


def test_gpo_with_an_empty_pdol_on_a_card_without_pdol():
    _card, term = new_card(multi_profile())
    ok(term.select(MC_AID))
    response = ok(term.command(0x80, 0xA8, data=bytes.fromhex("8300")))
    assert objects(response)[0x82] == bytes.fromhex("3980")
    assert term.command(0x80, 0xA8, data=bytes.fromhex("8300")).sw == \
        SW.CONDITIONS_NOT_SATISFIED


# --- READ RECORD ----------------------------------------------------------------------------


def test_read_record_serves_the_profile_records_byte_identical():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    for rec in term.app.records:
        if not rec.dynamic:
            assert ok(term.read_record(rec.sfi, rec.record)).data == rec.data


def test_read_record_outside_afl_answers_6a83():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.read_record(1, 2).sw == SW.RECORD_NOT_FOUND
    assert term.read_record(2, 3).sw == SW.RECORD_NOT_FOUND


def test_read_record_of_an_unknown_sfi_answers_6a82():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.read_record(9, 1).sw == SW.FILE_NOT_FOUND
    assert term.read_record(30, 1).sw == SW.FILE_NOT_FOUND


@pytest.mark.parametrize(("p1", "p2"), [(0, 0x0C), (1, 0x08), (1, 0x04), (1, 0x0D)])
def test_read_record_with_bad_p1p2_answers_6a86(p1, p2):
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.command(0x00, 0xB2, p1, p2).sw == SW.INCORRECT_P1P2


def test_read_record_9f69_carries_this_transactions_card_authentication_data():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert ok(term.read_record(3, 1)).data == bytes.fromhex("700A9F6907") + bytes(7)
    response = objects(ok(term.gpo(transaction())))
    data = objects(ok(term.read_record(3, 1)))[0x9F69]
    assert data[0] == 0x01 and data[5:] == response[0x9F6C]


# --- GET DATA -------------------------------------------------------------------------------


def test_get_data_atc_last_online_atc_pin_try_counter_and_log_format():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert ok(term.get_data(0x9F36)).data == bytes.fromhex("9F36020000")
    ok(term.gpo(transaction(amount=50000)))  # above the offline limit: ARQC
    ok(term.select(QPBOC_AID))
    assert ok(term.get_data(0x9F36)).data == bytes.fromhex("9F36020001")
    assert ok(term.get_data(0x9F13)).data == bytes.fromhex("9F13020001")
    assert ok(term.get_data(0x9F17)).data == bytes.fromhex("9F170103")
    assert decode(ok(term.get_data(0x9F4F)).data)[0].value == term.app.get_data[0x9F4F]


def test_get_data_balance_where_profiled_and_6a88_elsewhere():
    _card, term = new_card(multi_profile())
    ok(term.select(QPBOC_AID))
    assert ok(term.get_data(0x9F79)).data == bytes.fromhex("9F7906000000005000")
    ok(term.select(VISA_AID))
    assert term.get_data(0x9F79).sw == SW.REFERENCED_DATA_NOT_FOUND
    assert term.get_data(0x5A).sw == SW.REFERENCED_DATA_NOT_FOUND


def test_get_data_with_a_data_field_answers_6700():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.command(0x80, 0xCA, 0x9F, 0x36, b"\x00").sw == SW.WRONG_LENGTH


def test_applications_keep_their_own_atc():
    card, term = new_card(multi_profile())
    ok(term.select(QPBOC_AID))
    ok(term.gpo(transaction()))
    ok(term.select(VISA_AID))
    ok(term.gpo(transaction()))
    ok(term.select(VISA_AID))
    ok(term.gpo(transaction()))
    assert card.store.app(QPBOC_AID).atc == 1
    assert card.store.app(VISA_AID).atc == 2


def test_a_refused_command_changes_no_state(tmp_path):
    store = StateStore(tmp_path / "s.json")
    _card, term = new_card(store=store)
    ok(term.select(QPBOC_AID))
    ok(term.gpo(transaction()))
    before = (tmp_path / "s.json").read_bytes()
    for apdu in ("80A8000002830000", "80AE800000", "008800000412345678", "0082000000",
                 "841E000000", "00B2014C00", "80CA000000", "0082000008" + "00" * 8):
        assert term.send(apdu).sw != SW.OK
    assert (tmp_path / "s.json").read_bytes() == before
