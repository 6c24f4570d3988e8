"""Bit maps of EMV qualifiers and results, as data: TTQ, CTQ, AIP, TVR, TSI, CID.

Each bit is ``Bit(byte, mask)`` with ``byte`` counted from 1 as the specs do. Sources:
TTQ/CTQ - EMV Contactless Book C-3 Annex A and C-7 (the qPBOC names: docs/emv-notes.md);
AIP, TVR, TSI - EMV 4.4 Book 3 Annex C1, C5, C6; CID - Book 3, 6.5.5.4.
"""

from __future__ import annotations

import enum
from typing import ClassVar, NamedTuple

__all__ = ["AIP", "CID", "CTQ", "TSI", "TTQ", "TVR", "Bit", "CryptogramType", "is_set", "names",
           "set_bits"]


class Bit(NamedTuple):
    byte: int  # 1-based
    mask: int
    name: str


def is_set(value: bytes, bit: Bit) -> bool:
    return len(value) >= bit.byte and bool(value[bit.byte - 1] & bit.mask)


def set_bits(value: bytes | bytearray, *bits: Bit) -> bytes:
    out = bytearray(value)
    for b in bits:
        out[b.byte - 1] |= b.mask
    return bytes(out)


def names(value: bytes, table: type) -> list[str]:
    """Names of the bits of ``table`` (a namespace of Bit) set in ``value``."""
    return [b.name for b in vars(table).values() if isinstance(b, Bit) and is_set(value, b)]


class TTQ:
    """Terminal Transaction Qualifiers, 9F66 (reader → card)."""

    MSD_SUPPORTED = Bit(1, 0x80, "MSD supported")
    FULL_PBOC_SUPPORTED = Bit(1, 0x40, "contactless full PBOC / VSDC supported")
    QPBOC_SUPPORTED = Bit(1, 0x20, "qPBOC / qVSDC supported")
    CONTACT_SUPPORTED = Bit(1, 0x10, "contact chip supported")
    OFFLINE_ONLY_READER = Bit(1, 0x08, "offline-only reader")
    ONLINE_PIN_SUPPORTED = Bit(1, 0x04, "online PIN supported")
    SIGNATURE_SUPPORTED = Bit(1, 0x02, "signature supported")
    ODA_FOR_ONLINE_SUPPORTED = Bit(1, 0x01, "ODA for online authorisations supported")
    ONLINE_CRYPTOGRAM_REQUIRED = Bit(2, 0x80, "online cryptogram required")
    CVM_REQUIRED = Bit(2, 0x40, "CVM required")
    CONTACT_OFFLINE_PIN_SUPPORTED = Bit(2, 0x20, "offline PIN supported (contact)")
    ISSUER_UPDATE_SUPPORTED = Bit(3, 0x80, "issuer update processing supported")
    CDCVM_SUPPORTED = Bit(3, 0x40, "consumer device CVM supported")
    FDDA_V01_SUPPORTED = Bit(4, 0x80, "fDDA version 01 supported")


class CTQ:
    """Card Transaction Qualifiers, 9F6C (card → reader)."""

    ONLINE_PIN_REQUIRED = Bit(1, 0x80, "online PIN required")
    SIGNATURE_REQUIRED = Bit(1, 0x40, "signature required")
    GO_ONLINE_IF_ODA_FAILS = Bit(1, 0x20, "go online if ODA fails")
    SWITCH_INTERFACE_IF_ODA_FAILS = Bit(1, 0x10, "switch interface if ODA fails")
    GO_ONLINE_IF_EXPIRED = Bit(1, 0x08, "go online if application expired")
    SWITCH_INTERFACE_FOR_CASH = Bit(1, 0x04, "switch interface for cash")
    SWITCH_INTERFACE_FOR_CASHBACK = Bit(1, 0x02, "switch interface for cashback")
    CDCVM_PERFORMED = Bit(2, 0x80, "consumer device CVM performed")
    ISSUER_UPDATE_SUPPORTED = Bit(2, 0x40, "card supports issuer update processing")


class AIP:
    """Application Interchange Profile, 82."""

    SDA_SUPPORTED = Bit(1, 0x40, "SDA supported")
    DDA_SUPPORTED = Bit(1, 0x20, "DDA supported")
    CARDHOLDER_VERIFICATION_SUPPORTED = Bit(1, 0x10, "cardholder verification supported")
    TERMINAL_RISK_MANAGEMENT = Bit(1, 0x08, "terminal risk management to be performed")
    ISSUER_AUTHENTICATION_SUPPORTED = Bit(1, 0x04, "issuer authentication supported")
    ON_DEVICE_CVM_SUPPORTED = Bit(1, 0x02, "on-device cardholder verification supported")
    CDA_SUPPORTED = Bit(1, 0x01, "CDA supported")


