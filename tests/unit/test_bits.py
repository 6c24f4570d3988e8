"""Bit positions of TTQ, CTQ, AIP, TVR, TSI and CID against the specs' tables
(Book C-3 / C-7 TTQ and CTQ; Book 3 Annex C5 TVR, C6 TSI; Book 3 Annex C1 AIP, 6.5.5.4
CID). Bits are written as the specs write them: byte n, bit b8..b1."""

from __future__ import annotations

import pytest

from emvtap.bits import AIP, CID, CTQ, TSI, TTQ, TVR, Bit, is_set, names, set_bits


def _mask(b: int) -> int:
    """Spec bit b8..b1 → mask 0x80..0x01."""
    return 1 << (b - 1)


def _rows(table: type, rows: list[tuple[str, int, int]]) -> list:
    return [pytest.param(table, attr, byte, bit, id=f"{table.__name__}.{attr}")
            for attr, byte, bit in rows]


# Book C-3 / C-7, TTQ 9F66 (Visa column; qPBOC names the same bits the same way)
TTQ_ROWS = [
    ("MSD_SUPPORTED", 1, 8),
    ("FULL_PBOC_SUPPORTED", 1, 7),  # qPBOC: contactless full PBOC supported
    ("QPBOC_SUPPORTED", 1, 6),  # qVSDC / qPBOC supported
    ("CONTACT_SUPPORTED", 1, 5),
    ("OFFLINE_ONLY_READER", 1, 4),
    ("ONLINE_PIN_SUPPORTED", 1, 3),
    ("SIGNATURE_SUPPORTED", 1, 2),
    ("ODA_FOR_ONLINE_SUPPORTED", 1, 1),
    ("ONLINE_CRYPTOGRAM_REQUIRED", 2, 8),
    ("CVM_REQUIRED", 2, 7),
    ("CONTACT_OFFLINE_PIN_SUPPORTED", 2, 6),
    ("ISSUER_UPDATE_SUPPORTED", 3, 8),
    ("CDCVM_SUPPORTED", 3, 7),
    ("FDDA_V01_SUPPORTED", 4, 8),
]

# Book C-3 / C-7, CTQ 9F6C
CTQ_ROWS = [
    ("ONLINE_PIN_REQUIRED", 1, 8),
    ("SIGNATURE_REQUIRED", 1, 7),
    ("GO_ONLINE_IF_ODA_FAILS", 1, 6),
    ("SWITCH_INTERFACE_IF_ODA_FAILS", 1, 5),
    ("GO_ONLINE_IF_EXPIRED", 1, 4),
    ("SWITCH_INTERFACE_FOR_CASH", 1, 3),
    ("SWITCH_INTERFACE_FOR_CASHBACK", 1, 2),
    ("CDCVM_PERFORMED", 2, 8),
    ("ISSUER_UPDATE_SUPPORTED", 2, 7),
]

# Book 3 Annex C5, TVR 95
TVR_ROWS = [
    ("ODA_NOT_PERFORMED", 1, 8),
    ("SDA_FAILED", 1, 7),
    ("ICC_DATA_MISSING", 1, 6),
    ("CARD_ON_EXCEPTION_FILE", 1, 5),
    ("DDA_FAILED", 1, 4),
    ("CDA_FAILED", 1, 3),
    ("SDA_SELECTED", 1, 2),
    ("VERSIONS_DIFFER", 2, 8),
    ("EXPIRED_APPLICATION", 2, 7),
    ("NOT_YET_EFFECTIVE", 2, 6),
    ("SERVICE_NOT_ALLOWED", 2, 5),
    ("NEW_CARD", 2, 4),
    ("CARDHOLDER_VERIFICATION_FAILED", 3, 8),
    ("UNRECOGNISED_CVM", 3, 7),
    ("PIN_TRY_LIMIT_EXCEEDED", 3, 6),
    ("PIN_PAD_NOT_PRESENT", 3, 5),
    ("PIN_NOT_ENTERED", 3, 4),
    ("ONLINE_PIN_ENTERED", 3, 3),
    ("EXCEEDS_FLOOR_LIMIT", 4, 8),
    ("LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED", 4, 7),
    ("UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED", 4, 6),
    ("RANDOMLY_SELECTED_ONLINE", 4, 5),
    ("MERCHANT_FORCED_ONLINE", 4, 4),
    ("DEFAULT_TDOL_USED", 5, 8),
    ("ISSUER_AUTHENTICATION_FAILED", 5, 7),
    ("SCRIPT_FAILED_BEFORE_FINAL_GENAC", 5, 6),
    ("SCRIPT_FAILED_AFTER_FINAL_GENAC", 5, 5),
]

# Book 3 Annex C6, TSI 9B
TSI_ROWS = [
    ("ODA_PERFORMED", 1, 8),
    ("CARDHOLDER_VERIFICATION_PERFORMED", 1, 7),
    ("CARD_RISK_MANAGEMENT_PERFORMED", 1, 6),
    ("ISSUER_AUTHENTICATION_PERFORMED", 1, 5),
    ("TERMINAL_RISK_MANAGEMENT_PERFORMED", 1, 4),
    ("SCRIPT_PROCESSING_PERFORMED", 1, 3),
]

