"""Cryptogram versions: one row per CVN, used by the card to generate its cryptograms and by the
switch to verify them, and the Issuer Application Data (``9F10``) layouts the CVN is read from
(EMV 4.4 Book 2, 8.1, 8.2, 9.2, A1.2, A1.3; VIS 1.5 IAD; M/Chip 4 IAD; JR/T 0025 for PBOC).

IAD layouts (:data:`IAD_LAYOUTS`), each with an explicit rule:

======  =====================================  =============  ===========  ==================
layout  rule (all must hold)                   CVN            CVR          used by
======  =====================================  =============  ===========  ==================
vis     byte 1 = 06 or 07 (length of the VIS   byte 3         bytes 4-7    PBOC CVN 01,
        part), at least 1 + byte 1 bytes,                     (03 first)   Visa CVN 18
        byte 4 = 03 (CVR length)
mchip   18 bytes; byte 2 bits 8-5 = 0001 and   byte 2         bytes 3-8    Mastercard CVN 16
        bit 4 = 0 (M/Chip 4 / Advance CVN)
======  =====================================  =============  ===========  ==================

An IAD that reads validly in no layout has no CVN. One that reads validly in both (an 18-byte
PBOC IAD with a 9-byte discretionary part and DKI ``10``, say) is settled by the expected CVN
(the token's) and the rows this table has; if two readings remain it is refused as ambiguous.

Cryptogram versions (:data:`CRYPTOGRAM_VERSIONS`); "list" is 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37
82 9F36 (Book 2 Annex A1.2):

====  ======  ==========================  =======================  ===============  ==========
CVN   IAD     AC session key              MAC input, padding       ARPC (tag 91)    HCE
====  ======  ==========================  =======================  ===============  ==========
01    vis     PBOC: 3DES_MK(0…0‖ATC) ‖    list ‖ CVR (IAD bytes    method 1, the    yes
              3DES_MK(0…0‖ATC⊕FFFF)       4-7), method 2           session key
12    vis     EMV CSK, R = ATC‖0…0        list ‖ whole IAD,        method 2, CSU,   yes
              (Visa CVN 18)               method 2                 the session key
10    mchip   EMV CSK, R = ATC‖0000‖UN    list ‖ CVR (6, IAD       method 1, the    no
              (Mastercard CVN 16)         bytes 3-8), method 2     ICC MK AC
11    mchip   EMV CSK, R = ATC‖0…0        list ‖ CVR (6, IAD       method 1, the    yes
              (Mastercard cloud, a        bytes 3-8), method 2     session key
              single-use key per ATC)
====  ======  ==========================  =======================  ===============  ==========

The script MAC (secure-messaging) session key: PBOC derives it from MK-SMI with the ATC; Visa
CVN 18 uses the VIS 1.5 secure messaging key (MK-SMI with the ATC XORed in); Mastercard CVN 16
the EMV CSK with R = the ARQC (Book 2, 9.2 / A1.3).

"HCE" (``limited_use``): the AC session key depends on the ATC alone, so a TSP can derive it
before the transaction exists and send it to a wallet as a limited-use key; the CVN 16 key
depends on the terminal's unpredictable number and cannot work that way. CVN 11 is the
Mastercard-style cloud form (docs/domain.md, "Keys of the cloud-based cards"): the token service
derives one single-use session key per ATC, so the M/Chip flow runs on a phone without its master
key; the ARPC is then computed with that session key.

:meth:`CryptogramVersion.limited_use_keys` is what a token service sends for one ATC of a
limited-use row: the AC session key, and the script keys when they depend on the ATC alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from emvtap.cryptogram import (
    PBOC_ARQC_TAGS,
    arpc_method_1,
    arpc_method_2,
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
    "CRYPTOGRAM_VERSIONS",
    "IAD_LAYOUTS",
    "LIMITED_USE_CVN",
    "MCHIP_IAD_LENGTH",
    "MIN_IAD_LENGTH",
    "ArpcKey",
    "CryptogramVersion",
    "IadError",
    "IadLayout",
    "IssuerResponse",
    "MacCovers",
    "ac_input_list",
    "cryptogram_version",
    "detect_iad_layout",
    "exact_ac_input_list",
    "version_in_layout",
]


class IadError(ValueError):
    """An IAD the layouts cannot settle (it reads validly as two supported CVNs)."""


# --- IAD layouts ----------------------------------------------------------------------------------

#: the shortest IAD any layout can have (VIS: 06 ‖ DKI ‖ CVN ‖ CVR 4).
MIN_IAD_LENGTH = 7
#: M/Chip 4 / M/Chip Advance: DKI ‖ CVN ‖ CVR (6) ‖ DAC/ICC dynamic number (2) ‖ counters (8).
MCHIP_IAD_LENGTH = 18


def _vis_layout(iad: bytes) -> bool:
    """VIS 1.5 / JR/T 0025: length of the VIS part (06 Visa, 07 PBOC) ‖ DKI ‖ CVN ‖ CVR (4,
    its length 03 first) [‖ algorithm ID] [‖ discretionary data]."""
    return (
        len(iad) >= MIN_IAD_LENGTH
        and iad[0] in (0x06, 0x07)
        and len(iad) >= 1 + iad[0]
        and iad[3] == 0x03
    )


def _mchip_layout(iad: bytes) -> bool:
    """M/Chip: 18 bytes and a CVN byte of the M/Chip family - bits 8-5 ``0001`` (cryptogram
    version of M/Chip 4 and M/Chip Advance), bit 4 RFU ``0``: ``10``-``17``."""
    return len(iad) == MCHIP_IAD_LENGTH and iad[1] & 0xF8 == 0x10


class IadLayout(NamedTuple):
    name: str
    matches: Callable[[bytes], bool]  # the layout rule
    cvn_offset: int  # 0-based offset of the CVN byte
    cvr: slice  # the CVR as the cryptogram MACs it


IAD_LAYOUTS: dict[str, IadLayout] = {
    "vis": IadLayout("vis", _vis_layout, 2, slice(3, 7)),
    "mchip": IadLayout("mchip", _mchip_layout, 1, slice(2, 8)),
}


def detect_iad_layout(iad: bytes, expected_cvn: int | None = None) -> IadLayout | None:
    """The layout of ``iad`` by the rules of :data:`IAD_LAYOUTS`; ``None`` when no rule holds.

    When several hold, only the readings that name a CVN with a row *in that layout* and - if
    given - equal to ``expected_cvn`` remain; :class:`IadError` if that is not exactly one."""
    iad = bytes(iad)
    matching = [layout for layout in IAD_LAYOUTS.values() if layout.matches(iad)]
    if len(matching) <= 1:
        return matching[0] if matching else None
    narrowed = [
        layout
        for layout in matching
        if version_in_layout(layout.name, iad[layout.cvn_offset]) is not None
        and (expected_cvn is None or iad[layout.cvn_offset] == expected_cvn)
    ]
    if len(narrowed) != 1:
        readings = ", ".join(f"{f.name} CVN {iad[f.cvn_offset]:02X}" for f in matching)
        raise IadError(f"9F10 is ambiguous: it reads as {readings}")
    return narrowed[0]


# --- issuer authentication --------------------------------------------------------------------

#: Authorisation Response Codes that approve (ISO 8583 DE 39 in ASCII, Book 4 A6).
APPROVAL_ARCS = frozenset({b"00", b"10", b"11"})
#: Card Status Update byte 2 (VIS, Book 2 8.2.2): b8 approved, b7 card block, b6 app block.
CSU_APPROVED, CSU_CARD_BLOCK, CSU_APPLICATION_BLOCK = 0x80, 0x40, 0x20
#: The CSU the issuer sends (Book 2 8.2.2): approve, or decline without blocking.
CSU_ISSUER_APPROVED = bytes.fromhex("00820000")
CSU_ISSUER_DECLINED = bytes.fromhex("00000000")


@dataclass(frozen=True)
class IssuerResponse:
    """What the card reads from tag ``91`` once the ARPC is verified."""

    valid: bool
    approved: bool
    card_block: bool = False
    application_block: bool = False


class ArpcKey(StrEnum):
    """The key the ARPC is computed with."""

    SESSION = "session"  # the AC session key
    ICC_MASTER_KEY = "icc_mk"  # the ICC master key for AC


class MacCovers(StrEnum):
    """Which part of the IAD follows the Annex A1.2 list in the AC input."""

    CVR = "cvr"  # the layout's CVR slice
    IAD = "iad"  # the whole IAD


# --- the AC input -------------------------------------------------------------------------------


def ac_input_list(values: Mapping[int, bytes]) -> bytes:
    """Book 2 A1.2 recommended minimum data as the card MACs it: each tag zero-filled (or cut)
    to its length when the terminal's DOL did not carry it so."""
    return b"".join(bytes(values.get(tag, bytes(n)))[:n].ljust(n, b"\x00")
                    for tag, n in PBOC_ARQC_TAGS)


