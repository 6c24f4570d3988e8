"""The issuer's cryptogram work on DE 55: parse the ICC data, verify the ARQC with the token's
keys, build the ARPC (tag ``91``) and issuer scripts (templates ``71``/``72``).

Per cryptogram version, one row of :data:`CVN_METHODS` (emv-digest §2.6, §4; EMV Book 2 8.1,
8.2, 9.2):

====  ==========================  ============================================  ===============
CVN   AC session key              MAC input, padding                            ARPC (tag 91)
====  ==========================  ============================================  ===============
01    PBOC: 3DES_MK(0…0‖ATC) ‖    9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36     method 1 with
      3DES_MK(0…0‖ATC⊕FFFF)       ‖ CVR (IAD bytes 4-7), method 2               the session key
12    EMV CSK, R = ATC‖0…0        same list ‖ whole IAD, method 2               method 2, CSU
      (Visa CVN 18 layout)
====  ==========================  ============================================  ===============

The script MAC (secure-messaging integrity) session key follows the same family: PBOC derives it
from MK-SMI with the ATC; EMV CSK uses R = the ARQC (Book 2, 9.2 / A1.3).

HCE limited-use keys: the key the card used *is* the AC session key (the TSP derived it from the
token's MK for that ATC and sent it to the wallet); :func:`verify_arqc` takes the session key, so
both paths meet here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from emvtap import tlv
from emvtap.cryptogram import (
    arpc_method_1,
    arpc_method_2,
    pboc_arqc_data,
    pboc_cvr,
    script_mac,
    verify_ac,
)
from emvtap.keys import (
    derive_emv_common_session_key,
    derive_pboc_session_key,
    derive_visa_session_key,
)

__all__ = [
    "ARQC_TAGS",
    "CVN_METHODS",
    "IccData",
    "IccDataError",
    "application_block_script",
    "issuer_authentication_data",
    "parse_icc_data",
    "verify_arqc",
]

#: tags the issuer needs in DE 55 of a 0100/0200 to verify the ARQC (Book 2 Annex A set).
ARQC_TAGS: tuple[int, ...] = (
    0x9F26,
    0x9F27,
    0x9F10,
    0x9F36,
    0x9F37,
    0x95,
    0x9A,
    0x9C,
    0x9F02,
    0x9F03,
    0x5F2A,
    0x82,
    0x9F1A,
)


class IccDataError(ValueError):
    """DE 55 that is not BER-TLV or lacks what the ARQC check needs (→ DE 39 = 30)."""


@dataclass(frozen=True)
class IccData:
    """The cryptogram-relevant part of DE 55."""

    values: Mapping[int, bytes]
    arqc: bytes
    cid: int
    atc: bytes
    iad: bytes
    cvn: int

    @property
    def atc_int(self) -> int:
        return int.from_bytes(self.atc, "big")

    @property
    def is_arqc(self) -> bool:
        """CID b8-b7 = 10 (Book 3, 6.5.5.4)."""
        return self.cid & 0xC0 == 0x80

    @property
    def amount(self) -> int:
        return int(self.values[0x9F02].hex())

    @property
    def currency(self) -> str:
        return self.values[0x5F2A].hex()[-3:]


def parse_icc_data(de55: bytes) -> IccData:
    try:
        objs = tlv.decode(de55)
    except tlv.TlvError as exc:
        raise IccDataError(f"DE 55 is not BER-TLV: {exc}") from None
    values = tlv.flatten(objs)
    missing = [tlv.tag_hex(t) for t in ARQC_TAGS if t not in values]
    if missing:
        raise IccDataError(f"DE 55 lacks {' '.join(missing)}")
    arqc, cid, atc, iad = values[0x9F26], values[0x9F27], values[0x9F36], values[0x9F10]
    if len(arqc) != 8 or len(cid) != 1 or len(atc) != 2:
        raise IccDataError("9F26/9F27/9F36 have the wrong length")
    if len(iad) < 7:
        raise IccDataError(f"9F10 of {len(iad)} bytes has no CVN and CVR")
    for tag in (0x9F02, 0x5F2A, 0x9A):
        if not values[tag].hex().isdigit():
            raise IccDataError(f"{tlv.tag_hex(tag)} is not BCD")
    return IccData(values, arqc, cid[0], atc, iad, iad[2])


class CvnMethod(NamedTuple):
    name: str
    session_key: Callable[[bytes, IccData], bytes]  # (ICC MK AC, icc) → AC session key
    mac_data: Callable[[IccData], bytes]
    padding: int
    issuer_authentication: Callable[[bytes, bytes, bytes], bytes]  # (SK, ARQC, ARC) → 91
    script_key: Callable[[bytes, IccData], bytes]  # (ICC MK SMI, icc) → SM integrity key


def _pboc_data(icc: IccData) -> bytes:
    return pboc_arqc_data(icc.values)


def _csk_data(icc: IccData) -> bytes:
    # the same Book 2 list as PBOC without the CVR, then the whole IAD (CVN 18 style)
    return pboc_arqc_data(icc.values)[: -len(pboc_cvr(icc.iad))] + icc.iad


def _arpc_1(key: bytes, arqc: bytes, arc: bytes) -> bytes:
    return arpc_method_1(key, arqc, arc) + arc


_CSU_APPROVED = bytes.fromhex("00820000")  # Book 2 8.2.2: "card status update": approve
_CSU_DECLINED = bytes.fromhex("00000000")


def _arpc_2(key: bytes, arqc: bytes, arc: bytes) -> bytes:
    csu = _CSU_APPROVED if arc == b"00" else _CSU_DECLINED
    return arpc_method_2(key, arqc, csu) + csu


CVN_METHODS: dict[int, CvnMethod] = {
    0x01: CvnMethod(
        "PBOC CVN 01",
        lambda mk, icc: derive_pboc_session_key(mk, icc.atc),
        _pboc_data,
        2,
        _arpc_1,
        lambda mk, icc: derive_pboc_session_key(mk, icc.atc),
    ),
    0x12: CvnMethod(
        "EMV CSK (CVN 18)",
        lambda mk, icc: derive_visa_session_key(mk, icc.atc),
        _csk_data,
        2,
        _arpc_2,
        lambda mk, icc: derive_emv_common_session_key(mk, icc.arqc),
    ),
}


def verify_arqc(icc: IccData, session_key: bytes) -> bool:
    """Recompute the AC under ``session_key`` and compare in constant time (Book 2, 8.1)."""
    method = CVN_METHODS[icc.cvn]
    try:
        data = method.mac_data(icc)
    except (KeyError, ValueError):
        return False
    return verify_ac(session_key, data, icc.arqc, method.padding)


def issuer_authentication_data(icc: IccData, session_key: bytes, response_code: str) -> bytes:
    """Tag ``91`` value: the ARPC over the ARQC with ARC = DE 39 in ASCII (Book 2, 8.2)."""
    return CVN_METHODS[icc.cvn].issuer_authentication(
        session_key, icc.arqc, response_code.encode("ascii")
    )


#: APPLICATION BLOCK (emv-digest §4): CLA 84 INS 1E, no data, a 4-byte MAC.
APPLICATION_BLOCK = bytes.fromhex("841E0000")
APPLICATION_UNBLOCK = bytes.fromhex("84180000")
SCRIPT_MAC_LEN = 4


def script_command(icc: IccData, mk_smi: bytes, header: bytes, data: bytes = b"") -> bytes:
    """One ``86`` command: header ‖ Lc ‖ data ‖ MAC under the SM integrity session key."""
    key = CVN_METHODS[icc.cvn].script_key(mk_smi, icc)
    header_with_lc = header + bytes([len(data) + SCRIPT_MAC_LEN])
    mac = script_mac(key, header_with_lc, icc.atc, icc.arqc, data, SCRIPT_MAC_LEN)
    return header_with_lc + data + mac


def application_block_script(icc: IccData, mk_smi: bytes, template: int = 0x72) -> tlv.Tlv:
    """Template ``72`` (after the final GENERATE AC) with a script id (``9F18`` = ``0000`` ‖
    ATC) and one APPLICATION BLOCK command (Book 3, 10.10; emv-digest §4)."""
    return tlv.Tlv.template(
        template,
        [
            tlv.Tlv.primitive(0x9F18, b"\x00\x00" + icc.atc),
            tlv.Tlv.primitive(0x86, script_command(icc, mk_smi, APPLICATION_BLOCK)),
        ],
    )
