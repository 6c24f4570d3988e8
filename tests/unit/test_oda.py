"""Offline data authentication (EMV 4.4 Book 2, 5 and 6; Book 3, 10.3): the public
DDA vector, round trips with generated keys, and every rejection the spec requires."""

from __future__ import annotations

import hashlib
import random
from datetime import date
from typing import Any

import pytest
from data_files import public_vectors as _public_vectors

from emvtap.capk import TEST_CA_INDEX, CapkStore, CaPublicKey, test_ca_private_key
from emvtap.oda import (
    VISA_FDDA_SDAD_FORMAT,
    IccPublicKey,
    IssuerPublicKey,
    OdaError,
    cda_transaction_data_hash,
    create_icc_certificate,
    create_issuer_certificate,
    create_ssad,
    fdda_terminal_data,
    pad_pan,
    parse_idn,
    recover_dynamic_data,
    recover_icc_public_key,
    recover_issuer_public_key,
    recover_ssad,
    sign_dynamic_data,
    static_data_to_be_authenticated,
    verify_cda,
)
from emvtap.rsa import RsaKey, RsaPublicKey, generate_rsa_key
from emvtap.tlv import Tlv

h = bytes.fromhex
UPI = h("A000000333")
PAN = "6234567890123456"
PAN_5A = h(PAN)
ISSUER_ID = h("623456FF")
TODAY = date(2025, 6, 1)
EXPIRY = h("1230")
SERIAL = h("000001")
STATIC = h("5A0862345678901234565F24033012319F4A0182") + h("3900")


DDA = _public_vectors()["rsa_oda"][0]
DDA_TODAY = date(2015, 1, 1)  # the certificates of the proxmark3 vector expire 06/15 and 12/21


# --- keys and a personalised chain ---------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> RsaKey:
    return test_ca_private_key(UPI)


@pytest.fixture(scope="module")
def capk() -> CaPublicKey:
    key = CapkStore.default().get(UPI, TEST_CA_INDEX)
    assert key is not None
    return key


@pytest.fixture(scope="module")
def issuer() -> RsaKey:
    """1152 bits under a 1152-bit CA: the certificate has a 36-byte remainder."""
    return generate_rsa_key(1152, 3, b"test issuer 1152")


@pytest.fixture(scope="module")
def small_issuer() -> RsaKey:
    """768 bits under a 1152-bit CA: no remainder, the key field is BB-padded."""
    return generate_rsa_key(768, 65537, b"test issuer 768")


@pytest.fixture(scope="module")
def icc() -> RsaKey:
    """1024 bits under a 1152-bit issuer: a 26-byte remainder."""
    return generate_rsa_key(1024, 3, b"test icc 1024")


@pytest.fixture(scope="module")
def issuer_pk(capk: CaPublicKey, ca: RsaKey, issuer: RsaKey) -> IssuerPublicKey:
    cert, rem = create_issuer_certificate(ca, issuer.public, ISSUER_ID, EXPIRY, SERIAL)
    return recover_issuer_public_key(capk, cert, rem, issuer.public.exponent, PAN_5A, TODAY)


@pytest.fixture(scope="module")
def icc_pk(issuer_pk: IssuerPublicKey, issuer: RsaKey, icc: RsaKey) -> IccPublicKey:
    cert, rem = create_icc_certificate(issuer, icc.public, PAN_5A, EXPIRY, SERIAL, STATIC)
    return recover_icc_public_key(issuer_pk, cert, rem, b"\x03", STATIC, PAN_5A, TODAY)


def _signed_message(key: RsaKey, body: bytes, tail: bytes, *, header: int = 0x6A,
                    trailer: int = 0xBC, bad_hash: bool = False) -> bytes:
    """Sign 'header || body || SHA-1(body || tail) || trailer' as a card or CA could, with
    whatever fields a test wants wrong."""
    digest = hashlib.sha1(body + tail).digest()
    if bad_hash:
        digest = bytes([digest[0] ^ 1]) + digest[1:]
    return key.sign_raw(bytes([header]) + body + digest + bytes([trailer]))


def _issuer_cert(ca: RsaKey, issuer: RsaKey, *, fmt: int = 2, issuer_id: bytes = ISSUER_ID,
                 expiry: bytes = EXPIRY, hash_algo: int = 1, pk_algo: int = 1,
                 **kw: Any) -> tuple[bytes, bytes]:
    m = issuer.public.modulus
    body = (bytes([fmt]) + issuer_id + expiry + SERIAL + bytes([hash_algo, pk_algo, len(m), 1])
            + m[:108])
    return _signed_message(ca, body, m[108:] + b"\x03", **kw), m[108:]


