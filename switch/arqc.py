"""The issuer's cryptogram work on DE 55: parse the ICC data, verify the ARQC with the token's
keys, build the ARPC (tag ``91``) and issuer scripts (templates ``71``/``72``).

format  rule (all must hold)                   CVN            CVR          used by
======  =====================================  =============  ===========  ==================
vis     byte 1 = 06 or 07 (length of the VIS   byte 3         bytes 4-7    PBOC CVN 01,
        part), at least 1 + byte 1 bytes,                     (03 first)   Visa CVN 18
        byte 4 = 03 (CVR length)
mchip   18 bytes; byte 2 bits 8-5 = 0001 and   byte 2         bytes 3-8    Mastercard CVN 16
        bit 4 = 0 (M/Chip 4 / Advance CVN)
======  =====================================  =============  ===========  ==================

An IAD that reads validly in no layout has no CVN (→ ``unsupported_cvn``). One that reads
validly in both (an 18-byte PBOC IAD with a 9-byte discretionary part and DKI ``10``, say) is
settled by the token's enrolled CVN (:func:`parse_icc_data` ``expected_cvn``) and the rows the
switch has; if that still leaves two readings, DE 55 is refused as ambiguous (→ 30).

Per cryptogram version, one row of :data:`CVN_METHODS` (docs/emv-notes.md; EMV Book 2 8.1,
8.2, 9.2, A1.3); "list" is 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 (Book 2 Annex A1.2):

====  ======  ==========================  =======================  ===============  ==========
CVN   IAD     AC session key              MAC input, padding       ARPC (tag 91)    HCE
====  ======  ==========================  =======================  ===============  ==========
01    vis     PBOC: 3DES_MK(0…0‖ATC) ‖    list ‖ CVR (IAD bytes    method 1, the    yes
              3DES_MK(0…0‖ATC⊕FFFF)       4-7), method 2           session key
12    vis     EMV CSK, R = ATC‖0…0        list ‖ whole IAD,        method 2, CSU,   yes
              (Visa CVN 18)               method 2                 the session key
10    mchip   EMV CSK, R = ATC‖0000‖UN    list ‖ CVR (6, IAD       method 1, the    no
              (Mastercard CVN 16)         bytes 3-8), method 2     ICC MK AC
====  ======  ==========================  =======================  ===============  ==========

The script MAC (secure-messaging integrity) session key follows the same family: PBOC derives it
from MK-SMI with the ATC; EMV CSK uses R = the ARQC (Book 2, 9.2 / A1.3).

HCE limited-use keys: the key the card used *is* the AC session key (the TSP derived it from the
token's MK for that ATC and sent it to the wallet); :func:`verify_arqc` takes the session key, so
both paths meet here. Only a CVN whose session key depends on the ATC alone can work that way
(column "HCE"): the CVN 16 key depends on the terminal's unpredictable number.
=======
Which CVN an IAD carries, and how each CVN's cryptogram is computed, is the core's one table
(:mod:`emvtap.cryptogram_versions`) - the same rows the card generates with. This module reads
DE 55 into :class:`IccData` and applies the row: verify the ARQC (constant time), build tag
``91`` and the issuer scripts. HCE limited-use keys: the key the card used *is* the AC session
key (the TSP derived it from the token's MK for that ATC and sent it to the wallet);
:func:`verify_arqc` takes the session key, so both paths meet here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emvtap import tlv
from emvtap.cryptogram import script_mac, verify_ac
from emvtap.cryptogram_versions import (
    IAD_LAYOUTS,
    MIN_IAD_LENGTH,
    CryptogramVersion,
    IadError,
    detect_iad_layout,
    version_in_layout,
)

__all__ = [
    "ARQC_TAGS",
    "IccData",
    "IccDataError",
    "application_block_script",
    "icc_cryptogram_version",
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


# --- DE 55 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IccData:
    """The cryptogram-relevant part of DE 55."""

    values: Mapping[int, bytes]
    arqc: bytes
    cid: int
    atc: bytes
    iad: bytes
    cvn: int | None  # None: the IAD is in no layout the switch reads
    iad_format: str | None = None

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

    @property
    def un(self) -> bytes:
        return bytes(self.values[0x9F37])

    @property
    def cvr(self) -> bytes:
        """The CVR as the cryptogram MACs it (VIS: 4 bytes with the 03; M/Chip: 6 bytes)."""
        if self.iad_format is None:
            raise ValueError("9F10 is in no known layout: no CVR")
        return bytes(self.iad[IAD_LAYOUTS[self.iad_format].cvr])


def parse_icc_data(de55: bytes, expected_cvn: int | None = None) -> IccData:
    """DE 55 → :class:`IccData`; ``expected_cvn`` (the token's CVN) settles an IAD that reads
    validly in two layouts (:func:`emvtap.cryptogram_versions.detect_iad_layout`)."""
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
    if len(iad) < MIN_IAD_LENGTH:
        raise IccDataError(f"9F10 of {len(iad)} bytes has no CVN and CVR")
    for tag in (0x9F02, 0x5F2A, 0x9A):
        if not values[tag].hex().isdigit():
            raise IccDataError(f"{tlv.tag_hex(tag)} is not BCD")
    try:
        fmt = detect_iad_layout(iad, expected_cvn)
    except IadError as exc:
        raise IccDataError(str(exc)) from None
    cvn = iad[fmt.cvn_offset] if fmt is not None else None
    return IccData(values, arqc, cid[0], atc, iad, cvn, fmt.name if fmt is not None else None)


# --- the CVN row ---------------------------------------------------------------------------------


def icc_cryptogram_version(icc: IccData) -> CryptogramVersion | None:
    """The row for the CVN of ``icc`` - only if that CVN came in the row's IAD layout (a VIS
    IAD saying ``10`` is not a Mastercard cryptogram); ``None``: unsupported."""
    return version_in_layout(icc.iad_format, icc.cvn)


def _method(icc: IccData) -> CryptogramVersion:
    method = icc_cryptogram_version(icc)
    if method is None:
        cvn = "none" if icc.cvn is None else f"{icc.cvn:02X}"
        raise ValueError(f"CVN {cvn} in a {icc.iad_format} IAD is not supported")
    return method


def verify_arqc(icc: IccData, session_key: bytes) -> bool:
    """Recompute the AC under ``session_key`` and compare in constant time (Book 2, 8.1)."""
    method = icc_cryptogram_version(icc)
    if method is None:
        return False
    try:
        data = method.mac_data(icc.values)
    except (KeyError, ValueError):
        return False
    return verify_ac(session_key, data, icc.arqc, method.padding)


def issuer_authentication_data(
    icc: IccData, session_key: bytes, response_code: str, icc_mk: bytes | None = None
) -> bytes:
    """Tag ``91`` value: the ARPC over the ARQC with ARC = DE 39 in ASCII (Book 2, 8.2), under
    the key the row names - the AC session key, or the ICC MK AC (``icc_mk``, CVN 16)."""
    method = _method(icc)
    key = icc_mk if method.arpc_with_master_key else session_key
    if key is None:
        raise ValueError(f"{method.name}: the ARPC needs the ICC master key")
    return method.issuer_authentication(key, icc.arqc, response_code.encode("ascii"))


#: APPLICATION BLOCK (Book 3, 10.10): CLA 84 INS 1E, no data, a 4-byte MAC.
APPLICATION_BLOCK = bytes.fromhex("841E0000")
APPLICATION_UNBLOCK = bytes.fromhex("84180000")
SCRIPT_MAC_LEN = 4


def script_command(icc: IccData, mk_smi: bytes, header: bytes, data: bytes = b"") -> bytes:
    """One ``86`` command: header ‖ Lc ‖ data ‖ MAC under the SM integrity session key."""
    key = _method(icc).script_key(mk_smi, icc.atc, icc.arqc)
    header_with_lc = header + bytes([len(data) + SCRIPT_MAC_LEN])
    mac = script_mac(key, header_with_lc, icc.atc, icc.arqc, data, SCRIPT_MAC_LEN)
    return header_with_lc + data + mac


def application_block_script(icc: IccData, mk_smi: bytes, template: int = 0x72) -> tlv.Tlv:
    """Template ``72`` (after the final GENERATE AC) with a script id (``9F18`` = ``0000`` ‖
    ATC) and one APPLICATION BLOCK command (Book 3, 10.10; Book 2, 9.2)."""
    return tlv.Tlv.template(
        template,
        [
            tlv.Tlv.primitive(0x9F18, b"\x00\x00" + icc.atc),
            tlv.Tlv.primitive(0x86, script_command(icc, mk_smi, APPLICATION_BLOCK)),
        ],
    )
