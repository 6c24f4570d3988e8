"""Cards that lie: the kernel trusts only what is signed. Each test here is a card answer
that an earlier kernel accepted - an unsigned copy of a signed data object (EMV 4.4 Book 3,
10.2 redundant data), a track 2 PAN that is not the certified PAN (Book 2, 6.4), an ATC that
is not the one in the signed dynamic data (Contactless Books C-3 / C-7 fDDA; Book 2, 6.6.2
CDA), a DOL whose data no command can carry (Book 3, 5.4), and answers too malformed to parse
whose PAN must still be masked in the tap record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import Any

import pytest
from test_terminal_doubles import (
    TODAY,
    CardBehaviour,
    Host,
    MutatingCard,
    emv_card,
    loopback,
    on_ins,
    set_tag,
)

from emvtap.bits import TVR, is_set
from emvtap.luhn import luhn_check_digit
from emvtap.perso import generate_profile
from emvtap.perso_schemes import generate_mastercard_profile, generate_visa_profile
from emvtap.profile import CardProfile
from emvtap.tlv import Tlv, decode
from hce_card.card import HceCard
from terminal.config import TerminalConfig
from terminal.outcome import Outcome, TransactionResult
from terminal.pay import perform_transaction

Mutation = Callable[[bytes, bytes], bytes]

#: One day before the Mastercard profile's signed Application Effective Date (5F25 251101).
NOT_YET_EFFECTIVE_DAY = datetime(2025, 10, 1, 10, 0)
NOW = datetime(2026, 3, 16, 10, 30)


@cache
def mastercard() -> CardProfile:
    return generate_mastercard_profile(43)


@cache
def visa() -> CardProfile:
    return generate_visa_profile(42)


@cache
def quickpass() -> CardProfile:
    return generate_profile(3)


def tap(card: Any, amount: int = 1234, *, now: datetime = NOW, **kw: Any) -> TransactionResult:
    kw.setdefault("switch", "none")
    return perform_transaction(loopback(card), TerminalConfig.default(), amount, now=now, **kw)


def hostile(profile: CardProfile, *mutations: Mutation) -> MutatingCard:
    def mutate(command: bytes, response: bytes) -> bytes:
        for m in mutations:
            response = m(command, response)
        return response
    return MutatingCard(HceCard(profile), mutate)


def _is_application_select(command: bytes) -> bool:
    return command[1] == 0xA4 and b"PAY.SYS" not in command


def append_to(template: int, *objs: Tlv, where: str) -> Mutation:
    """Append ``objs`` inside the first ``template`` of the SELECT AID answer (``where`` =
    "fci") or of the answers to the INS named by ``where`` ("gpo", "record", ...)."""
    ins = {"gpo": 0xA8, "record": 0xB2, "get data": 0xCA}.get(where)

    def walk(tlvs: list[Tlv], done: list[bool]) -> list[Tlv]:
        out = []
        for t in tlvs:
            if t.children is not None:
                kids = walk(list(t.children), done)
                if t.tag == template and not done[0]:
                    kids += list(objs)
                    done[0] = True
                t = Tlv.template(t.tag, kids)
            out.append(t)
        return out

    def mutate(command: bytes, response: bytes) -> bytes:
        if response[-2:] != b"\x90\x00":
            return response
        if (where == "fci" and _is_application_select(command)) or command[1] == ins:
            done = [False]
            data = b"".join(t.encode() for t in walk(decode(response[:-2]), done))
            return data + response[-2:]
        return response
    return mutate


def replace_bytes(ins: int, old: bytes, new: bytes) -> Mutation:
    def mutate(command: bytes, response: bytes) -> bytes:
        if command[1] != ins and not (ins == 0xA4 and _is_application_select(command)):
            return response
        return response.replace(old, new)
    return mutate


def _other_pan(pan: str) -> str:
    body = pan[:6] + "".join(str((int(d) + 3) % 10) for d in pan[6:-1])
    return body + luhn_check_digit(body)


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))


# --- 1. an unsigned copy never overrides the signed one (Book 3, 10.2) -----------------------


def test_cda_card_not_yet_effective_is_not_approved_offline() -> None:
    """The reference tap: the signed record says 5F25 251101; on 2025-10-01 the application
    is not yet effective and the card is not approved offline."""
    result = tap(HceCard(mastercard()), now=NOT_YET_EFFECTIVE_DAY)
    assert is_set(result.tvr, TVR.NOT_YET_EFFECTIVE)
    assert result.outcome != Outcome.APPROVED


@pytest.mark.parametrize("where", ["fci", "gpo"])
@pytest.mark.parametrize(("tag", "value"), [
    (0x5F25, "200101"),  # effective long ago
    (0x5F24, "301231"),  # far from expired
    (0x8E, "000000000000000042031F03"),  # another CVM list
])
def test_an_unsigned_copy_of_a_signed_data_object_ends_the_transaction(
        where: str, tag: int, value: str) -> None:
    """Book 3, 10.2: redundant data objects are not permitted. Without the rule the FCI or
    GPO copy of 5F25 was kept (first one wins) and the tap was APPROVED offline with CDA ok
    and TVR 0000000000."""
    template = 0xA5 if where == "fci" else 0x77
    card = hostile(mastercard(), append_to(template, Tlv.primitive(tag, bytes.fromhex(value)),
                                           where=where))
    result = tap(card, now=NOT_YET_EFFECTIVE_DAY)
    assert result.outcome == Outcome.END_APPLICATION
    assert result.final_outcome == Outcome.END_APPLICATION
    assert f"redundant data object {tag:X}" in result.reason


def test_a_data_object_twice_in_one_record_ends_the_transaction() -> None:
    card = hostile(mastercard(), append_to(0x70, Tlv.primitive(0x5F25, bytes.fromhex("200101")),
                                           where="record"))
    result = tap(card, now=NOT_YET_EFFECTIVE_DAY)
    assert result.outcome == Outcome.END_APPLICATION
    assert "redundant data object 5F25" in result.reason


def test_get_data_that_contradicts_the_records_ends_the_transaction() -> None:
    """Book 3, 6.5.7: GET DATA retrieves an object that no record holds; a card that answers
    GET DATA with a tag it already gave (here the ATC in a GET DATA 9F13 answer) is
    redundant data too."""
    def lie(command: bytes, response: bytes) -> bytes:
        if command[1] == 0xCA and command[2:4] == b"\x9f\x13":
            return bytes.fromhex("9F13020003" "9F3602FFFF9000")
        return response
    result = tap(MutatingCard(emv_card(), lie), now=TODAY)
    assert result.outcome == Outcome.END_APPLICATION
    assert "9F13" in result.reason


# --- 2. the track 2 PAN is the certified PAN (Book 2, 6.4) -----------------------------------


def _track2_with_pan(new_pan: str) -> Mutation:
    def mutate(command: bytes, response: bytes) -> bytes:
        if command[1] != 0xA8 or response[-2:] != b"\x90\x00":
            return response
        top = decode(response[:-2])[0]
        kids = []
        for t in top.children or ():
            if t.tag == 0x57:
                rest = t.value.hex().upper().split("D", 1)[1]
                t = Tlv.primitive(0x57, bytes.fromhex(f"{new_pan}D{rest}"))
            kids.append(t)
        return Tlv.template(0x77, kids).encode() + response[-2:]
    return mutate


def test_track2_pan_other_than_the_certified_pan_is_not_approved() -> None:
    """qVSDC: 57 comes unsigned in the GPO answer. Without the binding the tap was APPROVED
    with fDDA ok and the terminal reported (and would send online) the other PAN."""
    other = _other_pan(visa().pan)
    result = tap(hostile(visa(), _track2_with_pan(other)))
    assert result.outcome == Outcome.END_APPLICATION
    assert result.final_outcome != Outcome.APPROVED
    assert "track 2" in result.reason.lower() and "5A" in result.reason


def test_track2_pan_mismatch_never_goes_online() -> None:
    host = Host("00")
    other = _other_pan(quickpass().pan)
    result = tap(hostile(quickpass(), _track2_with_pan(other)), 15000, authorise=host)
    assert host.requests == []
    assert result.final_outcome == Outcome.END_APPLICATION


# --- 3. the ATC is the one the signature covers (C-3 / C-7 fDDA; Book 2, 6.6.2) --------------


def _gpo_atc(delta: int) -> Mutation:
    def mutate(command: bytes, response: bytes) -> bytes:
        if command[1] != 0xA8 or response[-2:] != b"\x90\x00":
            return response
        top = decode(response[:-2])[0]
        kids = [Tlv.primitive(0x9F36, ((int.from_bytes(t.value, "big") + delta) % 65536)
                              .to_bytes(2, "big")) if t.tag == 0x9F36 else t
                for t in top.children or ()]
        return Tlv.template(0x77, kids).encode() + response[-2:]
    return mutate


@pytest.mark.parametrize("profile", [visa, quickpass], ids=["qVSDC", "qPBOC"])
def test_atc_other_than_the_signed_icc_dynamic_number_fails_fdda(
        profile: Callable[[], CardProfile]) -> None:
    """fDDA signs the ICC Dynamic Number, which on these kernels is the ATC; a 9F36 rolled
    back in the unsigned GPO answer was APPROVED offline with fDDA ok."""
    result = tap(hostile(profile(), _gpo_atc(-1)))
    assert result.outcome != Outcome.APPROVED
    assert result.final_outcome != Outcome.APPROVED
    assert is_set(result.tvr, TVR.DDA_FAILED)
    assert "ATC" in result.oda_result


def test_get_data_atc_other_than_the_cda_signed_atc_declines() -> None:
    """Velocity checking (Book 3, 10.6.3) reads the ATC with GET DATA (unsigned); the ATC of
    the GENERATE AC answer is covered by the CDA transaction data hash (Book 2, 6.6.2). A card
    that rolls its GET DATA ATC back to stay within its offline limits was approved."""
    card = MutatingCard(emv_card(behaviour=CardBehaviour(atc=9, last_online_atc=3)),
                        on_ins(0xCA, lambda d: d.replace(bytes.fromhex("9F36020009"),
                                                         bytes.fromhex("9F36020004"))))
    result = tap(card, now=TODAY)
    assert result.outcome == Outcome.DECLINED
    assert is_set(result.tvr, TVR.CDA_FAILED)
    assert "ATC" in result.reason


def test_ctq_other_than_the_signed_ctq_fails_fdda() -> None:
    """The card asks for online PIN on its TC (CTQ 8840, also inside the signed 9F69); a CTQ
    rewritten to 2840 in the unsigned GPO answer was APPROVED offline with fDDA ok."""
    profile = quickpass()
    app = replace(profile.applications[0], ctq=bytes.fromhex("8840"))
    card = MutatingCard(HceCard(replace(profile, applications=(app,))),
                        set_tag(0xA8, 0x9F6C, bytes.fromhex("2840")))
    result = tap(card)
    assert result.final_outcome != Outcome.APPROVED
    assert is_set(result.tvr, TVR.DDA_FAILED)
    assert "CTQ" in result.oda_result


# --- 4. the quick path checks redundancy too -------------------------------------------------


def test_pan_sequence_number_in_gpo_and_record_must_be_the_same_value() -> None:
    """5F34 may come in the GPO answer and the record (C-3 / C-7); another value is a
    conflict."""
    assert tap(HceCard(visa())).outcome == Outcome.APPROVED
    card = hostile(visa(), set_tag(0xA8, 0x5F34, b"\x07"))
    result = tap(card)
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == ("redundant data object 5F34 in record SFI 1/1, already in GPO "
                             "answer with another value")


@pytest.mark.parametrize("tag", [0x9F26, 0x57, 0x82, 0x9F6C])
@pytest.mark.parametrize("profile", [visa, quickpass], ids=["qVSDC", "qPBOC"])
def test_quick_path_gpo_answer_with_a_duplicated_tlv_ends_the_transaction(
        profile: Callable[[], CardProfile], tag: int) -> None:
    def duplicate(command: bytes, response: bytes) -> bytes:
        if command[1] != 0xA8 or response[-2:] != b"\x90\x00":
            return response
        top = decode(response[:-2])[0]
        kids = list(top.children or ())
        kids += [t for t in kids if t.tag == tag]
        return Tlv.template(0x77, kids).encode() + response[-2:]
    result = tap(hostile(profile(), duplicate))
    assert result.outcome == Outcome.END_APPLICATION
    assert f"redundant data object {tag:X}" in result.reason


# --- 5. DOLs whose data no command can carry (Book 3, 5.4) -----------------------------------


def test_pdol_entry_with_a_long_form_length_is_a_card_error() -> None:
    """PDOL 9A 83 instead of 9A 03: the data would not fit GET PROCESSING OPTIONS."""
    card = hostile(quickpass(), replace_bytes(0xA4, bytes.fromhex("9A039C01"),
                                              bytes.fromhex("9A839C01")))
    result = tap(card)
    assert result.outcome == Outcome.END_APPLICATION
    assert not result.reason.startswith("internal error")
    assert "PDOL" in result.reason


def test_cdol1_entry_with_a_long_form_length_is_a_card_error() -> None:
    card = hostile(mastercard(), replace_bytes(0xB2, bytes.fromhex("9F1A0295"),
                                               bytes.fromhex("9F1A8295")))
    result = tap(card)
    assert result.outcome == Outcome.END_APPLICATION
    assert not result.reason.startswith("internal error")
    assert "CDOL" in result.reason


# --- 6. the record never shows the PAN, however malformed the answer ----------------------


def _length_plus_one(ins: int) -> Mutation:
    def mutate(command: bytes, response: bytes) -> bytes:
        if command[1] != ins or response[-2:] != b"\x90\x00" or len(response) < 4:
            return response
        data = bytearray(response[:-2])
        data[1] += 1
        return bytes(data) + response[-2:]
    return mutate


def _truncated(ins: int) -> Mutation:
    def mutate(command: bytes, response: bytes) -> bytes:
        if command[1] != ins or response[-2:] != b"\x90\x00":
            return response
        return response[:-3] + response[-2:]
    return mutate


def _clear_pan_in(result: TransactionResult, pan: str) -> list[str]:
    record = json.dumps(result.to_json())
    return [where for where, needle in (("PAN", pan), ("PAN (F-padded)", pan + "F"))
            if needle in record.upper()]


@pytest.mark.parametrize("mutation", [_length_plus_one(0xA8), _truncated(0xA8)],
                         ids=["GPO length one too long", "GPO truncated"])
@pytest.mark.parametrize("profile", [visa, quickpass], ids=["qVSDC", "qPBOC"])
def test_clear_pan_never_in_the_record_of_an_unparsable_gpo_answer(
        profile: Callable[[], CardProfile], mutation: Mutation) -> None:
    result = tap(hostile(profile(), mutation))
    assert result.outcome == Outcome.END_APPLICATION
    assert "not BER-TLV" in result.reason
    assert _clear_pan_in(result, profile().pan) == []
    track2_tail = _track2_tail(profile())
    assert track2_tail not in json.dumps(result.to_json()).upper()


def _track2_tail(profile: CardProfile) -> str:
    """The track 2 discretionary part (after the expiry and service code)."""
    t2 = profile.applications[0].track2.hex().upper()
    return t2.split("D", 1)[1][7:].rstrip("F")


@pytest.mark.parametrize("mutation", [_length_plus_one(0xB2), _truncated(0xB2)],
                         ids=["record length one too long", "record truncated"])
def test_clear_pan_never_in_the_record_of_an_unparsable_record(mutation: Mutation) -> None:
    """Mastercard: 57 and 5A come only in record 1 - the PAN was never seen in a well-formed
    answer before."""
    result = tap(hostile(mastercard(), mutation))
    assert result.outcome == Outcome.END_APPLICATION
    assert _clear_pan_in(result, mastercard().pan) == []
    assert _track2_tail(mastercard()) not in json.dumps(result.to_json()).upper()


def test_clear_pan_record_option_keeps_the_pan() -> None:
    """The masking is the default, not a loss: --clear-pan still shows it."""
    result = tap(hostile(visa(), _length_plus_one(0xA8)), clear_pan=True)
    assert visa().pan in json.dumps(result.to_json())