def _recover_issuer(capk: CaPublicKey, cert: bytes, rem: bytes, **kw: Any) -> IssuerPublicKey:
    args: dict[str, Any] = {"exponent": b"\x03", "pan": PAN_5A, "today": TODAY} | kw
    return recover_issuer_public_key(capk, cert, rem, args["exponent"], args["pan"],
                                     args["today"], args.get("store"))


# --- the public DDA vector (proxmark3 dda_test.c, Mastercard CAPK 05) ----------------------


def _dda_issuer() -> IssuerPublicKey:
    capk = CapkStore.default().get("A000000004", 0x05)
    assert capk is not None
    return recover_issuer_public_key(capk, h(DDA["tag_90"]), h(DDA["tag_92"]),
                                     h(DDA["tag_9F32"]), h(DDA["pan_5A"]), DDA_TODAY)


def test_dda_vector_issuer_certificate_recovers_the_expected_fields() -> None:
    """Book 2 6.3: issuer ID 528588FF, expiry 12/21, N_I from a 36-byte remainder."""
    ipk = _dda_issuer()
    assert ipk.issuer_id.hex().upper() == DDA["expect"]["issuer_id"]
    assert ipk.expiry_mmyy.hex().upper() == DDA["expect"]["cert_expiry_mmyy"]
    assert ipk.modulus_len == 176 - 36 + len(h(DDA["tag_92"]))
    assert ipk.public_key.e == 3


def test_dda_vector_icc_certificate_covers_the_static_data() -> None:
    """Book 2 6.4 with the static data of Book 3 10.3 (records + AIP 3900)."""
    icc = recover_icc_public_key(_dda_issuer(), h(DDA["tag_9F46"]), b"", h(DDA["tag_9F47"]),
                                 h(DDA["static_data"]), h(DDA["pan_5A"]), DDA_TODAY)
    assert icc.pan.hex().upper() == DDA["expect"]["icc_pan"]
    assert icc.expiry_mmyy.hex().upper() == DDA["expect"]["icc_expiry_mmyy"]
    assert icc.modulus_len == DDA["expect"]["nic"]


def test_dda_vector_sdad_over_the_ddol_data_gives_the_idn() -> None:
    """Book 2 6.5.2: SDAD recovers with the DDOL data (UN 00000000); IDN 7A33FB8C9546E1E7."""
    icc = recover_icc_public_key(_dda_issuer(), h(DDA["tag_9F46"]), b"", h(DDA["tag_9F47"]),
                                 h(DDA["static_data"]), h(DDA["pan_5A"]), DDA_TODAY)
    dynamic = recover_dynamic_data(icc, h(DDA["tag_9F4B"]), h(DDA["ddol_data"]))
    assert parse_idn(dynamic).hex().upper() == DDA["expect"]["idn_9F4C"]
    with pytest.raises(OdaError, match="SDAD: hash mismatch"):
        recover_dynamic_data(icc, h(DDA["tag_9F4B"]), h("00000001"))


def test_dda_vector_icc_certificate_with_other_static_data_is_rejected() -> None:
    static = bytearray(h(DDA["static_data"]))
    static[-1] ^= 0x01  # AIP 3900 -> 3901
    with pytest.raises(OdaError, match="ICC certificate: hash mismatch"):
        recover_icc_public_key(_dda_issuer(), h(DDA["tag_9F46"]), b"", h(DDA["tag_9F47"]),
                               bytes(static), h(DDA["pan_5A"]), DDA_TODAY)


def test_dda_vector_issuer_certificate_without_its_remainder_is_rejected() -> None:
    capk = CapkStore.default().get("A000000004", 0x05)
    assert capk is not None
    with pytest.raises(OdaError, match="issuer certificate: hash mismatch"):
        recover_issuer_public_key(capk, h(DDA["tag_90"]), b"", h(DDA["tag_9F32"]),
                                  h(DDA["pan_5A"]), DDA_TODAY)


# --- round trips -----------------------------------------------------------------------------


def test_issuer_certificate_round_trip_with_remainder(issuer_pk: IssuerPublicKey,
                                                       issuer: RsaKey) -> None:
    assert issuer_pk.public_key == issuer.public
    assert issuer_pk.issuer_id == ISSUER_ID and issuer_pk.expiry_mmyy == EXPIRY
    assert issuer_pk.serial == SERIAL


