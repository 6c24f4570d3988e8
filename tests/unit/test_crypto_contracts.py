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
    with pytest.raises(KeyError, match=re.escape("tag 9F10 is missing for the PBOC AC data")):
        pboc_arqc_data(values)
    with pytest.raises(KeyError, match=re.escape("tag 9F37 is missing for the PBOC AC data")):
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