def exact_ac_input_list(values: Mapping[int, bytes]) -> bytes:
    """Book 2 A1.2 recommended minimum data as the issuer recomputes it: every tag present at
    its exact length (``KeyError`` / ``ValueError`` otherwise: the ARQC then fails to verify)."""
    parts = []
    for tag, length in PBOC_ARQC_TAGS:
        value = bytes(values[tag])
        if len(value) != length:
            raise ValueError(f"tag {tag:02X} is {len(value)} bytes, the AC data needs {length}")
        parts.append(value)
    return b"".join(parts)


# --- the rows -----------------------------------------------------------------------------------

SessionKey = Callable[[bytes, bytes, Mapping[int, bytes]], bytes]  # (MK AC, ATC, values) → SK
ScriptKey = Callable[[bytes, bytes, bytes], bytes]  # (MK SMI/SMC, ATC, ARQC) → SK


@dataclass(frozen=True)
class CryptogramVersion:
    """One cryptogram version: how the AC is computed and how the ARPC answers it."""

    cvn: int
    name: str
    iad_layout: str  # the IAD layout that carries this CVN (a key of IAD_LAYOUTS)
    build_iad: Callable[[int, bytes], bytes]  # (DKI, CVR) → 9F10
    mac_covers: MacCovers
    padding: int  # ISO 9797-1 padding method of the AC MAC
    ac_session_key: SessionKey
    arpc_method: int  # Book 2 8.2.1 / 8.2.2
    arpc_key: ArpcKey
    script_session_key: ScriptKey
    limited_use: bool  # AC session key depends on the ATC alone: an HCE wallet can use it
    script_key_per_atc: bool  # script keys depend on the ATC alone: a key batch can carry them
    default_gac_format: int  # 1: template 80; 2: template 77 (always 2 with CDA)

    @property
    def cvr_layout(self) -> str:
        """The CVR layout the card builds: the IAD layout's (``vis`` 4 bytes, ``mchip`` 6)."""
        return self.iad_layout

    @property
    def arpc_with_master_key(self) -> bool:
        return self.arpc_key is ArpcKey.ICC_MASTER_KEY

    def iad(self, dki: int, cvr: bytes) -> bytes:
        """The card's ``9F10`` for this CVN."""
        return self.build_iad(dki, cvr)

    def _iad_part(self, iad: bytes) -> bytes:
        if self.mac_covers is MacCovers.IAD:
            return bytes(iad)
        return bytes(iad[IAD_LAYOUTS[self.iad_layout].cvr])

    def mac_input(self, values: Mapping[int, bytes]) -> bytes:
        """The card's AC input (``values`` include ``9F10``), missing list tags zero-filled."""
        return ac_input_list(values) + self._iad_part(values[0x9F10])

    def mac_data(self, values: Mapping[int, bytes]) -> bytes:
        """The issuer's AC input: every list tag at its exact length (Book 2 8.1.2)."""
        return exact_ac_input_list(values) + self._iad_part(values[0x9F10])

    def session_key(self, master_key: bytes, atc: bytes, values: Mapping[int, bytes]) -> bytes:
        """The AC session key (Book 2 A1.3) from the ICC MK AC for ``atc``."""
        return self.ac_session_key(master_key, bytes(atc), values)

    def script_key(self, master_key: bytes, atc: bytes, arqc: bytes) -> bytes:
        """The secure-messaging session key from MK-SMI or MK-SMC (Book 2 9.2)."""
        return self.script_session_key(master_key, bytes(atc), bytes(arqc))

    def limited_use_keys(self, mk_ac: bytes, mk_smi: bytes, mk_smc: bytes, atc: int
                         ) -> dict[str, str]:
        """What a token service sends an HCE card for ``atc`` (docs/domain.md): the AC session
        key, and the script session keys when they depend on the ATC alone (hex)."""
        if not self.limited_use:
            raise ValueError(f"{self.name}: the session key needs more than the ATC")
        atc_b = atc.to_bytes(2, "big")
        keys = {"ac": self.session_key(mk_ac, atc_b, {}).hex().upper()}
        if self.script_key_per_atc:
            keys["smi"] = self.script_key(mk_smi, atc_b, b"").hex().upper()
            keys["smc"] = self.script_key(mk_smc, atc_b, b"").hex().upper()
        return keys

    def issuer_authentication(self, key: bytes, arqc: bytes, arc: bytes) -> bytes:
        """Tag ``91`` as the issuer sends it: ARPC ‖ ARC (method 1) or ARPC ‖ CSU (method 2,
        approving when ARC = ``00``)."""
        if self.arpc_method == 1:
            return arpc_method_1(key, arqc, arc) + arc
        csu = CSU_ISSUER_APPROVED if arc == b"00" else CSU_ISSUER_DECLINED
        return arpc_method_2(key, arqc, csu) + csu

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