def test_issuer_certificate_round_trip_without_remainder_and_exponent_65537(
        capk: CaPublicKey, ca: RsaKey, small_issuer: RsaKey) -> None:
    cert, rem = create_issuer_certificate(ca, small_issuer.public, ISSUER_ID, EXPIRY, SERIAL)
    assert rem == b"" and len(cert) == 144
    assert ca.public.recover_raw(cert)[15 + 96 : 144 - 21] == b"\xbb" * (108 - 96)
    ipk = recover_issuer_public_key(capk, cert, rem, h("010001"), PAN_5A, TODAY)
    assert ipk.public_key == small_issuer.public


def test_icc_certificate_round_trip_with_remainder(icc_pk: IccPublicKey, icc: RsaKey) -> None:
    assert icc_pk.public_key == icc.public
    assert icc_pk.pan == pad_pan(PAN, 10)


def test_icc_certificate_round_trip_without_remainder(issuer_pk: IssuerPublicKey,
                                                      issuer: RsaKey) -> None:
    small_icc = generate_rsa_key(768, 3, b"small icc")
    cert, rem = create_icc_certificate(issuer, small_icc.public, PAN, EXPIRY, SERIAL, b"")
    assert rem == b""
    icc_pk = recover_icc_public_key(issuer_pk, cert, rem, b"\x03", b"", PAN_5A, TODAY)
    assert icc_pk.public_key == small_icc.public


def test_ssad_round_trip_returns_the_dac(issuer_pk: IssuerPublicKey, issuer: RsaKey) -> None:
    """Book 2 5.4: SDA."""
    ssad = create_ssad(issuer, h("3132"), STATIC)
    assert recover_ssad(issuer_pk, ssad, STATIC) == h("3132")


def test_ssad_over_other_static_data_is_rejected(issuer_pk: IssuerPublicKey,
                                                 issuer: RsaKey) -> None:
    ssad = create_ssad(issuer, h("3132"), STATIC)
    with pytest.raises(OdaError, match="SSAD: hash mismatch") as info:
        recover_ssad(issuer_pk, ssad, STATIC[:-1] + b"\x01")
    assert info.value.step == "SSAD"


def test_sdad_round_trip_for_dda(icc_pk: IccPublicKey, icc: RsaKey) -> None:
    """Book 2 6.5: ICC dynamic data = L(IDN) || IDN, terminal data = DDOL values."""
    sdad = sign_dynamic_data(icc, h("0400010203"), h("CAFEBABE"))
    assert recover_dynamic_data(icc_pk, sdad, h("CAFEBABE")) == h("0400010203")
    assert parse_idn(h("0400010203")) == h("00010203")


def test_fdda_signature_covers_un_amount_currency_and_card_authentication_data(
        icc_pk: IccPublicKey, icc: RsaKey) -> None:
    """C-3/C-7 fDDA v01: 9F37 || 9F02 || 5F2A || 9F69 (Book C-3 fDDA)."""
    values = {0x9F37: h("0EB0F616"), 0x9F02: h("000000000100"), 0x5F2A: h("0156"),
              0x9F69: h("0130A7A7880000")}
    terminal = fdda_terminal_data(values)
    assert terminal == h("0EB0F616" "000000000100" "0156" "0130A7A7880000")
    assert fdda_terminal_data(values, version=0) == h("0EB0F616")
    assert fdda_terminal_data(values, version=b"\x01") == terminal
    sdad = sign_dynamic_data(icc, h("020051"), terminal)
    assert recover_dynamic_data(icc_pk, sdad, terminal) == h("020051")
    other_amount = fdda_terminal_data(values | {0x9F02: h("000000000200")})
    with pytest.raises(OdaError, match="SDAD: hash mismatch"):
        recover_dynamic_data(icc_pk, sdad, other_amount)


def test_fdda_terminal_data_names_the_missing_tag() -> None:
    with pytest.raises(OdaError, match="9F69 missing") as info:
        fdda_terminal_data({0x9F37: bytes(4), 0x9F02: bytes(6), 0x5F2A: bytes(2)})
    assert info.value.step == "fDDA"
    with pytest.raises(OdaError, match="version"):
        fdda_terminal_data({}, version=2)


def test_visa_fdda_format_95_is_accepted_and_can_be_refused(icc_pk: IccPublicKey,
                                                            icc: RsaKey) -> None:
    sdad = sign_dynamic_data(icc, h("020051"), b"", signed_data_format=VISA_FDDA_SDAD_FORMAT)
    assert recover_dynamic_data(icc_pk, sdad, b"") == h("020051")
    with pytest.raises(OdaError, match="format is 95, expected 05"):
        recover_dynamic_data(icc_pk, sdad, b"", formats=(0x05,))


