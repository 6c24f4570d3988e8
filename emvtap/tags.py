"""The EMV data dictionary: tag → name and format (EMV 4.4 Book 3 Annex A, Book 4 Annex A,
Contactless Books C-3/C-7, JR/T 0025), and a pretty-printer for decoded TLV."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from emvtap.tlv import Tlv, tag_hex


class TagInfo(NamedTuple):
    name: str
    fmt: str  # b binary, n numeric BCD, cn compressed numeric, an/ans text, t template


#: tag → (name, format); one row per data element, as the spec names it.
TAGS: dict[int, TagInfo] = {
    0x42: TagInfo("Issuer Identification Number", "n"),
    0x4F: TagInfo("Application Identifier (AID)", "b"),
    0x50: TagInfo("Application Label", "ans"),
    0x56: TagInfo("Track 1 Data", "ans"),
    0x57: TagInfo("Track 2 Equivalent Data", "b"),
    0x5A: TagInfo("Application PAN", "cn"),
    0x61: TagInfo("Application Template", "t"),
    0x6F: TagInfo("File Control Information (FCI) Template", "t"),
    0x70: TagInfo("READ RECORD Response Message Template", "t"),
    0x71: TagInfo("Issuer Script Template 1", "t"),
    0x72: TagInfo("Issuer Script Template 2", "t"),
    0x73: TagInfo("Directory Discretionary Template", "t"),
    0x77: TagInfo("Response Message Template Format 2", "t"),
    0x80: TagInfo("Response Message Template Format 1", "b"),
    0x82: TagInfo("Application Interchange Profile", "b"),
    0x83: TagInfo("Command Template", "b"),
    0x84: TagInfo("Dedicated File (DF) Name", "b"),
    0x86: TagInfo("Issuer Script Command", "b"),
    0x87: TagInfo("Application Priority Indicator", "b"),
    0x88: TagInfo("Short File Identifier (SFI)", "b"),
    0x89: TagInfo("Authorisation Code", "an"),
    0x8A: TagInfo("Authorisation Response Code", "an"),
    0x8C: TagInfo("CDOL1", "b"),
    0x8D: TagInfo("CDOL2", "b"),
    0x8E: TagInfo("CVM List", "b"),
    0x8F: TagInfo("Certification Authority Public Key Index", "b"),
    0x90: TagInfo("Issuer Public Key Certificate", "b"),
    0x91: TagInfo("Issuer Authentication Data", "b"),
    0x92: TagInfo("Issuer Public Key Remainder", "b"),
    0x93: TagInfo("Signed Static Application Data", "b"),
    0x94: TagInfo("Application File Locator (AFL)", "b"),
    0x95: TagInfo("Terminal Verification Results", "b"),
    0x97: TagInfo("TDOL", "b"),
    0x98: TagInfo("TC Hash Value", "b"),
    0x99: TagInfo("Transaction PIN Data", "b"),
    0x9A: TagInfo("Transaction Date", "n"),
    0x9B: TagInfo("Transaction Status Information", "b"),
    0x9C: TagInfo("Transaction Type", "n"),
    0x9D: TagInfo("DDF Name", "b"),
    0xA5: TagInfo("FCI Proprietary Template", "t"),
    0x5F20: TagInfo("Cardholder Name", "ans"),
    0x5F24: TagInfo("Application Expiration Date", "n"),
    0x5F25: TagInfo("Application Effective Date", "n"),
    0x5F28: TagInfo("Issuer Country Code", "n"),
    0x5F2A: TagInfo("Transaction Currency Code", "n"),
    0x5F2D: TagInfo("Language Preference", "an"),
    0x5F30: TagInfo("Service Code", "n"),
    0x5F34: TagInfo("Application PAN Sequence Number", "n"),
    0x5F36: TagInfo("Transaction Currency Exponent", "n"),
    0x5F50: TagInfo("Issuer URL", "ans"),
    0x5F53: TagInfo("IBAN", "b"),
    0x5F54: TagInfo("Bank Identifier Code", "b"),
    0x5F55: TagInfo("Issuer Country Code (alpha2)", "a"),
    0x5F56: TagInfo("Issuer Country Code (alpha3)", "a"),
    0x9F01: TagInfo("Acquirer Identifier", "n"),
    0x9F02: TagInfo("Amount, Authorised (Numeric)", "n"),
    0x9F03: TagInfo("Amount, Other (Numeric)", "n"),
    0x9F06: TagInfo("Application Identifier (AID) - terminal", "b"),
    0x9F07: TagInfo("Application Usage Control", "b"),
    0x9F08: TagInfo("Application Version Number (card)", "b"),
    0x9F09: TagInfo("Application Version Number (terminal)", "b"),
    0x9F0A: TagInfo("Application Selection Registered Proprietary Data", "b"),
    0x9F0B: TagInfo("Cardholder Name Extended", "ans"),
    0x9F0D: TagInfo("Issuer Action Code - Default", "b"),
    0x9F0E: TagInfo("Issuer Action Code - Denial", "b"),
    0x9F0F: TagInfo("Issuer Action Code - Online", "b"),
    0x9F10: TagInfo("Issuer Application Data", "b"),
    0x9F11: TagInfo("Issuer Code Table Index", "n"),
    0x9F12: TagInfo("Application Preferred Name", "ans"),
    0x9F13: TagInfo("Last Online ATC Register", "b"),
    0x9F14: TagInfo("Lower Consecutive Offline Limit", "b"),
    0x9F15: TagInfo("Merchant Category Code", "n"),
    0x9F16: TagInfo("Merchant Identifier", "ans"),
    0x9F17: TagInfo("PIN Try Counter", "b"),
    0x9F18: TagInfo("Issuer Script Identifier", "b"),
    0x9F19: TagInfo("Token Requestor ID", "n"),
    0x9F1A: TagInfo("Terminal Country Code", "n"),
    0x9F1B: TagInfo("Terminal Floor Limit", "b"),
    0x9F1C: TagInfo("Terminal Identification", "an"),
    0x9F1D: TagInfo("Terminal Risk Management Data", "b"),
    0x9F1E: TagInfo("Interface Device Serial Number", "an"),
    0x9F1F: TagInfo("Track 1 Discretionary Data", "ans"),
    0x9F20: TagInfo("Track 2 Discretionary Data", "cn"),
    0x9F21: TagInfo("Transaction Time", "n"),
    0x9F23: TagInfo("Upper Consecutive Offline Limit", "b"),
    0x9F24: TagInfo("Payment Account Reference (PAR)", "an"),
    0x9F25: TagInfo("Last 4 Digits of PAN", "n"),
    0x9F26: TagInfo("Application Cryptogram", "b"),
    0x9F27: TagInfo("Cryptogram Information Data", "b"),
    0x9F29: TagInfo("Extended Selection", "b"),
    0x9F2A: TagInfo("Kernel Identifier", "b"),
    0x9F2D: TagInfo("ICC PIN Encipherment Public Key Certificate", "b"),
    0x9F2E: TagInfo("ICC PIN Encipherment Public Key Exponent", "b"),
    0x9F2F: TagInfo("ICC PIN Encipherment Public Key Remainder", "b"),
    0x9F32: TagInfo("Issuer Public Key Exponent", "b"),
    0x9F33: TagInfo("Terminal Capabilities", "b"),
    0x9F34: TagInfo("Cardholder Verification Method (CVM) Results", "b"),
    0x9F35: TagInfo("Terminal Type", "n"),
    0x9F36: TagInfo("Application Transaction Counter (ATC)", "b"),
    0x9F37: TagInfo("Unpredictable Number", "b"),
    0x9F38: TagInfo("Processing Options Data Object List (PDOL)", "b"),
    0x9F39: TagInfo("Point-of-Service (POS) Entry Mode", "n"),
    0x9F3A: TagInfo("Amount, Reference Currency", "b"),
    0x9F3B: TagInfo("Application Reference Currency", "n"),
    0x9F3C: TagInfo("Transaction Reference Currency Code", "n"),
    0x9F3D: TagInfo("Transaction Reference Currency Exponent", "n"),
    0x9F40: TagInfo("Additional Terminal Capabilities", "b"),
    0x9F41: TagInfo("Transaction Sequence Counter", "n"),
    0x9F42: TagInfo("Application Currency Code", "n"),
    0x9F43: TagInfo("Application Reference Currency Exponent", "n"),
    0x9F44: TagInfo("Application Currency Exponent", "n"),
    0x9F45: TagInfo("Data Authentication Code", "b"),
    0x9F46: TagInfo("ICC Public Key Certificate", "b"),
    0x9F47: TagInfo("ICC Public Key Exponent", "b"),
    0x9F48: TagInfo("ICC Public Key Remainder", "b"),
    0x9F49: TagInfo("Dynamic Data Authentication Data Object List (DDOL)", "b"),
    0x9F4A: TagInfo("Static Data Authentication Tag List", "b"),
    0x9F4B: TagInfo("Signed Dynamic Application Data", "b"),
    0x9F4C: TagInfo("ICC Dynamic Number", "b"),
    0x9F4D: TagInfo("Log Entry", "b"),
    0x9F4E: TagInfo("Merchant Name and Location", "ans"),
    0x9F4F: TagInfo("Log Format", "b"),
    0x9F51: TagInfo("Application Currency Code (PBOC)", "n"),
    0x9F52: TagInfo("Application Default Action", "b"),
    0x9F53: TagInfo("Consecutive Transaction Limit (International)", "b"),
    0x9F56: TagInfo("Issuer Authentication Indicator", "b"),
    0x9F57: TagInfo("Issuer Country Code", "n"),
    0x9F5A: TagInfo("Application Program Identifier", "b"),
    0x9F5B: TagInfo("Issuer Script Results", "b"),
    0x9F5D: TagInfo("Available Offline Spending Amount", "b"),
    0x9F61: TagInfo("Cardholder ID Number", "an"),
    0x9F62: TagInfo("Cardholder ID Type", "cn"),
    0x9F63: TagInfo("Card Product Identification Information", "b"),
    0x9F66: TagInfo("Terminal Transaction Qualifiers (TTQ)", "b"),
    0x9F69: TagInfo("Card Authentication Related Data", "b"),
    0x9F6B: TagInfo("Track 2 Data", "b"),
    0x9F6C: TagInfo("Card Transaction Qualifiers (CTQ)", "b"),
    0x9F6D: TagInfo("Contactless Reader Capabilities", "b"),
    0x9F6E: TagInfo("Form Factor Indicator / Third Party Data", "b"),
    0x9F74: TagInfo("Electronic Cash Issuer Authorisation Code", "a"),
    0x9F77: TagInfo("Electronic Cash Balance Limit", "n"),
    0x9F79: TagInfo("Electronic Cash Balance", "n"),
    0x9F7C: TagInfo("Customer Exclusive Data", "b"),
    0x9F7F: TagInfo("Card Production Life Cycle (CPLC) Data", "b"),
    0x9F0C: TagInfo("Issuer Identification Number Extended", "n"),
    0x9F50: TagInfo("Offline Accumulator Balance", "n"),
    0xBF0C: TagInfo("FCI Issuer Discretionary Data", "t"),
    0xDF8120: TagInfo("Terminal Action Code - Default", "b"),
    0xDF8121: TagInfo("Terminal Action Code - Denial", "b"),
    0xDF8122: TagInfo("Terminal Action Code - Online", "b"),
    0xDF8129: TagInfo("Outcome Parameter Set", "b"),
}

#: tags whose values identify the cardholder: masked in traces unless the user asks otherwise
#: (PAN, track data, names, the PBOC cardholder ID number, PIN data).
SENSITIVE_TAGS: frozenset[int] = frozenset(
    {0x5A, 0x57, 0x56, 0x5F20, 0x9F0B, 0x9F1F, 0x9F20, 0x9F61, 0x9F6B, 0x99}
)


def tag_name(tag: int) -> str:
    info = TAGS.get(tag)
    return info.name if info else "unknown"


def _render_value(tag: int, value: bytes) -> str:
    info = TAGS.get(tag)
    hexv = value.hex().upper()
    if info and info.fmt in ("an", "ans", "a") and value and all(0x20 <= b < 0x7F for b in value):
        return f"{hexv} '{value.decode('ascii')}'"
    return hexv


def pretty(
    tlvs: Iterable[Tlv], mask: Callable[[int, bytes], str] | None = None, *, indent: int = 0
) -> str:
    """Human-readable tree with tag names. ``mask(tag, value) -> str`` may redact values; a
    value the mask leaves as plain hex is rendered as without a mask (text shown)."""
    lines: list[str] = []
    for t in tlvs:
        pad = "  " * indent
        head = f"{pad}{tag_hex(t.tag)} {tag_name(t.tag)} [{len(t.value)}]"
        if t.children is not None:
            lines.append(head)
            if t.children:
                lines.append(pretty(t.children, mask, indent=indent + 1))
        else:
            shown = mask(t.tag, t.value) if mask else t.value.hex().upper()
            if shown == t.value.hex().upper():
                shown = _render_value(t.tag, t.value)
            lines.append(f"{head} {shown}")
    return "\n".join(lines)