class TVR:
    """Terminal Verification Results, 95."""

    ODA_NOT_PERFORMED = Bit(1, 0x80, "offline data authentication was not performed")
    SDA_FAILED = Bit(1, 0x40, "SDA failed")
    ICC_DATA_MISSING = Bit(1, 0x20, "ICC data missing")
    CARD_ON_EXCEPTION_FILE = Bit(1, 0x10, "card appears on terminal exception file")
    DDA_FAILED = Bit(1, 0x08, "DDA failed")
    CDA_FAILED = Bit(1, 0x04, "CDA failed")
    SDA_SELECTED = Bit(1, 0x02, "SDA selected")
    VERSIONS_DIFFER = Bit(2, 0x80, "ICC and terminal have different application versions")
    EXPIRED_APPLICATION = Bit(2, 0x40, "expired application")
    NOT_YET_EFFECTIVE = Bit(2, 0x20, "application not yet effective")
    SERVICE_NOT_ALLOWED = Bit(2, 0x10, "requested service not allowed for card product")
    NEW_CARD = Bit(2, 0x08, "new card")
    CARDHOLDER_VERIFICATION_FAILED = Bit(3, 0x80, "cardholder verification was not successful")
    UNRECOGNISED_CVM = Bit(3, 0x40, "unrecognised CVM")
    PIN_TRY_LIMIT_EXCEEDED = Bit(3, 0x20, "PIN try limit exceeded")
    PIN_PAD_NOT_PRESENT = Bit(3, 0x10, "PIN required but PIN pad not present or not working")
    PIN_NOT_ENTERED = Bit(3, 0x08, "PIN required, PIN pad present, but PIN was not entered")
    ONLINE_PIN_ENTERED = Bit(3, 0x04, "online PIN entered")
    EXCEEDS_FLOOR_LIMIT = Bit(4, 0x80, "transaction exceeds floor limit")
    LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED = Bit(
        4, 0x40, "lower consecutive offline limit exceeded"
    )
    UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED = Bit(
        4, 0x20, "upper consecutive offline limit exceeded"
    )
    RANDOMLY_SELECTED_ONLINE = Bit(4, 0x10, "transaction selected randomly for online processing")
    MERCHANT_FORCED_ONLINE = Bit(4, 0x08, "merchant forced transaction online")
    DEFAULT_TDOL_USED = Bit(5, 0x80, "default TDOL used")
    ISSUER_AUTHENTICATION_FAILED = Bit(5, 0x40, "issuer authentication failed")
    SCRIPT_FAILED_BEFORE_FINAL_GENAC = Bit(
        5, 0x20, "script processing failed before final GENERATE AC"
    )
    SCRIPT_FAILED_AFTER_FINAL_GENAC = Bit(
        5, 0x10, "script processing failed after final GENERATE AC"
    )


class TSI:
    """Transaction Status Information, 9B."""

    ODA_PERFORMED = Bit(1, 0x80, "offline data authentication was performed")
    CARDHOLDER_VERIFICATION_PERFORMED = Bit(1, 0x40, "cardholder verification was performed")
    CARD_RISK_MANAGEMENT_PERFORMED = Bit(1, 0x20, "card risk management was performed")
    ISSUER_AUTHENTICATION_PERFORMED = Bit(1, 0x10, "issuer authentication was performed")
    TERMINAL_RISK_MANAGEMENT_PERFORMED = Bit(1, 0x08, "terminal risk management was performed")
    SCRIPT_PROCESSING_PERFORMED = Bit(1, 0x04, "script processing was performed")


class CryptogramType(enum.IntEnum):
    """The application cryptogram a terminal asks for and a card returns: EMV 4.4 Book 3,
    6.5.5.2 Table 12 (GENERATE AC P1 b8-b7) and 6.5.5.4 Table 14 (CID 9F27 b8-b7) code it
    alike; the fourth value, 11 (AAR), is RFU and no member. The value is that coding, so a
    member goes into P1 or the CID as it is; ``str`` and f-strings give the name."""

    AAC = 0x00
    TC = 0x40
    ARQC = 0x80

    @classmethod
    def of(cls, coded: int) -> CryptogramType:
        """The type coded in b8-b7 of a CID or a GENERATE AC P1 (ValueError for RFU 11)."""
        return cls(coded & 0xC0)

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return self.name if not spec else int.__format__(self, spec)


class CID:
    """Cryptogram Information Data, 9F27: b8-b7 are the cryptogram type
    (:class:`CryptogramType`)."""

    TYPE_MASK = 0xC0
    AAC = CryptogramType.AAC
    TC = CryptogramType.TC
    ARQC = CryptogramType.ARQC
    NAMES: ClassVar[dict[int, str]] = {AAC: "AAC", TC: "TC", ARQC: "ARQC", 0xC0: "AAR"}

    @staticmethod
    def type_of(cid: int) -> str:
        return CID.NAMES[cid & CID.TYPE_MASK]