def _cda_response(icc: RsaKey, cid: int, ac: bytes, un: bytes, pdol: bytes, cdol1: bytes,
                  signed_cid: int | None = None) -> bytes:
    """Card side of CDA (Book 2 6.6.1): 77 { 9F27, 9F36, 9F4B, 9F10 }."""
    before = [Tlv.primitive(0x9F27, bytes([cid])), Tlv.primitive(0x9F36, h("0035"))]
    after = [Tlv.primitive(0x9F10, h("0110A00003220000000000000000000000FF"))]
    tdhc = cda_transaction_data_hash(pdol, cdol1, None, before + after)
    idn = h("0102030405060708")
    icc_dd = (bytes([len(idn)]) + idn + bytes([cid if signed_cid is None else signed_cid]) + ac
              + tdhc)
    sdad = sign_dynamic_data(icc, icc_dd, un)
    return Tlv.template(0x77, [*before, Tlv.primitive(0x9F4B, sdad), *after]).encode()


def test_cda_round_trip_returns_idn_cid_and_ac(icc_pk: IccPublicKey, icc: RsaKey) -> None:
    """Book 2 6.6.2: signature, CID = 9F27, Transaction Data Hash Code."""
    un, cdol1, ac = h("11223344"), bytes(range(43)), h("D58B731AF5885C06")
    response = _cda_response(icc, 0x40, ac, un, b"", cdol1)
    result = verify_cda(icc_pk, response, un, b"", cdol1)
    assert (result.cid, result.ac, result.idn) == (0x40, ac, h("0102030405060708"))


def test_cda_with_a_cid_different_from_9f27_is_rejected(icc_pk: IccPublicKey,
                                                        icc: RsaKey) -> None:
    un, cdol1 = h("11223344"), bytes(43)
    response = _cda_response(icc, 0x40, bytes(8), un, b"", cdol1, signed_cid=0x80)
    with pytest.raises(OdaError, match=r"CDA: CID in the signature \(80\) differs from 9F27"):
        verify_cda(icc_pk, response, un, b"", cdol1)


def test_cda_with_other_cdol1_data_fails_the_transaction_data_hash(icc_pk: IccPublicKey,
                                                                   icc: RsaKey) -> None:
    un, cdol1 = h("11223344"), bytes(43)
    response = _cda_response(icc, 0x40, bytes(8), un, b"", cdol1)
    with pytest.raises(OdaError, match="CDA: transaction data hash code mismatch"):
        verify_cda(icc_pk, response, un, b"", b"\x01" + cdol1[1:])
    with pytest.raises(OdaError, match="CDA: hash mismatch"):
        verify_cda(icc_pk, response, h("11223345"), b"", cdol1)


def test_cda_response_without_9f4b_or_9f27_is_rejected(icc_pk: IccPublicKey) -> None:
    with pytest.raises(OdaError, match="9F4B"):
        verify_cda(icc_pk, h("77049F270140"), bytes(4), b"", b"")
    with pytest.raises(OdaError, match="9F27"):
        verify_cda(icc_pk, h("77059F4B0200FF"), bytes(4), b"", b"")
    with pytest.raises(OdaError, match="not valid TLV"):
        verify_cda(icc_pk, h("779F"), bytes(4), b"", b"")


def test_cda_hash_uses_the_response_bytes_as_received() -> None:
    """Book 2 6.6.1: TLVs of the response except 9F4B, in order, in their received coding."""
    plain = h("9F2701409F360200359F4B02AAAA9F100101")
    long_form = h("9F2781019F360200359F4B02AAAA9F100101")  # 9F27 with a long-form length
    expected = hashlib.sha1(h("AA") + h("BB") + h("9F2701409F360200359F100101")).digest()
    assert cda_transaction_data_hash(h("AA"), h("BB"), None, plain) == expected
    assert cda_transaction_data_hash(h("AA"), h("BB"), None, h("7712") + plain) == expected
    assert cda_transaction_data_hash(h("AA"), h("BB"), None, long_form) != expected
    with_cdol2 = hashlib.sha1(h("AABBCC") + h("9F2701409F360200359F100101")).digest()
    assert cda_transaction_data_hash(h("AA"), h("BB"), h("CC"), plain) == with_cdol2


# --- issuer certificate rejections (Book 2 5.3 / 6.3) ---------------------------------------