# Book 3 Annex C1, AIP 82 (b2 from Kernel 2, Book C-2 "on-device cardholder verification")
AIP_ROWS = [
    ("SDA_SUPPORTED", 1, 7),
    ("DDA_SUPPORTED", 1, 6),
    ("CARDHOLDER_VERIFICATION_SUPPORTED", 1, 5),
    ("TERMINAL_RISK_MANAGEMENT", 1, 4),
    ("ISSUER_AUTHENTICATION_SUPPORTED", 1, 3),
    ("ON_DEVICE_CVM_SUPPORTED", 1, 2),
    ("CDA_SUPPORTED", 1, 1),
]

TABLES = [(TTQ, TTQ_ROWS, 4), (CTQ, CTQ_ROWS, 2), (TVR, TVR_ROWS, 5), (TSI, TSI_ROWS, 2),
          (AIP, AIP_ROWS, 2)]
ALL_ROWS = [row for table, rows, _ in TABLES for row in _rows(table, rows)]


@pytest.mark.parametrize(("table", "attr", "byte", "bit"), ALL_ROWS)
def test_bit_position_matches_the_spec_table(table: type, attr: str, byte: int, bit: int
                                             ) -> None:
    b = getattr(table, attr)
    assert isinstance(b, Bit)
    assert (b.byte, b.mask) == (byte, _mask(bit))


@pytest.mark.parametrize(("table", "attr", "byte", "bit"), ALL_ROWS)
def test_setting_the_bit_sets_exactly_that_bit(table: type, attr: str, byte: int, bit: int
                                               ) -> None:
    size = next(n for t, _, n in TABLES if t is table)
    value = set_bits(bytes(size), getattr(table, attr))
    expected = bytearray(size)
    expected[byte - 1] = _mask(bit)
    assert value == bytes(expected)
    assert names(value, table) == [getattr(table, attr).name]


@pytest.mark.parametrize(("table", "rows", "size"), TABLES, ids=[t.__name__ for t, _, _ in TABLES])
def test_every_bit_of_the_table_is_in_the_spec_and_none_is_repeated(
        table: type, rows: list, size: int) -> None:
    bits = {k: v for k, v in vars(table).items() if isinstance(v, Bit)}
    assert set(bits) == {attr for attr, _, _ in rows}
    positions = [(b.byte, b.mask) for b in bits.values()]
    assert len(set(positions)) == len(positions)
    assert all(1 <= b.byte <= size for b in bits.values())


def test_ttq_36004000_is_qvsdc_contact_online_pin_signature_cdcvm() -> None:
    # docs/emv-notes.md: "36 00 40 00" is qVSDC, contact EMV (b5), online PIN, signature
    # and CDCVM supported.
    ttq = bytes.fromhex("36004000")
    assert names(ttq, TTQ) == [TTQ.QPBOC_SUPPORTED.name, TTQ.CONTACT_SUPPORTED.name,
                               TTQ.ONLINE_PIN_SUPPORTED.name, TTQ.SIGNATURE_SUPPORTED.name,
                               TTQ.CDCVM_SUPPORTED.name]
    assert set_bits(bytes(4), TTQ.QPBOC_SUPPORTED, TTQ.CONTACT_SUPPORTED,
                    TTQ.ONLINE_PIN_SUPPORTED, TTQ.SIGNATURE_SUPPORTED,
                    TTQ.CDCVM_SUPPORTED) == ttq


def test_apple_pay_trace_ttq_33804000() -> None:
    # trace 01: TTQ 33804000 - qVSDC, contact, ODA for online, signature, online cryptogram
    # required, CDCVM supported
    ttq = bytes.fromhex("33804000")
    assert is_set(ttq, TTQ.QPBOC_SUPPORTED) and is_set(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED)
    assert is_set(ttq, TTQ.CDCVM_SUPPORTED) and not is_set(ttq, TTQ.ONLINE_PIN_SUPPORTED)


def test_aip_5c00_is_sda_and_3900_is_dda_with_cda() -> None:
    # Book 3 10.3: the vectors' static data end with AIP 5C00 (SDA) and 3900 (DDA)
    assert is_set(bytes.fromhex("5C00"), AIP.SDA_SUPPORTED)
    assert not is_set(bytes.fromhex("5C00"), AIP.DDA_SUPPORTED)
    assert is_set(bytes.fromhex("3900"), AIP.DDA_SUPPORTED)
    assert is_set(bytes.fromhex("3900"), AIP.CDA_SUPPORTED)


def test_is_set_on_a_value_too_short_is_false() -> None:
    assert not is_set(b"\xff", TVR.DEFAULT_TDOL_USED)
    assert not is_set(b"", TTQ.MSD_SUPPORTED)


def test_set_bits_keeps_bits_already_set() -> None:
    tvr = set_bits(bytes.fromhex("0000008000"), TVR.ODA_NOT_PERFORMED)
    assert tvr == bytes.fromhex("8000008000")
    assert names(tvr, TVR) == [TVR.ODA_NOT_PERFORMED.name, TVR.EXCEEDS_FLOOR_LIMIT.name]


@pytest.mark.parametrize(
    ("cid", "kind"),
    [(0x00, "AAC"), (0x40, "TC"), (0x80, "ARQC"), (0xC0, "AAR"),
     (0x88, "ARQC"),  # b4 advice required does not change the type
     (0x41, "TC"), (0x03, "AAC")],  # b3-b1 reason code neither
)
def test_cid_cryptogram_type_is_b8_b7(cid: int, kind: str) -> None:
    assert CID.type_of(cid) == kind
