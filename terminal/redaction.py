"""The tap record never shows the PAN or track 2 in clear (PCI DSS 3.4), whatever the card
answered: redaction does not depend on the answer parsing as BER-TLV.

Two steps, both on by default (``--clear-pan`` turns them off):

- every card answer is scanned, byte by byte, for what looks like a PAN (5A) or track 2
  (57) data object - a tag byte, a length, 12 to 19 BCD digits - even when the answer as a
  whole is not BER-TLV (a template one byte too long, a truncated record); what is found is
  masked in that answer's hex and remembered for every later one;
- at the end of the tap every hex and text field of the record (APDUs, steps, reason) is
  masked again with every PAN and track 2 the tap met, so an answer written before its PAN
  was known is covered too.

A PAN keeps its first six and last four digits (:func:`emvtap.masking.mask_pan`); the rest of
track 2 after the separator (expiry, service code, discretionary data) becomes ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from emvtap.masking import mask_pan

__all__ = ["CardholderData", "cardholder_data", "scan_answer"]

#: Track 2 in hex without its tag: PAN ‖ D ‖ YYMM (Book 3, Annex A, 57); the digits before
#: the PAN (a length byte that reads as decimal) may be taken with it - the masking then hides
#: a little more, never less.
_TRACK2_IN_HEX = re.compile(r"([0-9]{12,21})D([0-9]{4}[0-9D]*)")
_TRACK2_TAIL = re.compile(r"[0-9D]*")
_PAN_TAGS = {0x5A: 10, 0x57: 19}  # tag → the most bytes its value has


def _digits(hex_text: str) -> str:
    out = []
    for ch in hex_text:
        if not ch.isdigit():
            break
        out.append(ch)
    return "".join(out)


@dataclass
class CardholderData:
    """The PANs and track 2 values one tap met, and the masking of text with them."""

    pans: set[str] = field(default_factory=set)
    track2_tails: set[str] = field(default_factory=set)  # after the D separator

    def add_pan(self, pan: str) -> None:
        """A PAN - or the value of a 5A / the head of a 57 with a nibble or two that are not
        digits (a corrupted answer still shows the rest of the PAN)."""
        pan = pan.upper().rstrip("F")
        digits = sum(c.isdigit() for c in pan)
        if 12 <= len(pan) <= 21 and digits >= len(pan) - 2 and all(
                c in "0123456789ABCDEF" for c in pan):
            self.pans.add(pan)

    def add_track2(self, track2_hex: str) -> None:
        head, sep, tail = track2_hex.upper().partition("D")
        self.add_pan(head)
        tail = _TRACK2_TAIL.match(tail).group(0)  # up to the F padding or what follows
        if sep and len(tail) >= 7:  # YYMM and the service code at least
            self.track2_tails.add(tail)

    def note(self, data: bytes) -> None:
        """Remember what :func:`scan_answer` finds in ``data``."""
        pans, tracks = scan_answer(data)
        for pan in pans:
            self.add_pan(pan)
        for track in tracks:
            self.add_track2(track)

    def mask(self, text: str) -> str:
        """``text`` (hex or prose) with every known PAN and track 2 tail masked, in upper
        and lower case, keeping its length (PANs first: a track 2 tail never hides the start
        of a PAN that follows it)."""
        for pan in sorted(self.pans, key=len, reverse=True):
            masked = mask_pan(pan)
            for form in {pan, pan.lower()}:
                text = text.replace(form, masked)
            # whatever follows a PAN and a track 2 separator is the rest of track 2
            text = re.sub("(" + re.escape(masked) + r"[Dd])([0-9Dd]+)",
                          lambda m: m.group(1) + "*" * len(m.group(2)), text)
        for tail in sorted(self.track2_tails, key=len, reverse=True):
            text = text.replace("D" + tail, "D" + "*" * len(tail)).replace(
                "d" + tail, "d" + "*" * len(tail))
        return text

    def mask_record(self, record: Any) -> Any:
        """The same JSON-like value with every string masked."""
        if isinstance(record, str):
            return self.mask(record)
        if isinstance(record, list):
            return [self.mask_record(v) for v in record]
        if isinstance(record, dict):
            return {k: self.mask_record(v) for k, v in record.items()}
        return record


def scan_answer(data: bytes) -> tuple[list[str], list[str]]:
    """The PANs and track 2 values (hex) that ``data`` seems to hold, found without parsing
    it as a whole: at every 5A or 57 byte, the next byte as a length and up to that many
    bytes of BCD digits (12-19 of them); and any hex run PAN ‖ D ‖ YYMM."""
    pans: list[str] = []
    tracks: list[str] = []
    n = len(data)
    for i in range(n - 1):
        longest = _PAN_TAGS.get(data[i])
        if longest is None:
            continue
        value = data[i + 2:i + 2 + min(data[i + 1], longest)]
        text = value.hex().upper()
        digits = _digits(text)[:19]  # a lost separator: the PAN is still the first digits
        if len(digits) >= 12:
            if data[i] == 0x57 and text[len(digits):len(digits) + 1] == "D":
                tracks.append(text)
            else:
                pans.append(digits)
        head = text.split("D", 1)[0] if data[i] == 0x57 else text
        if head != digits:  # a digit or two corrupted: the rest is still the PAN
            pans.append(head[:19])
            if data[i] == 0x57 and "D" in text:
                tracks.append(text)
    for m in _TRACK2_IN_HEX.finditer(data.hex().upper()):
        tracks.append(m.group(0))
        run = m.group(1)  # where the PAN starts is not known: every 12-19 digit ending
        pans += [run[-n:] for n in range(12, min(19, len(run)) + 1)]
    return pans, tracks


def cardholder_data(pans: Iterable[str], card: dict[int, bytes]) -> CardholderData:
    """What a tap knows: the PANs it noted and the card's 5A / 57."""
    known = CardholderData()
    for pan in pans:
        known.add_pan(pan)
    if 0x5A in card:
        known.add_pan(card[0x5A].hex())
    if 0x57 in card:
        known.add_track2(card[0x57].hex())
    return known