def test_issuer_certificate_with_wrong_hash_is_rejected(capk: CaPublicKey, ca: RsaKey,
                                                        issuer: RsaKey) -> None:
    cert, rem = _issuer_cert(ca, issuer, bad_hash=True)
    with pytest.raises(OdaError, match=r"^issuer certificate: hash mismatch$") as info:
        _recover_issuer(capk, cert, rem)
    assert info.value.step == "issuer certificate" and info.value.reason == "hash mismatch"


def test_issuer_certificate_with_a_tampered_remainder_or_exponent_is_rejected(
        capk: CaPublicKey, ca: RsaKey, issuer: RsaKey) -> None:
    cert, rem = create_issuer_certificate(ca, issuer.public, ISSUER_ID, EXPIRY, SERIAL)
    with pytest.raises(OdaError, match="hash mismatch"):
        _recover_issuer(capk, cert, bytes([rem[0] ^ 1]) + rem[1:])
    with pytest.raises(OdaError, match="hash mismatch"):
        _recover_issuer(capk, cert, rem, exponent=h("010001"))


def test_issuer_certificate_with_a_tampered_byte_does_not_recover(capk: CaPublicKey, ca: RsaKey,
                                                                   issuer: RsaKey) -> None:
    cert, rem = create_issuer_certificate(ca, issuer.public, ISSUER_ID, EXPIRY, SERIAL)
    for i in (0, 50, len(cert) - 1):
        bad = bytearray(cert)
        bad[i] ^= 0x01
        with pytest.raises(OdaError, match=r"^issuer certificate: "):
            _recover_issuer(capk, bytes(bad), rem)


def test_issuer_certificate_that_does_not_match_the_pan_is_rejected(capk: CaPublicKey,
                                                                    ca: RsaKey,
                                                                    issuer: RsaKey) -> None:
    cert, rem = create_issuer_certificate(ca, issuer.public, ISSUER_ID, EXPIRY, SERIAL)
    with pytest.raises(OdaError, match="issuer certificate: issuer identifier 623456FF does not "
                                       "match the PAN"):
        _recover_issuer(capk, cert, rem, pan=h("5413330089600044"))


def test_issuer_identifier_must_be_3_to_8_digits(capk: CaPublicKey, ca: RsaKey,
                                                 issuer: RsaKey) -> None:
    cert, rem = _issuer_cert(ca, issuer, issuer_id=h("62FFFFFF"))
    with pytest.raises(OdaError, match="not 3-8 digits"):
        _recover_issuer(capk, cert, rem)


def test_expired_issuer_certificate_is_rejected(capk: CaPublicKey, ca: RsaKey,
                                                issuer: RsaKey) -> None:
    """Valid through the last day of MM/YY; the day after, rejected."""
    cert, rem = create_issuer_certificate(ca, issuer.public, ISSUER_ID, h("0224"), SERIAL)
    assert _recover_issuer(capk, cert, rem, today=date(2024, 2, 29)).expiry_mmyy == h("0224")
    with pytest.raises(OdaError, match=r"^issuer certificate: certificate expired \(MMYY 0224\)$"):
        _recover_issuer(capk, cert, rem, today=date(2024, 3, 1))


def test_issuer_certificate_with_an_invalid_expiry_date_is_rejected(capk: CaPublicKey,
                                                                    ca: RsaKey,
                                                                    issuer: RsaKey) -> None:
    cert, rem = _issuer_cert(ca, issuer, expiry=h("1330"))
    with pytest.raises(OdaError, match="not a valid MMYY"):
        _recover_issuer(capk, cert, rem)


def test_revoked_issuer_certificate_is_rejected(capk: CaPublicKey, ca: RsaKey,
                                                issuer: RsaKey) -> None:
    """Book 2 5.3 step 10: RID || index || serial on the CA revocation list."""
    cert, rem = create_issuer_certificate(ca, issuer.public, ISSUER_ID, EXPIRY, SERIAL)
    store = CapkStore.default()
    assert _recover_issuer(capk, cert, rem, store=store)
    store.revoke(UPI, TEST_CA_INDEX, SERIAL)
    with pytest.raises(OdaError, match="revocation list"):
        _recover_issuer(capk, cert, rem, store=store)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"header": 0x6B}, "header is not 6A"),
        ({"trailer": 0xBD}, "trailer is not BC"),
        ({"fmt": 0x04}, "format is 04, expected 02"),
        ({"hash_algo": 0x02}, "hash algorithm indicator 02"),
        ({"pk_algo": 0x02}, "public key algorithm indicator 02"),
    ],
)
def test_issuer_certificate_with_wrong_header_trailer_format_or_algorithm_is_rejected(
        capk: CaPublicKey, ca: RsaKey, issuer: RsaKey, override: dict[str, int],
        message: str) -> None:
    cert, rem = _issuer_cert(ca, issuer, **override)
    with pytest.raises(OdaError, match=f"^issuer certificate: {message}"):
        _recover_issuer(capk, cert, rem)


