"""Symmetric key derivation: ICC master keys and session keys (EMV 4.4 Book 2, Annex A1.3-A1.4;
JR/T 0025 for the PBOC session key; Mastercard M/Chip session key as a Book 2 A1.3.1 variant).

All derived keys are parity-adjusted (odd parity), as issuers and pyemv do; DES ignores the
parity bits, so this never changes a cryptogram. Keys are never logged.
"""

from __future__ import annotations

import hashlib

from emvtap.des import adjust_parity, des3_encrypt, xor

__all__ = [
    "derive_emv_common_session_key",
    "derive_icc_master_key",
    "derive_mastercard_session_key",
    "derive_pboc_session_key",
    "derive_visa_secure_messaging_session_key",
    "derive_visa_session_key",
    "pan_digits",
    "psn_digits",
]

_FF8 = b"\xff" * 8


def pan_digits(pan: str | bytes) -> str:
    """PAN as a digit string: a str is taken as is, bytes as the ``5A`` value (cn, F-padded)."""
    digits = pan.hex().upper().rstrip("F") if isinstance(pan, bytes | bytearray) else pan
    if not digits.isdigit() or not 1 <= len(digits) <= 19:
        raise ValueError("PAN must be 1 to 19 decimal digits")
    return digits


def psn_digits(psn: str | bytes | None) -> str:
    """PAN Sequence Number as two digits: ``"01"``, the ``5F34`` value ``b"\\x01"``, or
    ``None`` (no ``5F34`` on the card: ``00``, Book 2 A1.4)."""
    if psn is None:
        return "00"
    digits = psn.hex() if isinstance(psn, bytes | bytearray) else psn
    if not digits.isdigit() or len(digits) != 2:
        raise ValueError("PSN must be two decimal digits")
    return digits


def _check_mk(key: bytes, what: str) -> None:
    if len(key) != 16:
        raise ValueError(f"{what} must be a 16-byte (double length) DES key, not {len(key)} bytes")


def _derive_from_y(imk: bytes, y: bytes) -> bytes:
    """Book 2 A1.4.1: Z_L = 3DES_IMK(Y), Z_R = 3DES_IMK(Y xor FF..FF); MK = Z_L ‖ Z_R."""
    return adjust_parity(des3_encrypt(imk, y + xor(y, _FF8)))


def _option_a_y(pan: str, psn: str) -> bytes:
    """Book 2 A1.4.1 Option A: the rightmost 16 digits of PAN ‖ PSN, zero-filled on the left."""
    return bytes.fromhex((pan + psn)[-16:].rjust(16, "0"))


def _option_b_y(pan: str, psn: str) -> bytes:
    """Book 2 A1.4.2 Option B: SHA-1 over PAN ‖ PSN (a leading 0 when the digit count is
    odd), then 16 digits decimalised from the hash: its decimal digits left to right, then,
    if fewer than 16, its hex letters A-F mapped to 0-5, left to right."""
    x = pan + psn
    if len(x) % 2:
        x = "0" + x
    digest = hashlib.sha1(bytes.fromhex(x)).hexdigest().upper()
    digits = [c for c in digest if c.isdigit()]
    if len(digits) < 16:
        digits += [str("ABCDEF".index(c)) for c in digest if not c.isdigit()]
    return bytes.fromhex("".join(digits[:16]))


def derive_icc_master_key(
    imk: bytes, pan: str | bytes, psn: str | bytes | None, option: str | None = None
) -> bytes:
    """ICC Master Key from the Issuer Master Key (Book 2, A1.4).

    ``option`` ``"A"`` (A1.4.1) or ``"B"`` (A1.4.2); ``None`` picks A for PANs of at most 16
    digits and B for longer ones. Option B on a PAN of 16 digits or fewer is Option A, as the
    spec says.
    """
    _check_mk(imk, "issuer master key")
    digits, seq = pan_digits(pan), psn_digits(psn)
    if option is None:
        option = "A" if len(digits) <= 16 else "B"
    option = option.upper()
    if option == "A":
        y = _option_a_y(digits, seq)
    elif option == "B":
        y = _option_a_y(digits, seq) if len(digits) <= 16 else _option_b_y(digits, seq)
    else:
        raise ValueError(f"ICC master key derivation option must be A or B, not {option!r}")
    return _derive_from_y(imk, y)


def _check_atc(atc: bytes) -> None:
    if len(atc) != 2:
        raise ValueError(f"ATC must be 2 bytes, not {len(atc)}")


def derive_pboc_session_key(icc_mk: bytes, atc: bytes) -> bytes:
    """PBOC / UnionPay CVN 01 AC session key (JR/T 0025.7, the session key of the card):
    SK = 3DES_MK(000000000000 ‖ ATC) ‖ 3DES_MK(000000000000 ‖ (ATC xor FFFF))."""
    _check_mk(icc_mk, "ICC master key")
    _check_atc(atc)
    left = bytes(6) + bytes(atc)
    right = bytes(6) + xor(bytes(atc), b"\xff\xff")
    return adjust_parity(des3_encrypt(icc_mk, left + right))


def derive_emv_common_session_key(icc_mk: bytes, r: bytes) -> bytes:
    """EMV Common Session Key derivation (Book 2, A1.3.1): with the 8-byte diversification
    value R, SK_L = 3DES_MK(R0 R1 F0 R3..R7), SK_R = 3DES_MK(R0 R1 0F R3..R7).

    R is ATC ‖ 000000000000 for the AC key (Visa CVN 18/22) and the AC itself for the secure
    messaging keys (Book 2, 9.2)."""
    _check_mk(icc_mk, "ICC master key")
    if len(r) != 8:
        raise ValueError(f"diversification value R must be 8 bytes, not {len(r)}")
    r_l = bytes(r[:2]) + b"\xf0" + bytes(r[3:])
    r_r = bytes(r[:2]) + b"\x0f" + bytes(r[3:])
    return adjust_parity(des3_encrypt(icc_mk, r_l + r_r))


def derive_visa_session_key(icc_mk: bytes, atc: bytes) -> bytes:
    """Visa CVN 18/22 AC session key: EMV CSK (Book 2, A1.3.1) with R = ATC ‖ 000000000000."""
    _check_atc(atc)
    return derive_emv_common_session_key(icc_mk, bytes(atc) + bytes(6))


def derive_visa_secure_messaging_session_key(icc_mk: bytes, atc: bytes) -> bytes:
    """VIS 1.5 secure messaging session key (MAC and encipherment of issuer script commands,
    CVN 10 and CVN 18): the ICC master key with the ATC XORed into the last two bytes of
    its left half and the ATC XOR FFFF into the last two bytes of its right half -
    SK_L = MK_L xor (000000000000 ‖ ATC), SK_R = MK_R xor (000000000000 ‖ ATC xor FFFF)."""
    _check_mk(icc_mk, "ICC master key")
    _check_atc(atc)
    mask = bytes(6) + bytes(atc) + bytes(6) + xor(bytes(atc), b"\xff\xff")
    return adjust_parity(xor(bytes(icc_mk), mask))


def derive_mastercard_session_key(icc_mk: bytes, atc: bytes, un: bytes) -> bytes:
    """Mastercard M/Chip AC session key: EMV CSK (Book 2, A1.3.1) with
    R = ATC ‖ 0000 ‖ Unpredictable Number."""
    _check_atc(atc)
    if len(un) != 4:
        raise ValueError(f"unpredictable number must be 4 bytes, not {len(un)}")
    return derive_emv_common_session_key(icc_mk, bytes(atc) + bytes(2) + bytes(un))
