"""Masking of cardholder data in logs and traces (PCI DSS 3.4: first six and last four)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from emvtap.tags import SENSITIVE_TAGS
from emvtap.tlv import TlvError, _read_length, _read_tag, decode

__all__ = [
    "mask_pan",
    "mask_tag_value",
    "mask_text",
    "masked_repr",
    "redact_hex",
    "redact_tlv_bytes",
]

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
    if tag in (0x5A, 0x57, 0x9F20, 0x9F6B):
        head, sep, tail = hexv.partition("D")
        return mask_pan(head) + (sep + "*" * len(tail) if sep else "")
    return "*" * len(hexv)


def _redact_in_place(buf: bytearray, pos: int, end: int) -> None:
    """Overwrite the values of sensitive primitives between ``pos`` and ``end`` in ``buf``,
    leaving every tag, length and padding byte where it is (the input is known to decode)."""
    while pos < end:
        if buf[pos] in (0x00, 0xFF):  # padding between objects, Book 3 Annex B
            pos += 1
            continue
        start = pos
        tag, pos = _read_tag(buf, pos, end)
        length, pos = _read_length(buf, pos, end)
        if buf[start] & 0x20:
            _redact_in_place(buf, pos, pos + length)
        elif tag in SENSITIVE_TAGS:
            buf[pos : pos + length] = b"\xAA" * length
        pos += length


def redact_tlv_bytes(data: bytes) -> bytes:
    """The same TLV bytes with sensitive values overwritten (every tag, length and padding
    byte kept in place); input that is not BER-TLV is returned unchanged."""
    try:
        decode(data)
    except TlvError:
        return bytes(data)
    buf = bytearray(data)
    _redact_in_place(buf, 0, len(buf))
    return bytes(buf)


def redact_hex(data: bytes, pans: list[str]) -> str:
    """Hex of raw bytes (an APDU) with any BCD occurrence of the given PANs masked."""
    hexv = data.hex().upper()
    for pan in pans:
        if pan:
            pan = pan.upper()
            masked = mask_pan(pan)
            # keep the hex as long as it was: the F padding of an odd-length PAN stays
            hexv = hexv.replace(pan, masked + pan[len(masked):])
    return hexv


def masked_repr(obj: Any, pans: Iterable[str]) -> str:
    """The repr of dataclass ``obj`` with the PAN fields named in ``pans`` masked and the
    fields declared ``repr=False`` left out (a dataclass's own repr prints every field)."""
    pan_fields = frozenset(pans)
    parts = []
    for f in fields(obj):
        if not f.repr:
            continue
        value = getattr(obj, f.name)
        if f.name in pan_fields and isinstance(value, str):
            value = mask_pan(value)
        parts.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"