def test_issuer_certificate_of_the_wrong_length_is_rejected(capk: CaPublicKey, ca: RsaKey,
                                                            issuer: RsaKey) -> None:
    cert, rem = create_issuer_certificate(ca, issuer.public, ISSUER_ID, EXPIRY, SERIAL)
    with pytest.raises(OdaError, match="certificate is 143 bytes, the key modulus is 144"):
        _recover_issuer(capk, cert[1:], rem)
    with pytest.raises(OdaError, match="145 bytes"):
        _recover_issuer(capk, cert + b"\x00", rem)
    with pytest.raises(OdaError, match="not below the key modulus"):
        _recover_issuer(capk, b"\xff" * 144, rem)


def test_issuer_certificate_exponent_length_must_match_9f32(capk: CaPublicKey, ca: RsaKey,
                                                            small_issuer: RsaKey) -> None:
    m = small_issuer.public.modulus
    body = (b"\x02" + ISSUER_ID + EXPIRY + SERIAL + bytes([1, 1, len(m), 1]) + m
            + b"\xbb" * (108 - len(m)))
    cert = _signed_message(ca, body, h("010001"))
    with pytest.raises(OdaError, match="exponent length"):
        _recover_issuer(capk, cert, b"", exponent=h("010001"))


# --- ICC certificate rejections (Book 2 6.4) ------------------------------------------------


def test_icc_certificate_with_a_pan_other_than_5a_is_rejected(issuer_pk: IssuerPublicKey,
                                                              issuer: RsaKey,
                                                              icc: RsaKey) -> None:
    cert, rem = create_icc_certificate(issuer, icc.public, PAN, EXPIRY, SERIAL, STATIC)
    with pytest.raises(OdaError, match=r"^ICC certificate: PAN does not match 5A$") as info:
        recover_icc_public_key(issuer_pk, cert, rem, b"\x03", STATIC, h("6234567890123457"),
                               TODAY)
    assert info.value.step == "ICC certificate"


def test_expired_icc_certificate_is_rejected(issuer_pk: IssuerPublicKey, issuer: RsaKey,
                                             icc: RsaKey) -> None:
    cert, rem = create_icc_certificate(issuer, icc.public, PAN, h("1224"), SERIAL, STATIC)
    with pytest.raises(OdaError, match=r"ICC certificate: certificate expired \(MMYY 1224\)"):
        recover_icc_public_key(issuer_pk, cert, rem, b"\x03", STATIC, PAN_5A, date(2025, 1, 1))


def test_icc_certificate_over_other_static_data_is_rejected(issuer_pk: IssuerPublicKey,
                                                            issuer: RsaKey,
                                                            icc: RsaKey) -> None:
    cert, rem = create_icc_certificate(issuer, icc.public, PAN, EXPIRY, SERIAL, STATIC)
    with pytest.raises(OdaError, match="ICC certificate: hash mismatch"):
        recover_icc_public_key(issuer_pk, cert, rem, b"\x03", STATIC + b"\x00", PAN_5A, TODAY)


def test_icc_certificate_with_a_short_remainder_is_rejected(issuer_pk: IssuerPublicKey,
                                                            issuer: RsaKey,
                                                            icc: RsaKey) -> None:
    cert, rem = create_icc_certificate(issuer, icc.public, PAN, EXPIRY, SERIAL, STATIC)
    with pytest.raises(OdaError, match="ICC certificate: hash mismatch"):
        recover_icc_public_key(issuer_pk, cert, rem[:-1], b"\x03", STATIC, PAN_5A, TODAY)


def test_icc_certificate_signed_with_format_02_is_rejected(issuer_pk: IssuerPublicKey,
                                                           issuer: RsaKey) -> None:
    body = b"\x02" + bytes(121)
    cert = _signed_message(issuer, body, b"")
    with pytest.raises(OdaError, match="ICC certificate: format is 02, expected 04"):
        recover_icc_public_key(issuer_pk, cert, b"", b"\x03", b"", PAN_5A, TODAY)


