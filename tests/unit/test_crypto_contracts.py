"""The input contracts of the core crypto functions, exactly: each refusal with its message,
each length limit on both sides of the boundary (EMV 4.4 Book 2 8.1, 8.2, 9.2, A1.3, A1.4;
ISO 9564-1 format 0). Written from the mutation run (docs/mutation.md): a changed message, a
`<` for a `<=` or an `and` for an `or` in these checks must fail a test."""

from __future__ import annotations

import re

import pytest

from emvtap.cryptogram import (
    arpc_method_1,
    arpc_method_2,
    parse_pboc_iad,
    pboc_arqc_data,
    pboc_cvr,
    pboc_iad,
    script_mac,
    verify_arpc_method_1,
    verify_arpc_method_2,
    verify_script_mac,
)
from emvtap.keys import (
    derive_emv_common_session_key,
    derive_icc_master_key,
    derive_mastercard_session_key,
    derive_pboc_session_key,
    pan_digits,
    psn_digits,
)
from emvtap.pinblock import PinBlockError, encipher_pin_block, pin_from_block

K = bytes(range(16))
ARQC = bytes.fromhex("1122334455667788")


def _raises(exc: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# --- cryptogram ----------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "message"), [
    (lambda: arpc_method_1(K[:15], ARQC, b"00"),
     "key must be 16 bytes (double length DES), not 15"),
    (lambda: arpc_method_1(K, ARQC[:7], b"00"), "ARQC must be 8 bytes, not 7"),
    (lambda: arpc_method_1(K, ARQC, b"000"), "ARC must be 2 bytes, not 3"),
    (lambda: arpc_method_2(K, ARQC + b"9", bytes(4)), "ARQC must be 8 bytes, not 9"),
    (lambda: arpc_method_2(K, ARQC, bytes(3)), "CSU must be 4 bytes, not 3"),
    (lambda: arpc_method_2(K, ARQC, bytes(4), bytes(9)),
     "proprietary authentication data is 0-8 bytes, not 9"),
    (lambda: pboc_cvr(bytes(6)), "issuer application data of 6 bytes has no CVR"),
    (lambda: script_mac(K, bytes(4), bytes(2), ARQC, b""), "header with Lc must be 5 bytes, not 4"),
    (lambda: script_mac(K, bytes(5), bytes(3), ARQC, b""), "ATC must be 2 bytes, not 3"),
    (lambda: script_mac(K, bytes(5), bytes(2), ARQC[:7], b""),
     "application cryptogram must be 8 bytes, not 7"),
    (lambda: script_mac(K, bytes(5), bytes(2), ARQC, b"", 3),
     "script MAC length is 4 to 8 bytes, not 3"),
    (lambda: script_mac(K, bytes(5), bytes(2), ARQC, b"", 9),
     "script MAC length is 4 to 8 bytes, not 9"),
    (lambda: pboc_iad(b"\x01\x02", bytes.fromhex("03A00000")), "DKI is one byte"),
    (lambda: pboc_iad(1, bytes.fromhex("04A00000")),
     "PBOC CVR is 4 bytes starting with its length 03"),
    (lambda: pboc_iad(1, bytes.fromhex("03A000")),
     "PBOC CVR is 4 bytes starting with its length 03"),
    (lambda: pboc_iad(1, bytes.fromhex("03A00000"), 256), "algorithm ID is one byte"),
    (lambda: pboc_iad(1, bytes.fromhex("03A00000"), -1), "algorithm ID is one byte"),
    (lambda: pboc_iad(1, bytes.fromhex("03A00000"), 1, bytes(16)),
     "issuer discretionary data is at most 15 bytes"),
    (lambda: parse_pboc_iad(bytes(7)), "PBOC IAD of 7 bytes (at least 8)"),
    (lambda: parse_pboc_iad(bytes.fromhex("0601010300000001")),
     "PBOC IAD length byte is 06, expected 07"),
    (lambda: parse_pboc_iad(bytes.fromhex("0701010400000001")),
     "PBOC CVR length byte is 04, expected 03"),
    (lambda: parse_pboc_iad(bytes.fromhex("070101030000000102AA")),
     "IAD discretionary data says 2 bytes, 1 follow"),
])
def test_cryptogram_refusals_say_exactly_what_is_wrong(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with _raises(ValueError, message):
        call()


def test_pboc_arqc_data_names_the_missing_or_short_tag() -> None:
    values = {t: bytes(n) for t, n in ((0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5),
                                        (0x5F2A, 2), (0x9A, 3), (0x9C, 1), (0x9F37, 4),
                                        (0x82, 2), (0x9F36, 2))}
    with pytest.raises(KeyError, match=r"^'tag 9F10 is missing for the PBOC AC data'$"):
        pboc_arqc_data(values)
    with pytest.raises(KeyError, match=r"^'tag 9F37 is missing for the PBOC AC data'$"):
        pboc_arqc_data({t: v for t, v in values.items() if t != 0x9F37})
    with _raises(ValueError, "tag 9A is 2 bytes, PBOC AC data needs 3"):
        pboc_arqc_data(values | {0x9A: bytes(2)})
    iad = pboc_iad(1, bytes.fromhex("03A00000"))
    assert pboc_arqc_data(values | {0x9F10: iad}) == b"".join(values.values()) + iad[3:7]


def test_pboc_iad_layout_and_its_parse() -> None:
    iad = pboc_iad(0x11, bytes.fromhex("03A01020"), 4, b"\xAA\xBB")
    assert iad == bytes.fromhex("071101" "03A01020" "04" "02AABB")
    parsed = parse_pboc_iad(iad)
    assert (parsed.dki, parsed.cvn, parsed.cvr, parsed.algorithm, parsed.discretionary) == (
        0x11, 0x01, bytes.fromhex("03A01020"), 4, b"\xAA\xBB")
    assert pboc_iad(b"\x11", bytes.fromhex("03A01020")) == bytes.fromhex("07110103A0102001")
    assert pboc_iad(1, bytes.fromhex("03A01020"), 0, bytes(15))[-16:] == b"\x0f" + bytes(15)
    assert pboc_iad(1, bytes.fromhex("03A01020"), 0xFF)[-1] == 0xFF  # the largest algorithm ID
    assert parse_pboc_iad(bytes.fromhex("07110103A0102001")).discretionary == b""


def test_arpc_method_2_takes_0_to_8_bytes_of_proprietary_data() -> None:
    assert len(arpc_method_2(K, ARQC, bytes(4), bytes(8))) == 4
    assert arpc_method_2(K, ARQC, bytes(4), b"") != arpc_method_2(K, ARQC, bytes(4), b"\x00")


@pytest.mark.parametrize("length", [8, 9, 11])
def test_verify_arpc_method_1_needs_exactly_arpc_and_arc(length: int) -> None:
    good = arpc_method_1(K, ARQC, b"00") + b"00"
    assert verify_arpc_method_1(K, ARQC, good) is True
    data = (good + bytes(2))[:length]
    assert verify_arpc_method_1(K, ARQC, data) is False
    assert verify_arpc_method_1(K, ARQC[:7], good) is False
    assert verify_arpc_method_1(K, ARQC + b"\x00", good) is False


@pytest.mark.parametrize("proprietary", [b"", bytes(1), bytes(8)])
def test_verify_arpc_method_2_accepts_8_to_16_bytes(proprietary: bytes) -> None:
    csu = bytes.fromhex("00820000")
    data = arpc_method_2(K, ARQC, csu, proprietary) + csu + proprietary
    assert verify_arpc_method_2(K, ARQC, data) is True
    assert verify_arpc_method_2(K, ARQC[:7], data) is False
    assert verify_arpc_method_2(K, ARQC, data + bytes(17 - len(data))) is False
    assert verify_arpc_method_2(K, ARQC, data[:7]) is False


@pytest.mark.parametrize("length", [4, 5, 8])
def test_script_mac_lengths_4_to_8_verify_and_9_does_not(length: int) -> None:
    header, atc = bytes.fromhex("8418000008"), b"\x00\x01"
    mac = script_mac(K, header, atc, ARQC, b"\x01", length)
    assert len(mac) == length
    assert mac == script_mac(K, header, atc, ARQC, b"\x01", 8)[:length]
    assert verify_script_mac(K, header, atc, ARQC, b"\x01", mac) is True
    assert verify_script_mac(K, header, atc, ARQC, b"\x01", mac[:3]) is False
    assert verify_script_mac(K, header, atc, ARQC, b"\x01", mac + bytes(9 - len(mac))) is False


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "message"), [
    (lambda: pan_digits("12a4"), "PAN must be 1 to 19 decimal digits"),
    (lambda: pan_digits(""), "PAN must be 1 to 19 decimal digits"),
    (lambda: pan_digits("1" * 20), "PAN must be 1 to 19 decimal digits"),
    (lambda: psn_digits("1"), "PSN must be two decimal digits"),
    (lambda: psn_digits("0a"), "PSN must be two decimal digits"),
    (lambda: derive_icc_master_key(K[:8], "1234567890123456", "00"),
     "issuer master key must be a 16-byte (double length) DES key, not 8 bytes"),
    (lambda: derive_icc_master_key(K, "1234567890123456", "00", "C"),
     "ICC master key derivation option must be A or B, not 'C'"),
    (lambda: derive_pboc_session_key(K[:15], b"\x00\x01"),
     "ICC master key must be a 16-byte (double length) DES key, not 15 bytes"),
    (lambda: derive_pboc_session_key(K, b"\x01"), "ATC must be 2 bytes, not 1"),
    (lambda: derive_emv_common_session_key(K[:8], bytes(8)),
     "ICC master key must be a 16-byte (double length) DES key, not 8 bytes"),
    (lambda: derive_emv_common_session_key(K, bytes(7)),
     "diversification value R must be 8 bytes, not 7"),
    (lambda: derive_mastercard_session_key(K, b"\x00\x01", bytes(3)),
     "unpredictable number must be 4 bytes, not 3"),
])
def test_key_derivation_refusals_say_exactly_what_is_wrong(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with _raises(ValueError, message):
        call()


def test_pan_and_psn_digits_accept_the_card_encodings() -> None:
    assert pan_digits(bytes.fromhex("6250940000000019FF")) == "6250940000000019"
    assert pan_digits("1") == "1" and pan_digits("9" * 19) == "9" * 19
    assert (psn_digits(None), psn_digits(b"\x01"), psn_digits("07")) == ("00", "01", "07")


def test_option_b_on_a_short_pan_is_option_a() -> None:
    """Book 2 A1.4.2: option B applies to PANs over 16 digits only."""
    pan = "1234567890123456"
    assert derive_icc_master_key(K, pan, "01", "b") == derive_icc_master_key(K, pan, "01", "A")
    long_pan = "1234567890123456789"
    assert derive_icc_master_key(K, long_pan, "01") == derive_icc_master_key(K, long_pan, "01",
                                                                              "B")
    pan17 = "12345678901234567"  # 17 digits: option B by default
    assert derive_icc_master_key(K, pan17, "01") == derive_icc_master_key(K, pan17, "01", "B")
    assert derive_icc_master_key(K, pan17, "01") != derive_icc_master_key(K, pan17, "01", "A")
    assert derive_icc_master_key(K, long_pan, "01", "A") != derive_icc_master_key(
        K, long_pan, "01", "B")


# --- ISO 9564 format 0 ---------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", ""])
def test_a_pin_is_4_to_12_digits(pin: str) -> None:
    with _raises(ValueError, "a PIN is 4 to 12 digits"):
        encipher_pin_block(K, pin, "4451234567890129")


@pytest.mark.parametrize("pin", ["1234", "123456789012"])
def test_pins_of_4_and_12_digits_round_trip(pin: str) -> None:
    block = encipher_pin_block(K, pin, "4451234567890129")
    assert pin_from_block(K, block, "4451234567890129") == pin


def test_a_pin_block_is_8_bytes() -> None:
    with _raises(PinBlockError, "a PIN block is 8 bytes"):
        pin_from_block(K, bytes(7), "4451234567890129")


# --- the CVN table ---------------------------------------------------------------------------


def test_a_vis_iad_shorter_than_its_own_length_byte_is_no_vis_layout() -> None:
    """VIS IAD byte 1 is the length of the VIS part: 07 needs at least 8 bytes."""
    from emvtap.cryptogram_versions import IAD_LAYOUTS, detect_iad_layout

    seven = bytes.fromhex("07010103A00000")  # says 07, carries 6 after it
    assert IAD_LAYOUTS["vis"].matches(seven) is False
    assert detect_iad_layout(seven) is None
    assert detect_iad_layout(seven + b"\x01").name == "vis"


@pytest.mark.parametrize(("cvn", "mchip"), [(0x10, True), (0x11, True), (0x17, True),
                                             (0x18, False), (0x20, False), (0x0F, False)])
def test_the_mchip_layout_takes_cvn_10_to_17(cvn: int, mchip: bool) -> None:
    from emvtap.cryptogram_versions import IAD_LAYOUTS

    iad = bytes([0x01, cvn]) + bytes(16)
    assert IAD_LAYOUTS["mchip"].matches(iad) is mchip
    assert IAD_LAYOUTS["mchip"].matches(iad + b"\x00") is False


def test_an_ambiguous_iad_names_both_readings() -> None:
    """18 bytes reading as PBOC CVN 01 (vis) and as an M/Chip CVN 10 (mchip) at once."""
    from emvtap.cryptogram_versions import IadError, detect_iad_layout

    iad = bytes.fromhex("07100103A00000010A") + bytes(9)
    assert len(iad) == 18
    with _raises(IadError, "9F10 is ambiguous: it reads as vis CVN 01, mchip CVN 10"):
        detect_iad_layout(iad)
    assert detect_iad_layout(iad, expected_cvn=0x01).name == "vis"
    assert detect_iad_layout(iad, expected_cvn=0x10).name == "mchip"


def test_the_ac_input_list_zero_fills_and_cuts_each_tag() -> None:
    from emvtap.cryptogram_versions import ac_input_list

    data = ac_input_list({0x9F02: b"\x01", 0x9F03: bytes(7) + b"\xff"})
    assert data[:12] == b"\x01" + bytes(5) + bytes(6)
    assert len(data) == 6 + 6 + 2 + 5 + 2 + 3 + 1 + 4 + 2 + 2


@pytest.mark.parametrize("cvn", [0x01, 0x12, 0x10])
def test_a_wrong_arpc_is_not_valid_and_not_approved(cvn: int) -> None:
    from emvtap.cryptogram_versions import IssuerResponse, cryptogram_version

    row = cryptogram_version(cvn)
    good = row.issuer_authentication(K, ARQC, b"00")
    bad = bytes([good[0] ^ 1]) + good[1:]
    assert row.check_arpc(K, ARQC, bad) == IssuerResponse(False, False, False, False)
    assert row.check_arpc(K, ARQC, good) == IssuerResponse(True, True, False, False)


@pytest.mark.parametrize(("csu2", "expected"), [
    (0x80, (True, True, False, False)), (0x40, (True, False, True, False)),
    (0x20, (True, False, False, True)), (0xE0, (True, True, True, True)),
    (0x00, (True, False, False, False))])
def test_the_csu_bits_reach_the_card(csu2: int, expected: tuple[bool, ...]) -> None:
    """Book 2 8.2.2 / VIS: CSU byte 2 b8 approved, b7 card block, b6 application block."""
    from emvtap.cryptogram_versions import IssuerResponse, cryptogram_version

    row = cryptogram_version(0x12)
    csu = bytes([0x00, csu2, 0x00, 0x00])
    data = arpc_method_2(K, ARQC, csu) + csu
    assert row.check_arpc(K, ARQC, data) == IssuerResponse(*expected)


def test_an_unknown_cvn_is_named_with_the_known_ones() -> None:
    from emvtap.cryptogram_versions import cryptogram_version, version_in_layout

    with _raises(ValueError, "CVN 22 is not implemented (known: 01, 12, 10, 11)"):
        cryptogram_version(0x22)
    assert version_in_layout("vis", 0x10) is None
    assert version_in_layout("mchip", 0x10).cvn == 0x10
    assert version_in_layout(None, None) is None


# --- more of ISO 9564 and option B -----------------------------------------------------------


def test_a_pan_shorter_than_13_digits_is_zero_filled_in_the_pan_field() -> None:
    """ISO 9564-1 format 0: fewer than 12 digits before the check digit are left-padded with
    zeros: PAN 12345678903 → PAN field 0000 0012 3456 7890."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    block = encipher_pin_block(K, "1234", "12345678903")
    dec = Cipher(TripleDES(K + K[:8]), modes.ECB()).decryptor()
    clear = dec.update(block) + dec.finalize()
    pan_field = bytes.fromhex("0000001234567890")
    assert bytes(a ^ b for a, b in zip(clear, pan_field, strict=True)).hex().upper() == (
        "041234FFFFFFFFFF")
    assert pin_from_block(K, block, "12345678903") == "1234"


@pytest.mark.parametrize(("clear", "message"), [
    ("041234FFFFFFFFF0", "PIN digits or padding malformed"),
    ("0412340FFFFFFFFF", "PIN digits or padding malformed"),  # the first pad nibble
    ("0412A4FFFFFFFFFF", "PIN digits or padding malformed"),
    ("141234FFFFFFFFFF", "not an ISO 9564 format 0 block"),
    ("031234FFFFFFFFFF", "not an ISO 9564 format 0 block"),
    ("0D1234FFFFFFFFFF", "not an ISO 9564 format 0 block"),
])
def test_malformed_format_0_blocks_are_refused_with_the_reason(clear: str, message: str) -> None:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    pan = "4451234567890129"
    pan_field = bytes.fromhex("0000123456789012")
    plain = bytes(a ^ b for a, b in zip(bytes.fromhex(clear), pan_field, strict=True))
    enc = Cipher(TripleDES(K + K[:8]), modes.ECB()).encryptor()
    with _raises(PinBlockError, message):
        pin_from_block(K, enc.update(plain) + enc.finalize(), pan)


def _option_b_y_from_the_book(pan: str, psn: str) -> bytes:
    """Book 2 A1.4.2 written out again here: SHA-1 of PAN ‖ PSN (odd count: a leading 0),
    decimal digits of the hex digest left to right, then A-F as 0-5, the first 16."""
    import hashlib

    x = pan + psn
    x = "0" + x if len(x) % 2 else x
    digest = hashlib.sha1(bytes.fromhex(x)).hexdigest().upper()
    decimal = [c for c in digest if c in "0123456789"]
    letters = [str(ord(c) - ord("A")) for c in digest if c in "ABCDEF"]
    return bytes.fromhex("".join((decimal + letters)[:16]))


def test_option_b_decimalises_with_the_letters_when_the_digest_has_few_digits() -> None:
    """A 19-digit PAN whose SHA-1 has fewer than 16 decimal digits exercises the A-F step."""
    import hashlib

    from emvtap.des import adjust_parity, des3_encrypt

    pan = next(p for p in (f"5{n:018d}" for n in range(200000))
               if sum(c.isdigit() for c in hashlib.sha1(bytes.fromhex("0" + p + "00"))
                      .hexdigest()) < 16)
    y = _option_b_y_from_the_book(pan, "00")
    expected = adjust_parity(des3_encrypt(K, y + bytes(b ^ 0xFF for b in y)))
    assert derive_icc_master_key(K, pan, "00", "B") == expected