def _pboc_iad(dki: int, cvr: bytes) -> bytes:
    """JR/T 0025 IAD: 07 ‖ DKI ‖ 01 ‖ CVR (4, 03 first) ‖ algorithm ID."""
    return pboc_iad(dki, cvr)


def _visa_iad(dki: int, cvr: bytes) -> bytes:
    """VIS IAD format 0/1 layout: length 06 ‖ DKI ‖ CVN 12 ‖ CVR (4 bytes, 03 first)."""
    return bytes([0x06, dki, 0x12]) + cvr


def _mchip_iad(dki: int, cvr: bytes) -> bytes:
    """M/Chip IAD: DKI ‖ CVN 10 ‖ CVR (6) ‖ DAC/ICC dynamic number (2) ‖ counters (8, zero for
    CVN 16, which does not MAC them) - 18 bytes."""
    return bytes([dki, 0x10]) + cvr + bytes(2) + bytes(8)


def _mchip_cloud_iad(dki: int, cvr: bytes) -> bytes:
    """The M/Chip IAD layout with CVN 11 (the cloud form, docs/domain.md) - 18 bytes."""
    return bytes([dki, 0x11]) + cvr + bytes(2) + bytes(8)


def _pboc_session_key(mk: bytes, atc: bytes, values: Mapping[int, bytes]) -> bytes:
    return derive_pboc_session_key(mk, atc)


