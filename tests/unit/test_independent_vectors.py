"""Crypto and wire seams checked against values someone else published (tests/data/vectors/
independent.json; tests/data/README.md says where each came from), so that no rule is guarded
only by our card agreeing with our switch.

- ISO 9564-1 PIN blocks, format 0 (PAN field = 12 rightmost PAN digits without the check
  digit) and format 1 (no PAN; the issuer side here accepts format 0 only);
- the complete Visa CVN 18 cryptogram (EMV 4.4 Book 2 A1.4 ICC MK, A1.3 common session key,
  8.1 ARQC over the list ‖ the whole IAD, 8.2.2 ARPC method 2);
- the issuer script MAC with and without command data (Book 2 9.2.1);
- ISO 8583 messages captured on other links in the framing and dialect of emvtap/iso8583.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from data_files import independent_vectors

from emvtap import tlv
from emvtap.cryptogram import arpc_method_2, generate_ac, script_mac, verify_script_mac
from emvtap.cryptogram_versions import IssuerResponse, cryptogram_version
from emvtap.des import retail_mac
from emvtap.iso8583 import MessageFormatError, decode_message, unframe
from emvtap.keys import derive_emv_common_session_key, derive_icc_master_key
from emvtap.pinblock import PinBlockError, encipher_pin_block, pin_from_block
from switch.arqc import parse_icc_data, verify_arqc


def _vectors(name: str) -> Any:
    return independent_vectors()[name]


def _pin(vector_id: str) -> dict[str, str]:
    return next(v for v in _vectors("pin_blocks") if v["id"] == vector_id)


def _tdes(key: bytes, block: bytes, decrypt: bool = False) -> bytes:
    """3DES-ECB from the cryptography package directly (not emvtap.des), for an independent
    encipherment of a published clear block."""
    cipher = Cipher(TripleDES(key + key[:8]), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(block) + op.finalize()


def _kcv(key: bytes) -> str:
    """Key check value: the leftmost 2 bytes of 3DES_key(00…00)."""
    return _tdes(key, bytes(8))[:2].hex().upper()


# --- ISO 9564-1 PIN blocks -------------------------------------------------------------------

KEY = bytes.fromhex(_pin("devindtools_iso0_enciphered")["key"])


def test_format_0_pin_block_enciphers_to_the_published_block() -> None:
    v = _pin("devindtools_iso0_enciphered")
    block = encipher_pin_block(KEY, v["pin"], v["pan"])
    assert block.hex().upper() == v["enciphered_block"]
    assert _tdes(KEY, block, decrypt=True).hex().upper() == v["clear_block"]
    assert pin_from_block(KEY, bytes.fromhex(v["enciphered_block"]), v["pan"]) == v["pin"]


@pytest.mark.parametrize("vector_id", ["devindtools_iso0_enciphered", "idtech_iso0_pan17"])
def test_format_0_pan_field_is_the_12_rightmost_digits_without_the_check_digit(vector_id: str
                                                                               ) -> None:
    """ISO 9564-1 format 0: the clear block is the PIN field xor 0000 ‖ PAN digits 12..1
    counted from the right after dropping the check digit (a 17-digit PAN in the second)."""
    v = _pin(vector_id)
    block = encipher_pin_block(KEY, v["pin"], v["pan"])
    assert _tdes(KEY, block, decrypt=True).hex().upper() == v["clear_block"]
    published = _tdes(KEY, bytes.fromhex(v["clear_block"]))
    assert pin_from_block(KEY, published, v["pan"]) == v["pin"]


def test_format_0_block_opened_with_the_check_digit_in_the_pan_field_is_refused() -> None:
    """The same block read against a PAN field that keeps the check digit (the PAN shifted by
    one digit) does not give the PIN back."""
    v = _pin("idtech_iso0_pan17")
    published = _tdes(KEY, bytes.fromhex(v["clear_block"]))
    with pytest.raises(PinBlockError):
        pin_from_block(KEY, published, v["pan"] + "0")


def test_format_1_pin_block_is_refused_by_the_format_0_issuer() -> None:
    """ISO 9564-1 format 1 (control field 1, random fill, no PAN): a published format 1 block,
    enciphered under the zone PIN key, is not a format 0 block and gets a PinBlockError."""
    v = _pin("ibm_cca_iso1")
    clear = bytes.fromhex(v["clear_block"])
    assert clear.hex().upper()[:2 + len(v["pin"])] == "1" + f"{len(v['pin']):X}" + v["pin"]
    with pytest.raises(PinBlockError, match="not an ISO 9564 format 0 block"):
        pin_from_block(KEY, _tdes(KEY, clear), "0000000000000000")


# --- Visa CVN 18, the complete cryptogram ------------------------------------------------------

CVN18 = _vectors("visa_cvn18")
CVN18_VALUES = {int(tag, 16): bytes.fromhex(value) for tag, value in CVN18["tags"].items()}
CVN18_ATC = CVN18_VALUES[0x9F36]


def _cvn18_icc_mk(which: str) -> bytes:
    return derive_icc_master_key(bytes.fromhex(CVN18[which]), CVN18["pan"], CVN18["psn"], "A")


def test_visa_cvn18_icc_master_keys_have_the_published_check_values() -> None:
    """Book 2 A1.4.1 option A from the issuer master keys."""
    assert (_kcv(_cvn18_icc_mk("imk_ac")), _kcv(_cvn18_icc_mk("imk_smi"))) == (
        CVN18["icc_mk_ac_kcv"], CVN18["icc_mk_smi_kcv"])


def test_visa_cvn18_arqc_and_arpc_match_the_published_values() -> None:
    """The CVN 18 row: EMV CSK with R = ATC ‖ 0…0 (A1.3.1), MAC over the list ‖ the whole IAD
    with method 2 padding (8.1.1), ARPC method 2 with the CSU (8.2.2)."""
    row = cryptogram_version(0x12)
    session_key = row.session_key(_cvn18_icc_mk("imk_ac"), CVN18_ATC, CVN18_VALUES)
    assert _kcv(session_key) == CVN18["ac_session_key_kcv"]
    assert row.iad(CVN18_VALUES[0x9F10][1], CVN18_VALUES[0x9F10][3:]) == CVN18_VALUES[0x9F10]
    arqc = generate_ac(session_key, row.mac_data(CVN18_VALUES), row.padding)
    assert arqc.hex().upper() == CVN18["arqc"]
    csu = bytes.fromhex(CVN18["arpc_csu"])
    arpc = arpc_method_2(session_key, arqc, csu)
    assert arpc.hex().upper() == CVN18["arpc"]
    response = row.check_arpc(session_key, arqc, arpc + csu)
    assert response == IssuerResponse(valid=True, approved=False)  # CSU 00000000: declined


def test_the_switch_verifies_the_published_visa_cvn18_arqc_from_de55() -> None:
    row = cryptogram_version(0x12)
    session_key = row.session_key(_cvn18_icc_mk("imk_ac"), CVN18_ATC, CVN18_VALUES)
    arqc = bytes.fromhex(CVN18["arqc"])
    objects = [tlv.Tlv.primitive(0x9F26, arqc), tlv.Tlv.primitive(0x9F27, b"\x80")]
    objects += [tlv.Tlv.primitive(tag, value) for tag, value in CVN18_VALUES.items()]
    icc = parse_icc_data(b"".join(o.encode() for o in objects), expected_cvn=0x12)
    assert (icc.cvn, icc.iad_format, icc.is_arqc) == (0x12, "vis", True)
    assert verify_arqc(icc, session_key) is True
    other = {**CVN18_VALUES, 0x9F02: bytes.fromhex("000000004001")}
    tampered = [tlv.Tlv.primitive(0x9F26, arqc), tlv.Tlv.primitive(0x9F27, b"\x80")]
    tampered += [tlv.Tlv.primitive(tag, value) for tag, value in other.items()]
    assert verify_arqc(parse_icc_data(b"".join(o.encode() for o in tampered)), session_key) is False


# --- issuer script MAC (Book 2 9.2.1) --------------------------------------------------------


def _visa_sm_session_key(icc_mk_smi: bytes, atc: bytes) -> bytes:
    """The vector's secure-messaging key rule, written out from its description (a data
    mask, not emvtap code): MK xor (0…0 ‖ ATC ‖ 0…0 ‖ ATC xor FFFF)."""
    inverted = bytes(b ^ 0xFF for b in atc)
    mask = bytes(6) + atc + bytes(6) + inverted
    return bytes(a ^ b for a, b in zip(icc_mk_smi, mask, strict=True))


@pytest.mark.parametrize("command", CVN18["script_commands"], ids=lambda c: c["header_with_lc"])
def test_script_mac_over_header_atc_ac_and_data_matches_the_published_mac(
        command: dict[str, str]) -> None:
    """MAC algorithm 3, method 2 padding, over CLA INS P1 P2 Lc ‖ ATC ‖ ARQC ‖ data."""
    key = _visa_sm_session_key(_cvn18_icc_mk("imk_smi"), CVN18_ATC)
    assert _kcv(key) == CVN18["sm_session_key_kcv"]
    arqc = bytes.fromhex(CVN18["arqc"])
    header, data = bytes.fromhex(command["header_with_lc"]), bytes.fromhex(command["data"])
    mac = script_mac(key, header, CVN18_ATC, arqc, data, 8)
    assert mac.hex().upper() == command["mac"]
    assert verify_script_mac(key, header, CVN18_ATC, arqc, data, mac) is True
    assert verify_script_mac(key, header, CVN18_ATC, arqc, data, mac[:4]) is True


def test_the_published_script_mac_tells_atc_then_ac_from_ac_then_atc() -> None:
    """The vector discriminates the MAC input order: the same MAC over header ‖ AC ‖ ATC ‖
    data differs from the published one, which script_mac reproduces."""
    command = CVN18["script_commands"][1]
    key = _visa_sm_session_key(_cvn18_icc_mk("imk_smi"), CVN18_ATC)
    arqc = bytes.fromhex(CVN18["arqc"])
    header, data = bytes.fromhex(command["header_with_lc"]), bytes.fromhex(command["data"])
    swapped = retail_mac(key, header + arqc + CVN18_ATC + data, 2)
    assert swapped.hex().upper() != command["mac"]
    assert script_mac(key, header, CVN18_ATC, arqc, data, 8).hex().upper() == command["mac"]


def test_emv_csk_secure_messaging_keys_match_the_published_check_values() -> None:
    """Book 2 9.2 / A1.3.1: the SM session keys with R = the ARQC, as the Mastercard CVN 16
    row derives its script key. (The Visa CVN 18 vector above derives its SM key the Visa
    way - MK xor ATC - while the CVN 18 row uses this EMV CSK rule: docs/mutation.md.)"""
    v = _vectors("emv_csk_secure_messaging")
    arqc, atc = bytes.fromhex(v["arqc"]), bytes.fromhex(v["atc"])
    smi = derive_icc_master_key(bytes.fromhex(v["imk_smi"]), v["pan"], v["psn"], "A")
    smc = derive_icc_master_key(bytes.fromhex(v["imk_smc"]), v["pan"], v["psn"], "A")
    assert (_kcv(derive_emv_common_session_key(smi, arqc)),
            _kcv(derive_emv_common_session_key(smc, arqc))) == (v["sk_smi_kcv"], v["sk_smc_kcv"])
    assert _kcv(cryptogram_version(0x10).script_key(smi, atc, arqc)) == v["sk_smi_kcv"]


# --- ISO 8583 wire samples -------------------------------------------------------------------


def _wire(vector_id: str) -> dict[str, Any]:
    return next(v for v in _vectors("iso8583_wire") if v["id"] == vector_id)


def test_a_captured_0800_in_our_dialect_decodes_to_its_fields() -> None:
    v = _wire("devpeace_0800")
    assert decode_message(bytes.fromhex(v["message"])) == v["fields"]


def test_a_captured_framed_0110_is_unframed_and_refused_at_its_first_unknown_field() -> None:
    """The frame is a 2-byte big-endian length (here 161) before ASCII MTI ‖ binary bitmap; the
    message carries DE 25/32/43, which emvtap's field table lacks: a format error naming DE 25,
    with the MTI read, never another exception."""
    v = _wire("eftlab_0110_framed")
    frame = bytes.fromhex(v["frame"])
    message, rest = unframe(frame)
    assert message is not None
    assert len(message) == int.from_bytes(frame[:2], "big") == 161
    assert rest == frame[2 + 161:]
    assert message[:4].decode() == v["mti"]
    bitmap = int.from_bytes(message[4:12], "big")
    assert [n for n in range(1, 65) if bitmap >> (64 - n) & 1] == v["fields_present"]
    assert message[12:14] == b"16" and message[14:30].decode() == v["pan"]
    with pytest.raises(MessageFormatError) as info:
        decode_message(message)
    assert (info.value.field, info.value.mti, info.value.reason) == (
        v["refused_at"], v["mti"], "field not in emvtap's field table")
