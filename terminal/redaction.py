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

__all__ = ["CardholderData", "cardholder_data", "scan_answer"]

_TRACK2_TAIL = re.compile(r"[0-9Dd]*")
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
    windows: set[str] = field(default_factory=set)  # hex after a 57 tag: masked whole

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
        pans, tracks, windows = scan_answer(data)
        for pan in pans:
            self.add_pan(pan)
        for track in tracks:
            self.add_track2(track)
        self.windows.update(w for w in windows if len(w) >= 12)

    def mask(self, text: str) -> str:
        """``text`` (hex or prose) with every known PAN and track 2 masked, keeping its
        length: a PAN keeps its first six and last four digits (shorter than 13: all hidden),
        the rest of track 2 after a separator is hidden, a track 2 window after a 57 tag
        keeps its first six characters. Every candidate is looked for in the original text
        and the hidden positions are united, so no candidate's masking can stop another one
        from matching, whatever their order."""
        hide = bytearray(len(text))

        def cover(start: int, end: int) -> None:
            hide[start:end] = b"\x01" * max(0, end - start)

        for window in self.windows:
            for at in _occurrences(text, window):
                cover(at + 6, at + len(window))
        for pan in self.pans:
            head, tail = (6, 4) if len(pan) >= 13 else (0, 0)
            for at in _occurrences(text, pan):
                end = at + len(pan)
                cover(at + head, end - tail)
                if text[end:end + 1] in ("D", "d"):  # the rest of track 2
                    cover(end + 1, _TRACK2_TAIL.match(text, end + 1).end())
        for rest in self.track2_tails:
            for at in _occurrences(text, "D" + rest):
                cover(at + 1, at + 1 + len(rest))
        if not any(hide):
            return text
        return "".join("*" if h else c for c, h in zip(text, hide, strict=True))

    def mask_record(self, record: Any) -> Any:
        """The same JSON-like value with every string masked."""
        if isinstance(record, str):
            return self.mask(record)
        if isinstance(record, list):
            return [self.mask_record(v) for v in record]
        if isinstance(record, dict):
            return {k: self.mask_record(v) for k, v in record.items()}
        return record


def _occurrences(text: str, needle: str) -> list[int]:
    """Where ``needle`` (upper-case hex or digits) starts in ``text``, in either case."""
    out: list[int] = []
    for form in {needle, needle.lower()}:
        at = text.find(form)
        while at >= 0:
            out.append(at)
            at = text.find(form, at + 1)
    return out


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def scan_answer(data: bytes) -> tuple[list[str], list[str], list[str]]:
    """What ``data`` seems to hold, found without parsing it as a whole: PANs, track 2
    values, and track 2 windows to mask whole (all three as hex text).

    - at every 57 or 5A byte, the next byte as a length and the BCD digits after it (12-19;
      a nibble or two that are not digits - a corrupted PAN - still count); after a 57, the
      19 bytes a track 2 can take are masked whole, whatever their separator became;
    - at every D nibble, the 12-21 digits before it (each ending of 12-19 of them may be the
      PAN) and the digits after it (the rest of track 2);
    - a length byte of 7-10 followed by that many bytes of BCD digits forming a PAN that
      passes the Luhn check (a 5A whose tag byte was changed)."""
    pans: list[str] = []
    tracks: list[str] = []
    windows: list[str] = []
    n = len(data)
    for i in range(n - 1):
        longest = _PAN_TAGS.get(data[i])
        if longest is not None:
            value = data[i + 2:i + 2 + min(data[i + 1], longest)]
            text = value.hex().upper()
            digits = _digits(text)[:19]
            if len(digits) >= 12:
                if data[i] == 0x57 and text[len(digits):len(digits) + 1] == "D":
                    tracks.append(text)
                else:
                    pans.append(digits)
            sep = text.find("D", 12)  # a PAN has 12 digits at least: an earlier D is noise
            head = (text[:sep] if sep > 0 else text) if data[i] == 0x57 else text
            if head != digits:  # a digit or two corrupted: the rest is still the PAN
                pans.append(head[:19])
            window = data[i + 2:i + 2 + 19].hex().upper()
            if data[i] == 0x57 and sum(c.isdigit() for c in window[:12]) >= 11:
                windows += [window, text]
        length = data[i]
        if 7 <= length <= 10:
            text = data[i + 1:i + 1 + length].hex().upper().rstrip("F")
            if 13 <= len(text) <= 19 and text.isdigit() and _luhn_ok(text):
                pans.append(text)
    hexed = data.hex().upper()
    for j, ch in enumerate(hexed):
        if ch != "D":
            continue
        before = hexed[max(0, j - 21):j]
        run = before[len(before) - _trailing_digits(before):]
        after = _TRACK2_TAIL.match(hexed, j + 1).group(0)
        if len(run) >= 12 and len(after) >= 4:
            pans += [run[-k:] for k in range(12, min(19, len(run)) + 1)]
            tracks.append(run + "D" + after)
    return pans, tracks, windows


def _trailing_digits(text: str) -> int:
    count = 0
    for ch in reversed(text):
        if not ch.isdigit():
            break
        count += 1
    return count


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
