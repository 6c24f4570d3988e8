"""Application cryptograms, issuer authentication and issuer script MACs (EMV 4.4 Book 2,
8.1, 8.2, 9.2 and Annex A1.2; PBOC CVN 01 from JR/T 0025.7; docs/emv-notes.md, Cryptogram versions).

Pure functions over keys and bytes; which key (ICC MK or a session key) goes in is the
caller's choice per CVN. Comparisons of cryptograms and MACs are constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from emvtap.des import des3_encrypt, retail_mac, xor

__all__ = [
    "PBOC_ARQC_TAGS",
    "PbocIad",
    "arpc_method_1",
    "arpc_method_2",
    "generate_ac",
    "parse_pboc_iad",
    "pboc_arqc_data",
    "pboc_cvr",
    "pboc_iad",
    "script_mac",
    "verify_ac",
    "verify_arpc_method_1",
    "verify_arpc_method_2",
    "verify_script_mac",
]

#: Book 2 Annex A, recommended minimum data for the AC, as PBOC CVN 01 takes it (then CVR).
PBOC_ARQC_TAGS: tuple[tuple[int, int], ...] = (
    (0x9F02, 6),
    (0x9F03, 6),
    (0x9F1A, 2),
    (0x95, 5),
    (0x5F2A, 2),
    (0x9A, 3),
    (0x9C, 1),
    (0x9F37, 4),
    (0x82, 2),
    (0x9F36, 2),
)


def _check_key(key: bytes) -> None:
    if len(key) != 16:
        raise ValueError(f"key must be 16 bytes (double length DES), not {len(key)}")


def generate_ac(key: bytes, data: bytes, padding: int = 2) -> bytes:
    """Application Cryptogram (ARQC, TC or AAC): ISO/IEC 9797-1 MAC algorithm 3 over the
    transaction data with ``padding`` method 1 or 2 (Book 2, 8.1.1 and A1.2). 8 bytes."""
    _check_key(key)
    return retail_mac(key, data, padding)


def verify_ac(key: bytes, data: bytes, ac: bytes, padding: int = 2) -> bool:
    """Recompute the AC and compare in constant time (Book 2, 8.1; the issuer's check)."""
    if len(ac) != 8:
        return False
    return hmac.compare_digest(generate_ac(key, data, padding), bytes(ac))


def arpc_method_1(key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1 (Book 2, 8.2.1): 3DES_K(ARQC xor (ARC ‖ 000000000000)), 8 bytes.
    Tag ``91`` is then ARPC ‖ ARC."""
    _check_key(key)
    if len(arqc) != 8:
        raise ValueError(f"ARQC must be 8 bytes, not {len(arqc)}")
    if len(arc) != 2:
        raise ValueError(f"ARC must be 2 bytes, not {len(arc)}")
    return des3_encrypt(key, xor(bytes(arqc), bytes(arc) + bytes(6)))


def arpc_method_2(key: bytes, arqc: bytes, csu: bytes, proprietary: bytes = b"") -> bytes:
    """ARPC method 2 (Book 2, 8.2.2): the first 4 bytes of MAC algorithm 3 (method 2 padding)
    over ARQC ‖ CSU ‖ Proprietary Authentication Data (0-8 bytes). Tag ``91`` is then
    ARPC ‖ CSU ‖ proprietary data."""
    _check_key(key)
    if len(arqc) != 8:
        raise ValueError(f"ARQC must be 8 bytes, not {len(arqc)}")
    if len(csu) != 4:
        raise ValueError(f"CSU must be 4 bytes, not {len(csu)}")
    if len(proprietary) > 8:
        raise ValueError(f"proprietary authentication data is 0-8 bytes, not {len(proprietary)}")
    return retail_mac(key, bytes(arqc) + bytes(csu) + bytes(proprietary), 2)[:4]


def verify_arpc_method_1(key: bytes, arqc: bytes, issuer_authentication_data: bytes) -> bool:
    """The card's check of tag ``91`` = ARPC (8) ‖ ARC (2) (Book 2, 8.2.1), constant time."""
    if len(issuer_authentication_data) != 10 or len(arqc) != 8:
        return False
    arpc, arc = issuer_authentication_data[:8], issuer_authentication_data[8:]
    return hmac.compare_digest(arpc_method_1(key, arqc, arc), bytes(arpc))


def verify_arpc_method_2(key: bytes, arqc: bytes, issuer_authentication_data: bytes) -> bool:
    """The card's check of tag ``91`` = ARPC (4) ‖ CSU (4) ‖ proprietary data (0-8)
    (Book 2, 8.2.2), constant time."""
    if not 8 <= len(issuer_authentication_data) <= 16 or len(arqc) != 8:
        return False
    arpc = issuer_authentication_data[:4]
    csu, prop = issuer_authentication_data[4:8], issuer_authentication_data[8:]
    return hmac.compare_digest(arpc_method_2(key, arqc, csu, prop), bytes(arpc))


def pboc_cvr(iad: bytes) -> bytes:
    """The CVR as PBOC CVN 01 MACs it: IAD bytes 4-7, the ``03`` length byte included."""
    if len(iad) < 7:
        raise ValueError(f"issuer application data of {len(iad)} bytes has no CVR")
    return bytes(iad[3:7])


def pboc_arqc_data(values: Mapping[int, bytes]) -> bytes:
    """PBOC / UnionPay CVN 01 AC input: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 ‖ CVR
    (IAD ``9F10`` bytes 4-7) (Book 2, 8.1.1 recommended minimum set; JR/T 0025.7).

    Raises ``KeyError`` naming the missing tag and ``ValueError`` for a wrong length.
    """
    parts: list[bytes] = []
    for tag, length in PBOC_ARQC_TAGS:
        if tag not in values:
            raise KeyError(f"tag {tag:02X} is missing for the PBOC AC data")
        value = bytes(values[tag])
        if len(value) != length:
            raise ValueError(f"tag {tag:02X} is {len(value)} bytes, PBOC AC data needs {length}")
        parts.append(value)
    if 0x9F10 not in values:
        raise KeyError("tag 9F10 is missing for the PBOC AC data")
    parts.append(pboc_cvr(values[0x9F10]))
    return b"".join(parts)


def script_mac(
    key: bytes, header_with_lc: bytes, atc: bytes, ac: bytes, data: bytes, length: int = 4
) -> bytes:
    """Issuer script command MAC (Book 2, 9.2.1): MAC algorithm 3, method 2 padding, over
    CLA INS P1 P2 Lc (Lc counting the MAC) ‖ ATC ‖ AC of the current transaction ‖ command
    data; the leftmost ``length`` (4-8) bytes. ``key`` is the secure-messaging integrity
    session key."""
    _check_key(key)
    if len(header_with_lc) != 5:
        raise ValueError(f"header with Lc must be 5 bytes, not {len(header_with_lc)}")
    if len(atc) != 2:
        raise ValueError(f"ATC must be 2 bytes, not {len(atc)}")
    if len(ac) != 8:
        raise ValueError(f"application cryptogram must be 8 bytes, not {len(ac)}")
    if not 4 <= length <= 8:
        raise ValueError(f"script MAC length is 4 to 8 bytes, not {length}")
    mac_input = bytes(header_with_lc) + bytes(atc) + bytes(ac) + bytes(data)
    return retail_mac(key, mac_input, 2)[:length]


def verify_script_mac(
    key: bytes, header_with_lc: bytes, atc: bytes, ac: bytes, data: bytes, mac: bytes
) -> bool:
    """The card's check of an issuer script command MAC (Book 2, 9.2.1), constant time."""
    if not 4 <= len(mac) <= 8:
        return False
    expected = script_mac(key, header_with_lc, atc, ac, data, len(mac))
    return hmac.compare_digest(expected, bytes(mac))


@dataclass(frozen=True)
class PbocIad:
    """PBOC CVN 01 Issuer Application Data ``9F10`` (JR/T 0025.7; docs/emv-notes.md)."""

    dki: int
    cvn: int
    cvr: bytes  # 4 bytes, the first being the CVR length 03
    algorithm: int  # 01 3DES, 04 SM4
    discretionary: bytes = b""  # issuer discretionary data, without its length byte


def pboc_iad(dki: int | bytes, cvr: bytes, algorithm: int = 1, discretionary: bytes = b"") -> bytes:
    """Build the PBOC CVN 01 IAD: ``07`` ‖ DKI ‖ ``01`` ‖ CVR (4 bytes, ``03`` first) ‖
    algorithm ID, then, if given, the issuer discretionary data length ‖ data (1-15 bytes)."""
    dki_byte = bytes(dki) if isinstance(dki, bytes | bytearray) else bytes([dki])
    if len(dki_byte) != 1:
        raise ValueError("DKI is one byte")
    if len(cvr) != 4 or cvr[0] != 0x03:
        raise ValueError("PBOC CVR is 4 bytes starting with its length 03")
    if not 0 <= algorithm <= 0xFF:
        raise ValueError("algorithm ID is one byte")
    out = b"\x07" + dki_byte + b"\x01" + bytes(cvr) + bytes([algorithm])
    if discretionary:
        if len(discretionary) > 15:
            raise ValueError("issuer discretionary data is at most 15 bytes")
        out += bytes([len(discretionary)]) + bytes(discretionary)
    return out


def parse_pboc_iad(iad: bytes) -> PbocIad:
    """Split a PBOC CVN 01 IAD (the layout :func:`pboc_iad` builds). ``ValueError`` when it is
    not one."""
    if len(iad) < 8:
        raise ValueError(f"PBOC IAD of {len(iad)} bytes (at least 8)")
    if iad[0] != 0x07:
        raise ValueError(f"PBOC IAD length byte is {iad[0]:02X}, expected 07")
    if iad[3] != 0x03:
        raise ValueError(f"PBOC CVR length byte is {iad[3]:02X}, expected 03")
    discretionary = b""
    if len(iad) > 8:
        n = iad[8]
        if len(iad) != 9 + n:
            raise ValueError(f"IAD discretionary data says {n} bytes, {len(iad) - 9} follow")
        discretionary = bytes(iad[9:])
    return PbocIad(iad[1], iad[2], bytes(iad[3:7]), iad[7], discretionary)