def test_sdad_with_wrong_trailer_or_oversized_dynamic_data_is_rejected(icc_pk: IccPublicKey,
                                                                       icc: RsaKey) -> None:
    body = b"\x05\x01\x02\x00\x01" + b"\xbb" * (128 - 2 - 25)
    with pytest.raises(OdaError, match=r"^SDAD: trailer is not BC"):
        recover_dynamic_data(icc_pk, _signed_message(icc, body, b"", trailer=0xBD), b"")
    body = b"\x05\x01\x7f" + bytes(128 - 25)
    with pytest.raises(OdaError, match="SDAD: ICC dynamic data length 127 does not fit"):
        recover_dynamic_data(icc_pk, _signed_message(icc, body, b""), b"")


def test_parse_idn_requires_2_to_8_bytes() -> None:
    for bad in (b"", h("01AA"), h("09" + "00" * 9), h("0400")):
        with pytest.raises(OdaError):
            parse_idn(bad)


# --- static data to be authenticated (Book 3 10.3) -----------------------------------------


def test_static_data_takes_the_70_value_in_sfi_1_to_10_and_the_whole_record_above() -> None:
    afl = h("08010201" "58010101" "10010200")  # SFI 1 recs 1-2 (1 for ODA), SFI 11, SFI 2
    records = {
        (1, 1): h("70035A01AA"), (1, 2): h("7003570199"),
        (11, 1): h("70039F4A0182"),
        (2, 1): h("7000"), (2, 2): h("7000"),
    }
    out = static_data_to_be_authenticated(afl, records, h("3900"), h("82"))
    assert out == h("5A01AA") + h("70039F4A0182") + h("3900")
    assert static_data_to_be_authenticated(afl, records, h("3900"), None) == h("5A01AA70039F4A0182")


def test_static_data_accepts_long_form_70_lengths() -> None:
    value = bytes(200)
    record = h("7081C8") + value
    assert static_data_to_be_authenticated(h("08010101"), {(1, 1): record}, h("0000"),
                                           None) == value


@pytest.mark.parametrize("record", ["6F035A01AA", "70045A01AA", "70035A01AA00", "", "7081"])
def test_static_data_fails_when_an_sfi_1_to_10_record_is_not_a_70_template(record: str) -> None:
    with pytest.raises(OdaError, match=r"^static data: record 1 of SFI 1"):
        static_data_to_be_authenticated(h("08010101"), {(1, 1): h(record)}, h("3900"), None)


def test_static_data_fails_when_a_record_was_not_read() -> None:
    with pytest.raises(OdaError, match="record 2 of SFI 1 was not read"):
        static_data_to_be_authenticated(h("08010202"), {(1, 1): h("7000")}, h("3900"), None)


def test_static_data_fails_when_the_sda_tag_list_holds_more_than_82() -> None:
    with pytest.raises(OdaError, match="SDA tag list 825A holds tags other than 82"):
        static_data_to_be_authenticated(h("08010100"), {}, h("3900"), h("825A"))


def test_static_data_with_a_bad_afl_is_an_oda_error() -> None:
    with pytest.raises(OdaError, match="AFL"):
        static_data_to_be_authenticated(h("080101"), {}, h("3900"), None)


def test_pad_pan_is_f_padded_bcd() -> None:
    assert pad_pan("5413330089600044", 10) == h("5413330089600044FFFF")
    assert pad_pan("6228000100001", 8) == h("6228000100001FFF")
    with pytest.raises(ValueError):
        pad_pan("12345678901234567890123", 10)
    with pytest.raises(ValueError):
        pad_pan("12AB", 10)


def test_create_refuses_a_key_longer_than_its_signer(ca: RsaKey, small_issuer: RsaKey,
                                                     issuer: RsaKey) -> None:
    with pytest.raises(ValueError, match="longer"):
        create_icc_certificate(small_issuer, issuer.public, PAN, EXPIRY, SERIAL, b"")
    with pytest.raises(ValueError, match="MMYY"):
        create_issuer_certificate(ca, issuer.public, ISSUER_ID, h("1300"), SERIAL)


# --- garbage in: only OdaError out ----------------------------------------------------------


