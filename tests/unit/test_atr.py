"""ATR decoding (ISO/IEC 7816-3 8.2; PC/SC Part 3 3.1.3.2.3 contactless ATRs)."""

from __future__ import annotations

from emvtap.atr import decode_atr
from hce_card.card import contactless_atr
from terminal.transport.nfc import atr_from_ats


def test_mifare_classic_1k_storage_card_is_named_with_its_standard() -> None:
    info = decode_atr(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A"))
    assert info.kind == "contactless storage card"
    assert info.card_name == "MIFARE Classic 1K"
    assert info.standard == "ISO/IEC 14443 A, part 3"
    assert info.protocols == [0, 1] and info.tck_ok is True and not info.problems


def test_felica_storage_card() -> None:
    atr = bytes.fromhex("3B8F8001804F0CA00000030611F01100000000")
    tck = 0
    for b in atr[1:]:
        tck ^= b
    info = decode_atr(atr + bytes([tck]))
    assert info.card_name == "FeliCa 212K" and info.standard == "FeliCa"


def test_iso14443_4_card_atr_from_ats_keeps_the_historical_bytes() -> None:
    atr = atr_from_ats(bytes.fromhex("0578807002"))  # an ATS without historical bytes
    info = decode_atr(atr)
    assert info.kind == "contactless ISO 14443-4 card" and info.historical == b""
    phone = decode_atr(contactless_atr(bytes.fromhex("8073C021C057597562694B6579")))
    assert phone.tck_ok and phone.details[0] == "historical bytes: COMPACT-TLV objects"
    assert "card capabilities: C021C0" in phone.details


def test_contact_card_t0_with_interface_bytes() -> None:
    info = decode_atr(bytes.fromhex("3B6800000073C84013009000"))
    assert info.kind == "contact card" and info.protocols == [0]
    assert info.convention == "direct" and info.tck_ok is None
    assert info.historical == bytes.fromhex("0073C84013009000")


def test_broken_atrs_are_described_not_raised() -> None:
    assert "at least 2 bytes" in decode_atr(b"\x3b").problems[0]
    short = decode_atr(bytes.fromhex("3B8F8001804F"))
    assert any("historical bytes" in p for p in short.problems)
    bad_tck = decode_atr(bytes.fromhex("3B8F8001804F0CA000000306030001000000006B"))
    assert bad_tck.tck_ok is False and "TCK is wrong" in bad_tck.problems
    assert decode_atr(bytes.fromhex("1234")).problems[0].startswith("TS 12")
