"""What a data element's value means, in words: a table of decoders by tag over the bit tables of
:mod:`emvtap.bits`, the country/currency table of :mod:`emvtap.iso_codes` and the DOL/AFL
parsers of :mod:`emvtap.dol`.

:func:`describe` never raises: a value a decoder cannot read is described as such (a card that
answers garbage gets a report of what it answered). Cardholder data (PAN, track data, names) is
masked unless ``clear`` is set.

References: EMV 4.4 Book 3 Annex A (data elements) and Annex C (AIP, AUC, CVM List, TVR, TSI,
CID); Book 3 10.2 (AFL) and 5.4 (DOL); Contactless Books C-3 (TTQ, CTQ), C-2 (AIP byte 2);
ISO/IEC 7813 (track 2, service code); GlobalPlatform Card Specification (CPLC).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from emvtap.bits import (
    AIP,
    AUC,
    CID,
    CID_REASONS,
    CPLC_FIELDS,
    CTQ,
    TSI,
    TTQ,
    TVR,
    cvm_condition,
    cvm_method,
    names,
)
from emvtap.cryptogram_versions import IadError, detect_iad_layout, version_in_layout
from emvtap.dol import AflError, parse_afl, parse_dol
from emvtap.iso_codes import currency_exponent, describe_country, describe_currency
from emvtap.masking import mask_pan
from emvtap.tags import TAGS, tag_name
from emvtap.tlv import TlvError, tag_hex

__all__ = ["Description", "Track2", "describe", "describe_amount", "parse_track2"]


@dataclass(frozen=True)
class Description:
    """``summary``: one line; ``details``: one line per bit set, rule, field ..."""

    summary: str
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"summary": self.summary}
        if self.details:
            out["details"] = self.details
        return out


@dataclass(frozen=True)
class Track2:
    """Track 2 Equivalent Data (57, 9F6B) split at the separator D (ISO/IEC 7813)."""

    pan: str
    expiry_yymm: str
    service_code: str
    discretionary: str


def parse_track2(value: bytes) -> Track2 | None:
    text = value.hex().upper().rstrip("F")
    pan, sep, rest = text.partition("D")
    if not sep or not pan.isdigit() or len(rest) < 7:
        return None
    return Track2(pan, rest[:4], rest[4:7], rest[7:])


# --- small decoders ----------------------------------------------------------------------


def _bits(table: type) -> Callable[[bytes], Description]:
    def decode(value: bytes) -> Description:
        set_names = names(value, table)
        if not set_names:
            return Description("no bit set")
        summary = ", ".join(set_names) if len(set_names) <= 2 else f"{len(set_names)} bits set"
        return Description(summary, set_names)
    return decode


def _text(value: bytes) -> Description:
    """an/ans text; trailing 00/FF padding (as logs and some cards pad) is not part of it."""
    text = value.rstrip(b"\x00\xff")
    if all(0x20 <= b < 0x7F for b in text):
        return Description(f"'{text.decode('ascii')}'")
    return Description("not printable text")


def _date(value: bytes) -> Description:
    """n 6 YYMMDD (Book 3 Annex A: 5F24, 5F25, 9A)."""
    text = value.hex()
    if len(text) != 6 or not text.isdigit() or not 1 <= int(text[2:4]) <= 12:
        return Description(f"not a YYMMDD date ({value.hex().upper()})")
    return Description(f"20{text[:2]}-{text[2:4]}-{text[4:6]}")


def _number(value: bytes) -> Description:
    return Description(str(int.from_bytes(value, "big")) if value else "empty")


def _bcd_number(value: bytes) -> Description:
    text = value.hex()
    return Description(str(int(text)) if text.isdigit() else f"not BCD ({text.upper()})")


def describe_amount(value: bytes, currency: bytes | None = None) -> str:
    """An n 12 amount in major units when the currency is known (its ISO 4217 exponent)."""
    text = value.hex()
    if not text.isdigit():
        return f"not BCD ({text.upper()})"
    minor = int(text)
    if currency is None:
        return f"{minor} (minor units)"
    exponent = currency_exponent(currency)
    major = f"{minor / 10 ** exponent:.{exponent}f}" if exponent else str(minor)
    return f"{major} {describe_currency(currency)}"


def _amount(value: bytes) -> Description:
    return Description(describe_amount(value))


def _country(value: bytes) -> Description:
    return Description(describe_country(value))


def _currency(value: bytes) -> Description:
    return Description(describe_currency(value))


def _language(value: bytes) -> Description:
    if len(value) % 2 or not all(0x61 <= b <= 0x7A for b in value):
        return Description("not ISO 639-1 codes")
    return Description(", ".join(value[i:i + 2].decode() for i in range(0, len(value), 2)))


def _dol(value: bytes) -> Description:
    try:
        entries = parse_dol(value)
    except TlvError as exc:
        return Description(f"not a DOL ({exc})")
    rows = [f"{tag_hex(e.tag)} {tag_name(e.tag)} ({e.length} bytes)" for e in entries]
    return Description(f"{len(entries)} data objects", rows)


def _afl(value: bytes) -> Description:
    try:
        entries = parse_afl(value)
    except AflError as exc:
        return Description(f"not a valid AFL ({exc})")
    rows = [f"SFI {e.sfi}: records {e.first_record}-{e.last_record}, "
            f"{e.oda_records} for offline data authentication" for e in entries]
    return Description(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", rows)


def _cvm_list(value: bytes) -> Description:
    """Book 3 10.5 / Annex C3: amount X (4 bytes), amount Y (4 bytes), then 2-byte rules."""
    if len(value) < 8 or len(value) % 2:
        return Description(f"not a CVM list ({len(value)} bytes)")
    x, y = int.from_bytes(value[:4], "big"), int.from_bytes(value[4:8], "big")
    rules = []
    for i in range(8, len(value), 2):
        code, condition = value[i], value[i + 1]
        then = ("; if it fails, apply the next rule" if code & 0x40
                else "; if it fails, cardholder verification fails")
        rules.append(f"{cvm_method(code)}, {cvm_condition(condition)}{then}")
    return Description(f"X={x}, Y={y} (minor units of the application currency), "
                       f"{len(rules)} rules", rules)


def _cid(value: bytes) -> Description:
    if len(value) != 1:
        return Description(f"CID is 1 byte, not {len(value)}")
    cid = value[0]
    details = [f"cryptogram type {CID.type_of(cid)}"]
    if cid & CID.ADVICE_REQUIRED:
        details.append("advice required")
    reason = cid & 0x07
    if reason:
        details.append(f"reason: {CID_REASONS.get(reason, 'reserved')}")
    return Description(", ".join(details), details)


#: Names of CVNs a read may meet that the cryptogram table (emvtap.cryptogram_versions, the
#: CVNs emvtap computes) does not implement: VIS layout by (length byte, CVN), M/Chip by CVN
#: (b3-b2 the session key derivation, b1 whether the counters are in the AC data).
_VIS_CVN_NAMES: dict[tuple[int, int], str] = {
    (0x06, 0x0A): "Visa CVN 10",
    (0x06, 0x11): "Visa CVN 17",
    (0x06, 0x12): "Visa CVN 18",
    (0x06, 0x16): "Visa CVN 22",
    (0x07, 0x01): "PBOC/UICS CVN 01",
    (0x07, 0x17): "PBOC/UICS CVN 17",
}
_MCHIP_CVN_NAMES: dict[int, str] = {
    0x10: "Mastercard SKD, counters not in the AC data",
    0x11: "Mastercard SKD, counters in the AC data",
    0x14: "EMV common session key, counters not in the AC data",
    0x15: "EMV common session key, counters in the AC data",
}


def _iad(value: bytes) -> Description:
    """9F10 in the layout :func:`emvtap.cryptogram_versions.detect_iad_layout` finds (VIS:
    length ‖ DKI ‖ CVN ‖ CVR ‖ discretionary; M/Chip: DKI ‖ CVN ‖ CVR (6) ‖ DAC/IDN (2) ‖
    counters (8)), or EMV CCD (Book 3 Annex C7: byte 1 0F, byte 2 CCI A5)."""
    try:
        layout = detect_iad_layout(value)
    except IadError as exc:
        return Description(f"layout ambiguous ({exc})")
    if layout is None:
        if len(value) >= 2 and value[0] == 0x0F and value[1] == 0xA5:
            return Description("EMV Common Core Definitions format",
                               [f"common core identifier {value[1]:02X}",
                                f"rest {value[2:].hex().upper()}"])
        return Description("layout not known (no known CVN)")
    cvn = value[layout.cvn_offset]
    row = version_in_layout(layout.name, cvn)
    if layout.name == "mchip":
        name = f"Mastercard M/Chip CVN {cvn:02X}"
        return Description(name, [
            f"key derivation index {value[0]:02X}",
            f"cryptogram version number {cvn:02X}"
            + (f": {_MCHIP_CVN_NAMES[cvn]}" if cvn in _MCHIP_CVN_NAMES else ""),
            f"card verification results {value[layout.cvr].hex().upper()}",
            f"DAC / ICC dynamic number {value[8:10].hex().upper()}",
            f"counters {value[10:18].hex().upper()}"])
    length = value[0]
    name = _VIS_CVN_NAMES.get((length, cvn)) or (row.name if row else f"VIS layout CVN {cvn:02X}")
    details = [f"derivation key index {value[1]:02X}",
               f"cryptogram version number {cvn:02X}",
               f"card verification results {value[3:1 + length].hex().upper()}"]
    if len(value) > 1 + length:
        details.append(f"issuer discretionary data {value[1 + length:].hex().upper()}")
    return Description(name, details)


def _log_entry(value: bytes) -> Description:
    if len(value) != 2:
        return Description(f"log entry is 2 bytes, not {len(value)}")
    return Description(f"transaction log in SFI {value[0]}, up to {value[1]} records")


def _cplc(value: bytes) -> Description:
    needed = sum(n for _, n in CPLC_FIELDS)
    if len(value) < needed:
        return Description(f"CPLC is {needed} bytes, got {len(value)}")
    pos, rows = 0, []
    for name, n in CPLC_FIELDS:
        rows.append(f"{name}: {value[pos:pos + n].hex().upper()}")
        pos += n
    return Description(f"{len(CPLC_FIELDS)} fields", rows)


_SERVICE_CODE = (
    {"1": "international interchange", "2": "international interchange, use IC",
     "5": "national interchange", "6": "national interchange, use IC",
     "7": "private", "9": "test"},
    {"0": "normal authorisation", "2": "online authorisation by the issuer",
     "4": "online authorisation by the issuer except under bilateral agreement"},
    {"0": "PIN required", "1": "no restrictions", "2": "goods and services only",
     "3": "ATM only, PIN required", "4": "cash only",
     "5": "goods and services only, PIN required", "6": "no restrictions, PIN if PIN pad",
     "7": "goods and services only, PIN if PIN pad"},
)


def _service_code_words(code: str) -> list[str]:
    return [table.get(digit, f"digit {digit} reserved")
            for table, digit in zip(_SERVICE_CODE, code, strict=False)]


def _service_code(value: bytes) -> Description:
    code = value.hex()[-3:]
    return Description(code, _service_code_words(code))


def _priority(value: bytes) -> Description:
    if len(value) != 1:
        return Description(f"priority indicator is 1 byte, not {len(value)}")
    prio = value[0] & 0x0F
    confirm = " (cardholder confirmation required)" if value[0] & 0x80 else ""
    return Description((f"priority {prio}" if prio else "no priority") + confirm)


DECODERS: dict[int, Callable[[bytes], Description]] = {
    0x50: _text, 0x9F12: _text, 0x9F4E: _text, 0x5F50: _text, 0x9F24: _text,
    0x82: _bits(AIP), 0x9F07: _bits(AUC), 0x9F66: _bits(TTQ), 0x9F6C: _bits(CTQ),
    0x95: _bits(TVR), 0x9B: _bits(TSI),
    0x9F0D: _bits(TVR), 0x9F0E: _bits(TVR), 0x9F0F: _bits(TVR),  # IACs are TVR masks
    0xDF8120: _bits(TVR), 0xDF8121: _bits(TVR), 0xDF8122: _bits(TVR),  # and so are TACs
    0x8E: _cvm_list, 0x9F27: _cid, 0x9F10: _iad, 0x94: _afl,
    0x9F38: _dol, 0x8C: _dol, 0x8D: _dol, 0x9F49: _dol, 0x97: _dol, 0x9F4F: _dol,
    0x5F24: _date, 0x5F25: _date, 0x9A: _date,
    0x5F28: _country, 0x9F1A: _country, 0x9F57: _country,
    0x5F2A: _currency, 0x9F42: _currency, 0x9F51: _currency, 0x9F3B: _currency,
    0x9F02: _amount, 0x9F03: _amount, 0x9F79: _amount, 0x9F77: _amount, 0x9F5D: _amount,
    0x9F36: _number, 0x9F13: _number, 0x9F17: _number, 0x5F34: _bcd_number,
    0x9F4D: _log_entry, 0x9F7F: _cplc, 0x5F30: _service_code, 0x87: _priority,
    0x5F2D: _language,
}


def _sensitive(tag: int, value: bytes, clear: bool) -> Description | None:
    """PAN, track data and names: split and (unless ``clear``) masked."""
    if tag == 0x5A:
        pan = value.hex().upper().rstrip("F")
        return Description(pan if clear else mask_pan(pan))
    if tag in (0x57, 0x9F6B):
        track = parse_track2(value)
        if track is None:
            return Description("track 2 without a valid separator")
        pan = track.pan if clear else mask_pan(track.pan)
        disc = track.discretionary if clear else "*" * len(track.discretionary)
        return Description(f"PAN {pan}, expiry 20{track.expiry_yymm[:2]}-{track.expiry_yymm[2:]}"
                           f", service code {track.service_code}",
                           [f"PAN {pan}", f"expiry (YYMM) {track.expiry_yymm}",
                            f"service code {track.service_code}: "
                            + "; ".join(_service_code_words(track.service_code)),
                            f"discretionary data {disc}"])
    if tag in (0x56, 0x5F20, 0x9F0B, 0x9F1F, 0x9F20, 0x9F61):
        if clear:
            return _text(value) if all(0x20 <= b < 0x7F for b in value) else Description(
                value.hex().upper())
        return Description(f"masked ({len(value)} bytes)")
    return None


def describe(tag: int, value: bytes, *, clear: bool = False) -> Description | None:
    """The meaning of ``value`` for ``tag``; ``None`` when there is nothing to add to the hex
    (no decoder for the tag). Never raises."""
    value = bytes(value)
    try:
        sensitive = _sensitive(tag, value, clear)
        if sensitive is not None:
            return sensitive
        decoder = DECODERS.get(tag)
        if decoder is not None:
            return decoder(value)
        info = TAGS.get(tag)
        if info and info.fmt in ("an", "ans", "a"):
            return _text(value)
    except Exception as exc:  # a decoder bug must not hide the card's data
        return Description(f"cannot decode ({type(exc).__name__})")
    return None