def test_random_truncated_and_oversized_inputs_to_every_recover_function_raise_oda_error(
        capk: CaPublicKey, ca: RsaKey, issuer: RsaKey, icc: RsaKey,
        issuer_pk: IssuerPublicKey, icc_pk: IccPublicKey) -> None:
    """Whatever a card sends, recovery ends in OdaError and nothing else (docs/architecture.md,
    failure handling). Besides plain random bytes, correctly signed messages with random fields
    reach the checks behind the signature."""
    rng = random.Random(20250601)
    tiny_pk = RsaPublicKey(generate_rsa_key(512, 3, b"tiny").n, 3)
    sizes = [0, 1, 20, 36, 42, 96, 127, 128, 129, 143, 144, 145, 248, 300]

    def blob() -> bytes:
        n = rng.choice(sizes) if rng.random() < 0.5 else rng.randrange(0, 260)
        return rng.randbytes(n)

    def small() -> bytes:
        return rng.randbytes(rng.randrange(0, 4))

    def signed_issuer_garbage() -> None:
        rem, exp = rng.choice([b"", rng.randbytes(36), small()]), rng.choice([b"\x03", small()])
        body = (bytes([rng.choice([2, 2, 2, 4])]) + rng.choice([ISSUER_ID, rng.randbytes(4)])
                + rng.choice([EXPIRY, rng.randbytes(2)]) + rng.randbytes(3)
                + bytes([rng.choice([1, 1, 2]), rng.choice([1, 1, 3]), rng.randrange(256),
                         rng.choice([1, len(exp), 3])]) + rng.randbytes(108))
        cert = _signed_message(ca, body, rem + exp)
        recover_issuer_public_key(capk, cert, rem, exp, rng.choice([PAN_5A, rng.randbytes(8)]),
                                  TODAY, CapkStore())

    def signed_icc_garbage() -> None:
        rem, exp, static = rng.choice([b"", rng.randbytes(26), small()]), small(), blob()
        body = (bytes([4]) + rng.choice([pad_pan(PAN, 10), rng.randbytes(10)])
                + rng.choice([EXPIRY, rng.randbytes(2)]) + rng.randbytes(3)
                + bytes([rng.choice([1, 1, 2]), rng.choice([1, 1, 3]), rng.randrange(256),
                         rng.choice([1, len(exp), 3])]) + rng.randbytes(102))
        cert = _signed_message(issuer, body, rem + exp + static)
        pan = rng.choice([PAN_5A, rng.randbytes(10)])
        recover_icc_public_key(issuer_pk, cert, rem, exp, static, pan, TODAY)

    def signed_sdad_garbage() -> None:
        body = bytes([5]) + rng.randbytes(105)
        terminal = small()
        recover_dynamic_data(icc_pk, _signed_message(icc, body, terminal), terminal)

    def signed_cda_garbage() -> None:
        un = rng.randbytes(4)
        dd = rng.randbytes(rng.randrange(0, 40))
        body = bytes([5, 1, len(dd)]) + dd + b"\xbb" * (103 - len(dd))
        sdad = _signed_message(icc, body, un)
        response = Tlv.template(0x77, [Tlv.primitive(0x9F27, rng.randbytes(1)),
                                       Tlv.primitive(0x9F4B, sdad)]).encode()
        verify_cda(icc_pk, response, un, blob(), blob())

    calls = [
        lambda: recover_issuer_public_key(capk, blob(), blob(), blob(), blob(), TODAY),
        lambda: recover_issuer_public_key(capk, rng.randbytes(144), blob(), b"\x03", PAN_5A,
                                          TODAY, CapkStore()),
        lambda: recover_icc_public_key(issuer_pk, blob(), blob(), blob(), blob(), blob(), TODAY),
        lambda: recover_icc_public_key(tiny_pk, rng.randbytes(64), b"", b"\x03", b"", PAN,
                                       TODAY),
        lambda: recover_icc_public_key(issuer_pk, rng.randbytes(144), blob(), b"\x03", b"",
                                       PAN_5A, TODAY),
        lambda: recover_ssad(issuer_pk, blob(), blob()),
        lambda: recover_ssad(issuer_pk, rng.randbytes(144), b""),
        lambda: recover_dynamic_data(icc_pk, blob(), blob()),
        lambda: recover_dynamic_data(icc_pk, rng.randbytes(128), b""),
        lambda: verify_cda(icc_pk, blob(), blob(), blob(), blob(), blob()),
        lambda: verify_cda(icc_pk, h("77819A9F2701409F4B8180") + rng.randbytes(128)
                           + h("9F360200"), bytes(4), b"", b""),
        lambda: static_data_to_be_authenticated(blob()[:12], {(1, 1): blob(), (2, 1): blob()},
                                                blob(), blob()),
        lambda: parse_idn(blob()),
        signed_issuer_garbage,
        signed_icc_garbage,
        signed_sdad_garbage,
        signed_cda_garbage,
    ]
    reasons: set[str] = set()
    for _ in range(200):
        for call in calls:
            try:
                call()
            except OdaError as exc:  # any other exception fails the test with its traceback
                reasons.add(exc.reason.split(" ")[0])
    assert len(reasons) > 10  # the garbage reached many different checks
