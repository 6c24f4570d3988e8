"""Offline data authentication: certificates, SDA, DDA, fDDA and CDA (EMV 4.4 Book 2, 5 and 6;
Book 3, 10.3; Contactless Book C-3 for fDDA; docs/emv-notes.md).

Both halves live here: what the issuer (and a test personalisation) creates, and what the
terminal checks. Every ``recover_*``/``verify_*`` function either returns the recovered data
or raises :class:`OdaError`; whatever bytes a card sends, no other exception escapes. The
error's ``step`` names the object that failed ("issuer certificate", "ICC certificate",
"SSAD", "SDAD", "CDA", "static data", "fDDA") and its message says what was wrong, so the
terminal can set the TVR bit and keep the reason in the trace.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from emvtap.capk import CapkStore, CaPublicKey
from emvtap.dol import AflEntry, AflError, parse_afl
from emvtap.rsa import RsaKey, RsaPublicKey
from emvtap.tlv import Tlv, TlvError, _read_length, _read_tag, decode

__all__ = [
    "CDA_STEP",
    "FDDA_STEP",
    "HASH_SHA1",
    "ICC_STEP",
    "ISSUER_STEP",
    "PK_RSA",
    "SDAD_FORMAT",
    "SDAD_STEP",
    "SSAD_STEP",
    "STATIC_STEP",
    "VISA_FDDA_SDAD_FORMAT",
    "CdaResult",
    "IccPublicKey",
    "IssuerPublicKey",
    "OdaError",
    "cda_transaction_data_hash",
    "create_icc_certificate",
    "create_issuer_certificate",
    "create_ssad",
    "fdda_terminal_data",
    "pad_pan",
    "parse_idn",
    "recover_dynamic_data",
    "recover_icc_public_key",
    "recover_issuer_public_key",
    "recover_ssad",
    "sign_dynamic_data",
    "static_data_to_be_authenticated",
    "verify_cda",
]

ISSUER_STEP = "issuer certificate"
ICC_STEP = "ICC certificate"
SSAD_STEP = "SSAD"
SDAD_STEP = "SDAD"
CDA_STEP = "CDA"
STATIC_STEP = "static data"
FDDA_STEP = "fDDA"

HEADER = 0x6A
TRAILER = 0xBC
PAD = 0xBB
HASH_SHA1 = 0x01  # Hash Algorithm Indicator, Book 2 Annex B2.3
PK_RSA = 0x01  # Public Key Algorithm Indicator, Book 2 Annex B2.4
HASH_LEN = 20

ISSUER_CERT_FORMAT = 0x02
ICC_CERT_FORMAT = 0x04
SSAD_FORMAT = 0x03
SDAD_FORMAT = 0x05
#: Visa qVSDC (Contactless Book C-3) signs fDDA dynamic data with Signed Data Format 95.
VISA_FDDA_SDAD_FORMAT = 0x95


class OdaError(Exception):
    """Offline data authentication failed; ``step`` names the object, ``reason`` what was
    wrong. ``str()`` gives both: ``"issuer certificate: hash mismatch"``."""

    def __init__(self, reason: str, step: str = "") -> None:
        super().__init__(f"{step}: {reason}" if step else reason)
        self.reason = reason
        self.step = step


# --- recovered keys -----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerPublicKey:
    """The issuer public key and the certificate fields it came with (Book 2 5.3 / 6.3)."""

    public_key: RsaPublicKey
    issuer_id: bytes  # 4 bytes, leftmost 3-8 PAN digits, F-padded
    expiry_mmyy: bytes
    serial: bytes
    hash_algorithm: int = HASH_SHA1
    pk_algorithm: int = PK_RSA

    @property
    def modulus_len(self) -> int:
        return self.public_key.modulus_len


@dataclass(frozen=True)
class IccPublicKey:
    """The ICC public key and the certificate fields it came with (Book 2 6.4)."""

    public_key: RsaPublicKey
    pan: bytes = field(repr=False)  # 10 bytes, F-padded
    expiry_mmyy: bytes
    serial: bytes
    hash_algorithm: int = HASH_SHA1
    pk_algorithm: int = PK_RSA

    @property
    def modulus_len(self) -> int:
        return self.public_key.modulus_len


@dataclass(frozen=True)
class CdaResult:
    """What a verified CDA signature carries (Book 2 6.6.2, Table 22)."""

    idn: bytes  # ICC Dynamic Number 9F4C
    cid: int  # Cryptogram Information Data 9F27
    ac: bytes  # Application Cryptogram 9F26 (8 bytes)
    transaction_data_hash: bytes  # 20 bytes


def _key_of(key: IssuerPublicKey | IccPublicKey | RsaPublicKey) -> RsaPublicKey:
    return key if isinstance(key, RsaPublicKey) else key.public_key


# --- small helpers ------------------------------------------------------------------------


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def pad_pan(pan: str, n: int) -> bytes:
    """PAN digits as ``n`` bytes of BCD, right-padded with F (cn format, Book 3 Annex A)."""
    if not pan.isdigit():
        raise ValueError("PAN must be decimal digits")
    if len(pan) > 2 * n:
        raise ValueError(f"PAN of {len(pan)} digits does not fit in {n} bytes")
    return bytes.fromhex(pan.ljust(2 * n, "F"))


def _pan_digits(pan: bytes | str) -> str:
    """Digits of a PAN given as the ``5A`` value (cn, F-padded) or as a digit string."""
    digits = pan.hex().upper().rstrip("F") if isinstance(pan, bytes | bytearray) else pan
    if not digits or not digits.isdigit():
        raise ValueError("PAN is not decimal digits (F-padded)")
    return digits


def _check_mmyy(mmyy: bytes) -> None:
    if len(mmyy) != 2 or not mmyy.hex().isdigit() or not 1 <= int(mmyy[:1].hex()) <= 12:
        raise ValueError(f"expiry date {mmyy.hex().upper()} is not MMYY")


def _check_expiry(mmyy: bytes, today: date, step: str) -> None:
    """Book 2 5.3 step 9 / 6.4 step 9: the certificate is valid to the last day of MMYY."""
    text = mmyy.hex().upper()
    try:
        _check_mmyy(mmyy)
    except ValueError:
        raise OdaError(f"certificate expiry {text} is not a valid MMYY", step) from None
    month, yy = int(text[:2]), int(text[2:])
    year = 2000 + yy if yy < 50 else 1900 + yy  # Book 3 Annex A: YY 00-49 is 20YY
    last_day = date(year, month, calendar.monthrange(year, month)[1])
    if last_day < today:
        raise OdaError(f"certificate expired (MMYY {text})", step)


def _recover(key: RsaPublicKey, signed: bytes, step: str, what: str, fmt: int | Container[int],
             min_len: int) -> bytes:
    """Book 2 5.3 / 6.3 / 6.4 / 5.4 / 6.5 steps 1-4: length N, recover, trailer BC, header 6A,
    format."""
    n = key.modulus_len
    if len(signed) != n:
        raise OdaError(f"{what} is {len(signed)} bytes, the key modulus is {n}", step)
    if n < min_len:
        raise OdaError(f"a {n}-byte key is too short for a {what} (at least {min_len})", step)
    try:
        rec = key.recover_raw(bytes(signed))
    except ValueError:
        raise OdaError(f"{what} value is not below the key modulus", step) from None
    if rec[-1] != TRAILER:
        raise OdaError(f"trailer is not BC ({rec[-1]:02X})", step)
    if rec[0] != HEADER:
        raise OdaError(f"header is not 6A ({rec[0]:02X})", step)
    formats = (fmt,) if isinstance(fmt, int) else fmt
    if rec[1] not in formats:
        raise OdaError(f"format is {rec[1]:02X}, expected "
                       + "/".join(f"{f:02X}" for f in formats), step)
    return rec


def _check_hash(recovered: bytes, hash_input: bytes, step: str) -> None:
    if not hmac.compare_digest(recovered, _sha1(hash_input)):
        raise OdaError("hash mismatch", step)


def _signed(key: RsaKey, body: bytes, hash_input_tail: bytes) -> bytes:
    """6A ‖ body ‖ SHA-1(body ‖ tail) ‖ BC, signed with the raw private operation."""
    msg = bytes([HEADER]) + body + _sha1(body + hash_input_tail) + bytes([TRAILER])
    return key.sign_raw(msg)


def _public_key_from(step: str, leftmost: bytes, remainder: bytes, length: int,
                     exponent: bytes, field_capacity: int) -> RsaPublicKey:
    """Book 2 5.3 step 12 / 6.4 step 11: the modulus is the leftmost digits (all of the
    field when N ≤ capacity, else all of it followed by the remainder)."""
    if length == 0:
        raise OdaError("public key length is 0", step)
    if length <= field_capacity:
        modulus = leftmost[:length]
    else:
        needed = length - field_capacity
        if len(remainder) != needed:
            raise OdaError(f"public key remainder is {len(remainder)} bytes, the key needs "
                           f"{needed}", step)
        modulus = leftmost + remainder
    if modulus[0] == 0:
        raise OdaError("public key modulus has a leading zero byte", step)
    try:
        return RsaPublicKey.from_bytes(modulus, exponent)
    except ValueError:
        raise OdaError("recovered public key is not a usable RSA key", step) from None


def _key_field(key: RsaPublicKey, capacity: int) -> tuple[bytes, bytes]:
    """Book 2 Table 6 / 14 field 10 and the remainder for a key of modulus N."""
    m = key.modulus
    if len(m) <= capacity:
        return m + bytes([PAD]) * (capacity - len(m)), b""
    return m[:capacity], m[capacity:]


def _check_serial(serial: bytes) -> None:
    if len(serial) != 3:
        raise ValueError(f"certificate serial number is 3 bytes, not {len(serial)}")


# --- issuer public key certificate (Book 2 5.3, 6.3) --------------------------------------


def create_issuer_certificate(ca_key: RsaKey, issuer_key: RsaPublicKey, issuer_id: bytes,
                              expiry_mmyy: bytes, serial: bytes) -> tuple[bytes, bytes]:
    """Sign the issuer public key with the CA key (Book 2 5.3, Table 6): returns the Issuer
    Public Key Certificate ``90`` (N_CA bytes) and the Issuer PK Remainder ``92`` (may be
    empty). The exponent ``9F32`` is ``exponent_bytes(issuer_key.e)``."""
    if len(issuer_id) != 4:
        raise ValueError(f"issuer identifier is 4 bytes, not {len(issuer_id)}")
    _check_mmyy(expiry_mmyy)
    _check_serial(serial)
    n_ca, n_i = ca_key.modulus_len, issuer_key.modulus_len
    if n_i > n_ca:
        raise ValueError(f"issuer key ({n_i} bytes) is longer than the CA key ({n_ca} bytes)")
    field, remainder = _key_field(issuer_key, n_ca - 36)
    exponent = issuer_key.exponent
    body = (bytes([ISSUER_CERT_FORMAT]) + bytes(issuer_id) + bytes(expiry_mmyy) + bytes(serial)
            + bytes([HASH_SHA1, PK_RSA, n_i, len(exponent)]) + field)
    return _signed(ca_key, body, remainder + exponent), remainder


def recover_issuer_public_key(capk: CaPublicKey, cert: bytes, remainder: bytes,
                              exponent: bytes, pan: bytes | str, today: date,
                              store: CapkStore | None = None) -> IssuerPublicKey:
    """Retrieve the issuer public key (Book 2 5.3 / 6.3): certificate length
    N_CA, trailer, header, format 02, hash over fields 2-10 ‖ remainder ‖ exponent, issuer
    identifier against the PAN ``5A``, expiry against ``today``, the CA revocation list of
    ``store`` (if given), the algorithm indicators and the remainder length."""
    step = ISSUER_STEP
    try:
        ca = capk.public_key()
    except ValueError:
        raise OdaError(f"CAPK {capk.label} is not a usable RSA key", step) from None
    cert, remainder, exponent = bytes(cert), bytes(remainder), bytes(exponent)
    rec = _recover(ca, cert, step, "certificate", ISSUER_CERT_FORMAT, 37)
    n_ca = len(rec)
    issuer_id, expiry, serial = rec[2:6], rec[6:8], rec[8:11]
    hash_algo, pk_algo, n_i, exp_len = rec[11], rec[12], rec[13], rec[14]
    field = rec[15 : n_ca - 21]
    if hash_algo != HASH_SHA1:
        raise OdaError(f"hash algorithm indicator {hash_algo:02X} is not recognised", step)
    _check_hash(rec[n_ca - 21 : n_ca - 1], rec[1 : n_ca - 21] + remainder + exponent, step)
    _check_issuer_id(issuer_id, pan, step)
    _check_expiry(expiry, today, step)
    if store is not None and store.is_revoked(capk.rid, capk.index, serial):
        raise OdaError(f"certificate serial {serial.hex().upper()} is on the CA revocation "
                       f"list of {capk.label}", step)
    if pk_algo != PK_RSA:
        raise OdaError(f"public key algorithm indicator {pk_algo:02X} is not recognised", step)
    if n_i > n_ca:
        raise OdaError(f"issuer key length {n_i} exceeds the CA key length {n_ca}", step)
    if exp_len != len(exponent):
        raise OdaError(f"exponent length is {exp_len} in the certificate, 9F32 has "
                       f"{len(exponent)} bytes", step)
    key = _public_key_from(step, field, remainder, n_i, exponent, n_ca - 36)
    return IssuerPublicKey(key, issuer_id, expiry, serial, hash_algo, pk_algo)


def _check_issuer_id(issuer_id: bytes, pan: bytes | str, step: str) -> None:
    """Book 2 5.3 step 8: the Issuer Identifier (3-8 digits, F-padded) matches the leftmost
    PAN digits."""
    text = issuer_id.hex().upper()
    digits = text.rstrip("F")
    if not 3 <= len(digits) <= 8 or not digits.isdigit():
        raise OdaError(f"issuer identifier {text} is not 3-8 digits padded with F", step)
    try:
        pan_digits = _pan_digits(pan)
    except ValueError:
        raise OdaError("PAN 5A is not decimal digits", step) from None
    if not pan_digits.startswith(digits):
        raise OdaError(f"issuer identifier {text} does not match the PAN", step)


# --- ICC public key certificate (Book 2 6.4) ----------------------------------------------


def create_icc_certificate(issuer_key: RsaKey, icc_key: RsaPublicKey, pan: bytes | str,
                           expiry_mmyy: bytes, serial: bytes, static_data: bytes
                           ) -> tuple[bytes, bytes]:
    """Sign the ICC public key with the issuer key (Book 2 6.4, Table 14): returns the ICC
    Public Key Certificate ``9F46`` (N_I bytes) and the ICC PK Remainder ``9F48`` (may be
    empty). ``pan`` is the ``5A`` value or the digits; the certificate holds it F-padded to
    10 bytes. The hash covers ``static_data`` (Book 3 10.3)."""
    _check_mmyy(expiry_mmyy)
    _check_serial(serial)
    n_i, n_ic = issuer_key.modulus_len, icc_key.modulus_len
    if n_ic > n_i:
        raise ValueError(f"ICC key ({n_ic} bytes) is longer than the issuer key ({n_i} bytes)")
    field, remainder = _key_field(icc_key, n_i - 42)
    exponent = icc_key.exponent
    body = (bytes([ICC_CERT_FORMAT]) + pad_pan(_pan_digits(pan), 10) + bytes(expiry_mmyy)
            + bytes(serial) + bytes([HASH_SHA1, PK_RSA, n_ic, len(exponent)]) + field)
    return _signed(issuer_key, body, remainder + exponent + bytes(static_data)), remainder


def recover_icc_public_key(issuer_pk: IssuerPublicKey | RsaPublicKey, cert: bytes,
                           remainder: bytes, exponent: bytes, static_data: bytes,
                           pan: bytes | str, today: date) -> IccPublicKey:
    """Retrieve the ICC public key (Book 2 6.4): certificate length N_I,
    trailer, header, format 04, hash over fields 2-10 ‖ remainder ‖ exponent ‖ static data,
    recovered PAN equal to ``5A``, expiry, algorithm indicator, remainder length."""
    step = ICC_STEP
    cert, remainder, exponent = bytes(cert), bytes(remainder), bytes(exponent)
    rec = _recover(_key_of(issuer_pk), cert, step, "certificate", ICC_CERT_FORMAT, 43)
    n_i = len(rec)
    cert_pan, expiry, serial = rec[2:12], rec[12:14], rec[14:17]
    hash_algo, pk_algo, n_ic, exp_len = rec[17], rec[18], rec[19], rec[20]
    field = rec[21 : n_i - 21]
    if hash_algo != HASH_SHA1:
        raise OdaError(f"hash algorithm indicator {hash_algo:02X} is not recognised", step)
    _check_hash(rec[n_i - 21 : n_i - 1],
                rec[1 : n_i - 21] + remainder + exponent + bytes(static_data), step)
    try:
        pan_ok = _pan_digits(cert_pan) == _pan_digits(pan)
    except ValueError:
        pan_ok = False
    if not pan_ok:
        raise OdaError("PAN does not match 5A", step)
    _check_expiry(expiry, today, step)
    if pk_algo != PK_RSA:
        raise OdaError(f"public key algorithm indicator {pk_algo:02X} is not recognised", step)
    if n_ic > n_i:
        raise OdaError(f"ICC key length {n_ic} exceeds the issuer key length {n_i}", step)
    if exp_len != len(exponent):
        raise OdaError(f"exponent length is {exp_len} in the certificate, 9F47 has "
                       f"{len(exponent)} bytes", step)
    key = _public_key_from(step, field, remainder, n_ic, exponent, n_i - 42)
    return IccPublicKey(key, cert_pan, expiry, serial, hash_algo, pk_algo)


# --- SDA: Signed Static Application Data (Book 2 5.4) -------------------------------------


def create_ssad(issuer_key: RsaKey, dac: bytes, static_data: bytes) -> bytes:
    """Signed Static Application Data ``93`` (Book 2 5.4, Table 7): 6A ‖ 03 ‖ hash algo ‖
    DAC ‖ BB pad ‖ SHA-1(fields 2-5 ‖ static data) ‖ BC, N_I bytes."""
    if len(dac) != 2:
        raise ValueError(f"data authentication code is 2 bytes, not {len(dac)}")
    n_i = issuer_key.modulus_len
    body = bytes([SSAD_FORMAT, HASH_SHA1]) + bytes(dac) + bytes([PAD]) * (n_i - 26)
    return _signed(issuer_key, body, bytes(static_data))


def recover_ssad(issuer_pk: IssuerPublicKey | RsaPublicKey, ssad: bytes, static_data: bytes
                 ) -> bytes:
    """Verify SDA (Book 2 5.4): length N_I, trailer, header, format 03, hash over fields 2-5
    ‖ static data. Returns the Data Authentication Code (``9F45``)."""
    step = SSAD_STEP
    rec = _recover(_key_of(issuer_pk), bytes(ssad), step, "signed static data", SSAD_FORMAT,
                   26)
    n = len(rec)
    if rec[2] != HASH_SHA1:
        raise OdaError(f"hash algorithm indicator {rec[2]:02X} is not recognised", step)
    _check_hash(rec[n - 21 : n - 1], rec[1 : n - 21] + bytes(static_data), step)
    return rec[3:5]


# --- DDA / fDDA / CDA: Signed Dynamic Application Data (Book 2 6.5, 6.6) -------------------


def sign_dynamic_data(icc_key: RsaKey, icc_dynamic_data: bytes, terminal_dynamic_data: bytes,
                      signed_data_format: int = SDAD_FORMAT) -> bytes:
    """Signed Dynamic Application Data ``9F4B`` (Book 2 6.5.1, Table 17): 6A ‖ 05 ‖ hash
    algo ‖ L_DD ‖ ICC dynamic data ‖ BB pad ‖ SHA-1(fields 2-6 ‖ terminal dynamic data) ‖
    BC, N_IC bytes. ``signed_data_format`` 95 makes a Visa C-3 fDDA signature."""
    n_ic = icc_key.modulus_len
    l_dd = len(icc_dynamic_data)
    if l_dd > n_ic - 25:
        raise ValueError(f"ICC dynamic data of {l_dd} bytes does not fit a {n_ic}-byte key")
    body = (bytes([signed_data_format, HASH_SHA1, l_dd]) + bytes(icc_dynamic_data)
            + bytes([PAD]) * (n_ic - l_dd - 25))
    return _signed(icc_key, body, bytes(terminal_dynamic_data))


def recover_dynamic_data(icc_pk: IccPublicKey | RsaPublicKey, sdad: bytes,
                         terminal_dynamic_data: bytes,
                         formats: Container[int] = (SDAD_FORMAT, VISA_FDDA_SDAD_FORMAT),
                         step: str = SDAD_STEP) -> bytes:
    """Verify a dynamic signature (Book 2 6.5.2 DDA / fDDA, and the signature part of 6.6.2
    CDA): length N_IC, trailer, header, format (05; Visa fDDA uses 95), hash algorithm, L_DD,
    hash over fields 2-6 ‖ terminal dynamic data. Returns the ICC Dynamic Data."""
    rec = _recover(_key_of(icc_pk), bytes(sdad), step, "signed dynamic data", formats, 25)
    n = len(rec)
    if rec[2] != HASH_SHA1:
        raise OdaError(f"hash algorithm indicator {rec[2]:02X} is not recognised", step)
    l_dd = rec[3]
    if l_dd > n - 25:
        raise OdaError(f"ICC dynamic data length {l_dd} does not fit a {n}-byte signature", step)
    _check_hash(rec[n - 21 : n - 1], rec[1 : n - 21] + bytes(terminal_dynamic_data), step)
    return rec[4 : 4 + l_dd]


def parse_idn(icc_dynamic_data: bytes, step: str = SDAD_STEP) -> bytes:
    """The ICC Dynamic Number ``9F4C`` from ICC dynamic data: its length (2-8) ‖ IDN ‖ ...
    (Book 2 6.5.1, Table 18)."""
    if not icc_dynamic_data:
        raise OdaError("ICC dynamic data is empty", step)
    n = icc_dynamic_data[0]
    if not 2 <= n <= 8 or len(icc_dynamic_data) < 1 + n:
        raise OdaError(f"ICC dynamic number length {n} is not 2-8 or exceeds the data", step)
    return bytes(icc_dynamic_data[1 : 1 + n])


def fdda_terminal_data(values: Mapping[int, bytes], version: int | bytes = 1) -> bytes:
    """The terminal dynamic data an fDDA signature covers (Contactless Book C-3 fDDA, C-7;
    Book 2 6.5): version 01 is 9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69; version 00 is 9F37 only.
    ``version`` is an int or the one-byte fDDA version (the first byte of ``9F69``)."""
    if isinstance(version, bytes | bytearray):
        version = int.from_bytes(version, "big") if len(version) == 1 else -1
    if version == 0:
        tags: tuple[int, ...] = (0x9F37,)
    elif version == 1:
        tags = (0x9F37, 0x9F02, 0x5F2A, 0x9F69)
    else:
        raise OdaError(f"fDDA version {version} is not supported", FDDA_STEP)
    missing = [f"{t:X}" for t in tags if t not in values]
    if missing:
        raise OdaError(f"{', '.join(missing)} missing for the fDDA terminal data", FDDA_STEP)
    return b"".join(bytes(values[t]) for t in tags)


def _raw_tlv_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, exact encoded bytes) of each top-level object, keeping the card's own length
    encoding (a re-encoding could differ and break the hash)."""
    out: list[tuple[int, bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] in (0x00, 0xFF):
            pos += 1
            continue
        start = pos
        tag, pos = _read_tag(data, pos, end)
        length, pos = _read_length(data, pos, end)
        if pos + length > end:
            raise TlvError(f"tag {tag:X} runs past the end", start)
        pos += length
        out.append((tag, data[start:pos]))
    return out


def _response_objects(response: bytes | Iterable[Tlv]) -> list[tuple[int, bytes]]:
    """The objects of a GENERATE AC response: a ``77`` template (bytes) is opened; a list of
    :class:`Tlv` is re-encoded."""
    if isinstance(response, bytes | bytearray):
        segments = _raw_tlv_segments(bytes(response))
        if len(segments) == 1 and segments[0][0] == 0x77:
            inner = segments[0][1]
            _, pos = _read_tag(inner, 0, len(inner))
            _, pos = _read_length(inner, pos, len(inner))
            segments = _raw_tlv_segments(inner[pos:])
        return segments
    tlvs = list(response)
    if len(tlvs) == 1 and tlvs[0].tag == 0x77 and tlvs[0].children is not None:
        tlvs = list(tlvs[0].children)
    return [(t.tag, t.encode()) for t in tlvs]


def cda_transaction_data_hash(pdol_data: bytes, cdol1_data: bytes, cdol2_data: bytes | None,
                              response_tlvs: bytes | Iterable[Tlv]) -> bytes:
    """Transaction Data Hash Code (Book 2 6.6.1): SHA-1 over the PDOL values ‖ the CDOL1
    values ‖ (on the second GENERATE AC) the CDOL2 values ‖ every TLV object of the GENERATE
    AC response except ``9F4B``, in the order received. ``response_tlvs`` is the response
    data (``77`` template or its content) or decoded objects."""
    objects = _response_objects(response_tlvs)
    parts = [bytes(pdol_data), bytes(cdol1_data), bytes(cdol2_data or b"")]
    parts += [raw for tag, raw in objects if tag != 0x9F4B]
    return _sha1(b"".join(parts))


def verify_cda(icc_pk: IccPublicKey | RsaPublicKey, response: bytes | Iterable[Tlv],
               unpredictable_number: bytes, pdol_data: bytes, cdol1_data: bytes,
               cdol2_data: bytes | None = None) -> CdaResult:
    """Combined DDA/AC generation, the terminal's check (Book 2 6.6.2): take ``9F4B`` and
    ``9F27`` from the GENERATE AC ``response`` (Format 2), recover the signature over the
    unpredictable number, check that the CID inside equals ``9F27``, and compare the
    Transaction Data Hash Code. Returns IDN, CID and the AC (which, in CDA, travels only
    inside the signature)."""
    step = CDA_STEP
    try:
        objects = _response_objects(response)
        flat: dict[int, bytes] = {}
        for obj in _decoded(objects):
            flat.setdefault(obj.tag, obj.value)
    except (TlvError, ValueError):
        raise OdaError("GENERATE AC response is not valid TLV", step) from None
    if 0x9F4B not in flat:
        raise OdaError("9F4B (signed dynamic application data) missing from the response", step)
    if 0x9F27 not in flat or len(flat[0x9F27]) != 1:
        raise OdaError("9F27 (cryptogram information data) missing from the response", step)
    dd = recover_dynamic_data(icc_pk, flat[0x9F4B], bytes(unpredictable_number),
                              (SDAD_FORMAT,), step)
    idn = parse_idn(dd, step)
    rest = dd[1 + len(idn):]
    if len(rest) < 1 + 8 + HASH_LEN:
        raise OdaError(f"ICC dynamic data of {len(dd)} bytes has no CID, AC and hash", step)
    cid, ac, tdhc = rest[0], rest[1:9], rest[9 : 9 + HASH_LEN]
    if cid != flat[0x9F27][0]:
        raise OdaError(f"CID in the signature ({cid:02X}) differs from 9F27 "
                       f"({flat[0x9F27][0]:02X})", step)
    try:
        expected = cda_transaction_data_hash(pdol_data, cdol1_data, cdol2_data, response)
    except (TlvError, ValueError):
        raise OdaError("GENERATE AC response is not valid TLV", step) from None
    if not hmac.compare_digest(expected, tdhc):
        raise OdaError("transaction data hash code mismatch", step)
    return CdaResult(idn, cid, ac, tdhc)


def _decoded(objects: list[tuple[int, bytes]]) -> list[Tlv]:
    out: list[Tlv] = []
    for _, raw in objects:
        out.extend(decode(raw))
    return out


# --- static data to be authenticated (Book 3 10.3) ----------------------------------------


def _record_value(record: bytes, sfi: int, number: int) -> bytes:
    """The value of a ``70`` record template; the record must be exactly that template."""
    where = f"record {number} of SFI {sfi}"
    if not record or record[0] != 0x70:
        raise OdaError(f"{where} is not a 70 template", STATIC_STEP)
    try:
        length, pos = _read_length(record, 1, len(record))
    except TlvError:
        raise OdaError(f"{where} has a bad 70 length", STATIC_STEP) from None
    if pos + length != len(record):
        raise OdaError(f"{where}: 70 length {length} does not match the record "
                       f"({len(record) - pos} bytes follow)", STATIC_STEP)
    return record[pos:]


def static_data_to_be_authenticated(afl: bytes | Sequence[AflEntry],
                                    records: Mapping[tuple[int, int], bytes], aip: bytes,
                                    sda_tag_list: bytes | None) -> bytes:
    """Book 3 10.3: the records the AFL marks for ODA, in AFL order (SFI 1-10: the value of
    the ``70`` template only, which must be one; SFI 11-30: the whole record), then the
    values of the tags in the SDA Tag List ``9F4A``, which may only contain ``82`` (AIP).
    ``records`` maps (SFI, record number) to the READ RECORD response data (no SW)."""
    if isinstance(afl, bytes | bytearray):
        try:
            entries: Sequence[AflEntry] = parse_afl(bytes(afl))
        except AflError as exc:
            raise OdaError(f"AFL: {exc}", STATIC_STEP) from None
    else:
        entries = afl
    parts: list[bytes] = []
    for entry in entries:
        for number in range(entry.first_record, entry.first_record + entry.oda_records):
            record = records.get((entry.sfi, number))
            if record is None:
                raise OdaError(f"record {number} of SFI {entry.sfi} was not read",
                               STATIC_STEP)
            record = bytes(record)
            parts.append(_record_value(record, entry.sfi, number) if entry.sfi <= 10
                         else record)
    if sda_tag_list:
        if bytes(sda_tag_list) != b"\x82":
            raise OdaError(f"SDA tag list {bytes(sda_tag_list).hex().upper()} holds tags other "
                           "than 82", STATIC_STEP)
        parts.append(bytes(aip))
    return b"".join(parts)