def _visa_session_key(mk: bytes, atc: bytes, values: Mapping[int, bytes]) -> bytes:
    return derive_visa_session_key(mk, atc)


def _mastercard_session_key(mk: bytes, atc: bytes, values: Mapping[int, bytes]) -> bytes:
    return derive_mastercard_session_key(mk, atc, bytes(values[0x9F37]))


def _mastercard_cloud_session_key(mk: bytes, atc: bytes, values: Mapping[int, bytes]) -> bytes:
    """EMV CSK (Book 2 A1.3.1) with R = ATC ‖ 000000000000: no unpredictable number, so the
    token service can derive it ahead of the transaction."""
    return derive_emv_common_session_key(mk, bytes(atc) + bytes(6))


def _pboc_script_key(mk: bytes, atc: bytes, arqc: bytes) -> bytes:
    return derive_pboc_session_key(mk, atc)


def _csk_script_key(mk: bytes, atc: bytes, arqc: bytes) -> bytes:
    return derive_emv_common_session_key(mk, arqc)


def _visa_script_key(mk: bytes, atc: bytes, arqc: bytes) -> bytes:
    """VIS 1.5 secure messaging session key for CVN 18: MK-SMI with the ATC, not the ARQC."""
    return derive_visa_secure_messaging_session_key(mk, atc)


CRYPTOGRAM_VERSIONS: dict[int, CryptogramVersion] = {
    0x01: CryptogramVersion(
        0x01, "PBOC CVN 01", "vis", _pboc_iad, MacCovers.CVR, 2, _pboc_session_key,
        1, ArpcKey.SESSION, _pboc_script_key,
        limited_use=True, script_key_per_atc=True, default_gac_format=1,
    ),
    0x12: CryptogramVersion(
        0x12, "EMV CSK (Visa CVN 18)", "vis", _visa_iad, MacCovers.IAD, 2, _visa_session_key,
        2, ArpcKey.SESSION, _visa_script_key,
        limited_use=True, script_key_per_atc=False, default_gac_format=1,
    ),
    0x10: CryptogramVersion(
        0x10, "Mastercard CVN 16", "mchip", _mchip_iad, MacCovers.CVR, 2,
        _mastercard_session_key, 1, ArpcKey.ICC_MASTER_KEY, _csk_script_key,
        limited_use=False, script_key_per_atc=False, default_gac_format=2,
    ),
    0x11: CryptogramVersion(
        0x11, "Mastercard cloud CVN 17 (single-use key per ATC)", "mchip", _mchip_cloud_iad,
        MacCovers.CVR, 2, _mastercard_cloud_session_key, 1, ArpcKey.SESSION, _csk_script_key,
        limited_use=True, script_key_per_atc=False, default_gac_format=2,
    ),
}

#: the CVN a limited-use (HCE) form of a card uses in place of its SE form's CVN: a row whose
#: session key needs more than the ATC has a cloud counterpart here (docs/domain.md).
LIMITED_USE_CVN: dict[int, int] = {0x01: 0x01, 0x12: 0x12, 0x10: 0x11}


def cryptogram_version(cvn: int) -> CryptogramVersion:
    """The row for ``cvn``; ``ValueError`` for a CVN this table does not implement."""
    try:
        return CRYPTOGRAM_VERSIONS[cvn]
    except KeyError:
        raise ValueError(f"CVN {cvn:02X} is not implemented "
                         f"(known: {', '.join(f'{c:02X}' for c in CRYPTOGRAM_VERSIONS)})") from None


def version_in_layout(iad_layout: str | None, cvn: int | None) -> CryptogramVersion | None:
    """The row for ``cvn`` only if that CVN came in the row's IAD layout (a VIS IAD saying
    ``10`` is not a Mastercard cryptogram); ``None``: unsupported."""
    row = CRYPTOGRAM_VERSIONS.get(cvn) if cvn is not None else None
    return row if row is not None and row.iad_layout == iad_layout else None
