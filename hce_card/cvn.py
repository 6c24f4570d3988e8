"""The card's cryptogram versions: one row of :data:`CVN_TABLE` per CVN, everything the card
computes with it (emv-digest §2.6, §3, §4; EMV 4.4 Book 2, 8.1, 8.2, 9.2, A1.3).

======  =========================  ===========================  ==========  ===================
CVN     AC session key             MAC input                    ARPC (91)   script MAC key
======  =========================  ===========================  ==========  ===================
01      PBOC: from MK-AC and ATC   list ‖ CVR (IAD bytes 4-7)   method 1,   PBOC SK from MK-SMI
        (JR/T 0025)                                             session key and ATC
12      EMV CSK, R = ATC‖0…0       list ‖ whole IAD             method 2,   VIS 1.5: MK-SMI xor
        (Visa CVN 18 layout)                                    session key ATC (0…0‖ATC, 0…0‖~ATC)
10      Mastercard SKD, R =        list ‖ CVR (6 bytes,         method 1,   EMV CSK, R = ARQC
        ATC‖0000‖UN (CVN 16)       IAD bytes 3-8)               ICC MK
======  =========================  ===========================  ==========  ===================

"list" is the Book 2 Annex A1.2 recommended set: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36.
The switch (``switch/arqc.py``) holds rows 01, 10 and 12 with the same definitions; an HCE wallet
can only use a CVN whose session keys depend on the ATC alone (``limited_use``), because the
TSP derives them before the transaction exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from emvtap.cryptogram import (
    PBOC_ARQC_TAGS,
    pboc_iad,
    verify_arpc_method_1,
    verify_arpc_method_2,
)
from emvtap.keys import (
    derive_emv_common_session_key,
    derive_mastercard_session_key,
    derive_pboc_session_key,
    derive_visa_secure_messaging_session_key,
    derive_visa_session_key,
)

__all__ = [
    "APPROVAL_ARCS",
    "CVN_TABLE",
    "CvnMethod",
    "IssuerResponse",
    "ac_input_list",
    "cvn_method",
]

#: Authorisation Response Codes that approve (ISO 8583 DE 39 in ASCII, Book 4 A6).
APPROVAL_ARCS = frozenset({b"00", b"10", b"11"})
#: Card Status Update byte 2 (VIS, Book 2 8.2.2): b8 approved, b7 card block, b6 app block.
CSU_APPROVED, CSU_CARD_BLOCK, CSU_APPLICATION_BLOCK = 0x80, 0x40, 0x20


def ac_input_list(values: Mapping[int, bytes]) -> bytes:
    """Book 2 A1.2 recommended minimum data, each tag zero-filled when the terminal did not
    send it (a DOL without it), in the order the issuer recomputes it."""
    return b"".join(bytes(values.get(tag, bytes(n)))[:n].ljust(n, b"\x00")
                    for tag, n in PBOC_ARQC_TAGS)


@dataclass(frozen=True)
class IssuerResponse:
    """What the card reads from tag ``91`` once the ARPC is verified."""

    valid: bool
    approved: bool
    card_block: bool = False
    application_block: bool = False


@dataclass(frozen=True)
class CvnMethod:
    cvn: int
    name: str
    cvr_layout: str  # "vis" (4 bytes, 03 first) or "mchip" (6 bytes)
    iad: Callable[[int, bytes], bytes]  # (DKI, CVR) → 9F10
    mac_input: Callable[[Mapping[int, bytes]], bytes]  # values incl. 82 9F36 9F10
    padding: int
    session_key: Callable[[bytes, bytes, Mapping[int, bytes]], bytes]  # (MK-AC, ATC, values)
    arpc_method: int
    arpc_with_master_key: bool
    script_key: Callable[[bytes, bytes, bytes], bytes]  # (MK-SMI/SMC, ATC, ARQC) → SK
    limited_use: bool  # AC session key depends on the ATC alone: an HCE wallet can use it
    script_key_per_atc: bool  # script keys depend on the ATC alone: a key batch can carry them
    default_gac_format: int  # 1: template 80; 2: template 77 (always 2 with CDA)

    def check_arpc(self, key: bytes, arqc: bytes, issuer_authentication_data: bytes
                   ) -> IssuerResponse:
        """Issuer authentication (Book 2 8.2; Book 3 10.9): verify the ARPC in ``91`` and read
        the issuer's decision from the ARC (method 1) or the CSU (method 2)."""
        data = bytes(issuer_authentication_data)
        if self.arpc_method == 1:
            if not verify_arpc_method_1(key, arqc, data):
                return IssuerResponse(False, False)
            return IssuerResponse(True, data[8:10] in APPROVAL_ARCS)
        if not verify_arpc_method_2(key, arqc, data):
            return IssuerResponse(False, False)
        csu2 = data[5]
        return IssuerResponse(True, bool(csu2 & CSU_APPROVED), bool(csu2 & CSU_CARD_BLOCK),
                              bool(csu2 & CSU_APPLICATION_BLOCK))


def _visa_iad(dki: int, cvr: bytes) -> bytes:
    """VIS IAD format 0/1 layout: length 06 ‖ DKI ‖ CVN ‖ CVR (4 bytes, 03 first)."""
    return bytes([0x06, dki, 0x12]) + cvr


def _mchip_iad(dki: int, cvr: bytes) -> bytes:
    """M/Chip IAD: DKI ‖ CVN ‖ CVR (6) ‖ DAC/ICC dynamic number (2) ‖ counters (8, zero for
    CVN 16, which does not MAC them) - 18 bytes."""
    return bytes([dki, 0x10]) + cvr + bytes(2) + bytes(8)


def _csk_script_key(mk: bytes, atc: bytes, arqc: bytes) -> bytes:
    return derive_emv_common_session_key(mk, arqc)


def _visa_script_key(mk: bytes, atc: bytes, arqc: bytes) -> bytes:
    """VIS 1.5 secure messaging session key for CVN 18 (the ATC, not the ARQC)."""
    return derive_visa_secure_messaging_session_key(mk, atc)


CVN_TABLE: dict[int, CvnMethod] = {
    0x01: CvnMethod(
        0x01, "PBOC CVN 01", "vis", lambda dki, cvr: pboc_iad(dki, cvr),
        lambda v: ac_input_list(v) + bytes(v[0x9F10][3:7]), 2,
        lambda mk, atc, v: derive_pboc_session_key(mk, atc),
        1, False,
        lambda mk, atc, arqc: derive_pboc_session_key(mk, atc),
        True, True, 1,
    ),
    0x12: CvnMethod(
        0x12, "Visa CVN 18 (EMV CSK)", "vis", _visa_iad,
        lambda v: ac_input_list(v) + bytes(v[0x9F10]), 2,
        lambda mk, atc, v: derive_visa_session_key(mk, atc),
        2, False, _visa_script_key,
        True, False, 1,
    ),
    0x10: CvnMethod(
        0x10, "Mastercard CVN 16", "mchip", _mchip_iad,
        lambda v: ac_input_list(v) + bytes(v[0x9F10][2:8]), 2,
        lambda mk, atc, v: derive_mastercard_session_key(mk, atc, bytes(v[0x9F37])),
        1, True, _csk_script_key,
        False, False, 2,
    ),
}


def cvn_method(cvn: int) -> CvnMethod:
    """The row for ``cvn``; ``ValueError`` for a CVN this card does not implement."""
    try:
        return CVN_TABLE[cvn]
    except KeyError:
        raise ValueError(f"CVN {cvn:02X} is not implemented by the card "
                         f"(known: {', '.join(f'{c:02X}' for c in CVN_TABLE)})") from None
