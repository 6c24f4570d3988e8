"""``emvtap hil record``: one tap of a real card or phone, saved as a redacted trace in the
format of the vendored traces (tests/data/README.md): ``source``, ``card``, ``interface``,
``notes`` and ``apdus`` (``{"c": command hex, "r": response hex}``).

Redaction happens on the bytes, before anything is written: the PAN (5A), track 2 (57, 9F6B:
the PAN's middle digits and the discretionary data), track 1 data (56, 9F1F, 9F20) and the
cardholder name (5F20) are overwritten in every command and response where their values
occur, keeping every length, so the trace still parses and replays. What the redaction
breaks (a signature or certificate over the PAN no longer verifies) is said in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emvtap.tlv import Tlv, TlvError, decode

__all__ = ["REDACTED_TAGS", "redact_apdus", "trace_of"]

#: Tags whose values are personal data, and what they are.
REDACTED_TAGS = {
    0x5A: "PAN",
    0x57: "track 2 equivalent data",
    0x9F6B: "track 2 data",
    0x56: "track 1 data",
    0x9F1F: "track 1 discretionary data",
    0x9F20: "track 2 discretionary data",
    0x5F20: "cardholder name",
}
_NAME = b"REDACTED"


def _mask_pan_digits(digits: str) -> str:
    """Keep the first 6 and the last 4 digits (the BIN and the PAN's end, as receipts do);
    the digits between become 0."""
    if len(digits) < 13:
        return "0" * len(digits)
    return digits[:6] + "0" * (len(digits) - 10) + digits[-4:]


def _redacted_value(tag: int, value: bytes) -> bytes:
    text = value.hex().upper()
    if tag == 0x5A:
        digits = text.rstrip("F")
        return bytes.fromhex(_mask_pan_digits(digits) + text[len(digits):])
    if tag in (0x57, 0x9F6B):
        pan, sep, rest = text.partition("D")
        if not sep:
            return bytes(len(value))
        kept = rest[:7]  # YYMM expiry and the service code
        body = rest[7:].rstrip("F")
        padding = rest[7 + len(body):]
        return bytes.fromhex(_mask_pan_digits(pan) + "D" + kept + "0" * len(body) + padding)
    if tag == 0x5F20:
        return (_NAME + b" " * len(value))[: len(value)]
    return b"0" * len(value)  # track 1 data: an/ans, zeros as text


def _walk(tlvs: list[Tlv]) -> list[Tlv]:
    found = []
    for tlv in tlvs:
        if tlv.children:
            found += _walk(list(tlv.children))
        elif tlv.tag in REDACTED_TAGS:
            found.append(tlv)
    return found


@dataclass
class Redaction:
    apdus: list[dict[str, str]]
    tags: list[str]  # what was found and overwritten


def redact_apdus(exchanges: list[tuple[bytes, bytes]]) -> Redaction:
    """The exchanges as trace entries, with every personal value overwritten everywhere."""
    replacements: dict[bytes, bytes] = {}
    tags: list[str] = []
    for _command, response in exchanges:
        try:
            tlvs = decode(response[:-2])
        except (TlvError, ValueError, IndexError):
            continue
        for tlv in _walk(tlvs):
            if tlv.value and tlv.value not in replacements:
                replacements[tlv.value] = _redacted_value(tlv.tag, tlv.value)
                name = f"{tlv.tag:X} ({REDACTED_TAGS[tlv.tag]})"
                if name not in tags:
                    tags.append(name)
    entries = []
    for command, response in exchanges:
        for clear, masked in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
            command = command.replace(clear, masked)
            response = response.replace(clear, masked)
        entries.append({"c": command.hex().upper(), "r": response.hex().upper()})
    return Redaction(entries, tags)


def trace_of(exchanges: list[tuple[bytes, bytes]], *, reader: str, card: str,
             outcome: str, reason: str, when: datetime | None = None) -> dict[str, Any]:
    """A trace document (tests/data/traces format) of one recorded tap, redacted."""
    redaction = redact_apdus(exchanges)
    when = when or datetime.now(UTC)
    notes = [
        f"recorded with `emvtap hil record` on {when:%Y-%m-%d}: {outcome} ({reason})",
        "redacted before writing: " + (", ".join(redaction.tags) or "nothing personal found")
        + "; the first 6 and last 4 PAN digits are kept, the rest are 0, so the PAN fails "
        "its Luhn check and signatures or certificates over these values no longer verify",
    ]
    return {
        "source": {"recorded_with": "emvtap hil record", "reader": reader,
                   "date": f"{when:%Y-%m-%d}"},
        "card": card,
        "interface": f"contactless ISO 14443-4, APDUs as the terminal exchanged them on {reader}",
        "notes": notes,
        "apdus": redaction.apdus,
    }
