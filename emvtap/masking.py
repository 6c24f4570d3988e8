"""Masking of cardholder data in logs and traces (PCI DSS 3.4: first six and last four)."""

from __future__ import annotations

import re

from emvtap.tags import SENSITIVE_TAGS
from emvtap.tlv import Tlv, TlvError, decode

__all__ = ["mask_pan", "mask_tag_value", "mask_text", "redact_hex", "redact_tlv_bytes"]

_PAN_IN_TEXT = re.compile(r"(?<!\d)(\d{6})(\d{3,9})(\d{4})(?!\d)")


def mask_pan(pan: str) -> str:
    """``6250941234567890`` → ``625094******7890``; anything shorter than 13 digits is hidden."""
    digits = pan.rstrip("F").rstrip("f")
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_text(text: str) -> str:
    """Mask every PAN-like run of 13-19 digits in free text."""
    return _PAN_IN_TEXT.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def mask_tag_value(tag: int, value: bytes) -> str:
    """Hex of ``value`` with the digits of a PAN, track data or name masked."""
    hexv = value.hex().upper()
    if tag not in SENSITIVE_TAGS:
        return hexv
    if tag in (0x5A, 0x57, 0x9F20):
        head, sep, tail = hexv.partition("D")
        return mask_pan(head) + (sep + "*" * len(tail) if sep else "")
    return "*" * len(hexv)


def _redact(tlvs: list[Tlv]) -> bytes:
    out = b""
    for t in tlvs:
        if t.children is not None:
            inner = _redact(list(t.children))
            out += Tlv(t.tag, inner, t.children).encode()
        elif t.tag in SENSITIVE_TAGS:
            out += Tlv.primitive(t.tag, b"\xAA" * len(t.value)).encode()
        else:
            out += t.encode()
    return out


def redact_tlv_bytes(data: bytes) -> bytes:
    """The same TLV bytes with sensitive values overwritten (lengths kept); non-TLV unchanged."""
    try:
        return _redact(decode(data))
    except TlvError:
        return data


def redact_hex(data: bytes, pans: list[str]) -> str:
    """Hex of raw bytes (an APDU) with any BCD occurrence of the given PANs masked."""
    hexv = data.hex().upper()
    for pan in pans:
        if pan:
            hexv = hexv.replace(pan.upper(), mask_pan(pan))
    return hexv
