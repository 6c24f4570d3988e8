"""The Answer To Reset, decoded (ISO/IEC 7816-3, 8.2; PC/SC Part 3, 3.1.3.2.3 for the ATR a
contactless reader builds; ISO/IEC 7816-4, 8.1.1 for the historical bytes).

:func:`decode_atr` never raises: an ATR that breaks the rules is described with what is wrong
(``problems``), as far as it can be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONTACTLESS_CARD_NAMES", "CONTACTLESS_STANDARDS", "AtrInfo", "decode_atr"]

#: PC/SC Part 3 Supplement: byte SS of a storage card's ATR - the standard it follows.
CONTACTLESS_STANDARDS: dict[int, str] = {
    0x01: "ISO/IEC 14443 A, part 1", 0x02: "ISO/IEC 14443 A, part 2",
    0x03: "ISO/IEC 14443 A, part 3", 0x05: "ISO/IEC 14443 B, part 1",
    0x06: "ISO/IEC 14443 B, part 2", 0x07: "ISO/IEC 14443 B, part 3",
    0x09: "ISO/IEC 15693, part 1", 0x0A: "ISO/IEC 15693, part 2",
    0x0B: "ISO/IEC 15693, part 3", 0x0C: "ISO/IEC 15693, part 4",
    0x11: "FeliCa", 0x40: "low frequency contactless card",
}

#: PC/SC Part 3 Supplement: bytes NN NN - the card name of a storage card.
CONTACTLESS_CARD_NAMES: dict[int, str] = {
    0x0001: "MIFARE Classic 1K", 0x0002: "MIFARE Classic 4K", 0x0003: "MIFARE Ultralight",
    0x0026: "MIFARE Mini", 0x003A: "MIFARE Ultralight C", 0xF004: "Topaz and Jewel",
    0xF011: "FeliCa 212K", 0xF012: "FeliCa 424K",
}

#: PC/SC registered application provider identifier in a storage card's historical bytes.
PCSC_RID = bytes.fromhex("A000000306")

#: ISO/IEC 7816-4, 8.1.1.2: COMPACT-TLV tags of the historical bytes.
_COMPACT_TAGS: dict[int, str] = {
    0x1: "country code", 0x2: "issuer identification number", 0x3: "card service data",
    0x4: "initial access data", 0x5: "card issuer's data", 0x6: "pre-issuing data",
    0x7: "card capabilities", 0x8: "status indicator", 0xF: "application identifier",
}


@dataclass
class AtrInfo:
    atr: bytes
    convention: str = ""
    protocols: list[int] = field(default_factory=list)
    interface_bytes: dict[str, int] = field(default_factory=dict)
    historical: bytes = b""
    tck_ok: bool | None = None
    kind: str = ""  # "contact", "contactless ISO 14443-4", "contactless storage card"
    card_name: str = ""
    standard: str = ""
    details: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [self.kind or "unknown"]
        if self.card_name:
            parts.append(self.card_name)
        if self.standard:
            parts.append(self.standard)
        if self.protocols:
            parts.append("T=" + ",".join(str(p) for p in self.protocols))
        if self.problems:
            parts.append("; ".join(self.problems))
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"atr": self.atr.hex().upper(), "kind": self.kind,
                "convention": self.convention, "protocols": self.protocols,
                "interface_bytes": self.interface_bytes,
                "historical_bytes": self.historical.hex().upper(), "tck_ok": self.tck_ok,
                "card_name": self.card_name, "standard": self.standard,
                "details": self.details, "problems": self.problems,
                "summary": self.summary()}


def _compact_tlv(data: bytes, info: AtrInfo) -> None:
    pos = 0
    while pos < len(data):
        if data[pos] == 0x00:  # no object: padding
            pos += 1
            continue
        tag, length = data[pos] >> 4, data[pos] & 0x0F
        value = data[pos + 1:pos + 1 + length]
        if len(value) < length:
            info.problems.append("historical bytes: COMPACT-TLV runs past the end")
            return
        name = _COMPACT_TAGS.get(tag, f"tag {tag:X}")
        info.details.append(f"{name}: {value.hex().upper()}")
        pos += 1 + length


def _historical(info: AtrInfo) -> None:
    h = info.historical
    if not h:
        return
    if h[0] == 0x80 and len(h) >= 3 and h[1] == 0x4F and h[3:8] == PCSC_RID and len(h) >= 11:
        # PC/SC Part 3: 80 4F 0C RID SS NN NN 00 00 00 00 - a storage card
        info.kind = "contactless storage card"
        info.standard = CONTACTLESS_STANDARDS.get(h[8], f"standard {h[8]:02X}")
        name = int.from_bytes(h[9:11], "big")
        info.card_name = CONTACTLESS_CARD_NAMES.get(name, f"card name {name:04X}")
        return
    if h[0] == 0x80:
        info.details.append("historical bytes: COMPACT-TLV objects")
        _compact_tlv(h[1:], info)
    elif h[0] == 0x00 and len(h) >= 4:
        info.details.append(f"historical bytes: status {h[-3:].hex().upper()} at the end")
        _compact_tlv(h[1:-3], info)
    elif h[0] == 0x10:
        info.details.append("historical bytes: DIR data reference")
    else:
        text = h.decode("ascii", "replace") if all(0x20 <= b < 0x7F for b in h) else ""
        info.details.append(f"historical bytes: proprietary {h.hex().upper()}"
                            + (f" '{text}'" if text else ""))


def decode_atr(atr: bytes) -> AtrInfo:
    info = AtrInfo(bytes(atr))
    if len(atr) < 2:
        info.problems.append(f"an ATR has at least 2 bytes, got {len(atr)}")
        return info
    conventions = {0x3B: "direct", 0x3F: "inverse"}
    info.convention = conventions.get(atr[0], "")
    if not info.convention:
        info.problems.append(f"TS {atr[0]:02X} is neither 3B nor 3F")
    y, k = atr[1] >> 4, atr[1] & 0x0F
    pos, i = 2, 1
    protocols: list[int] = []
    while True:
        for bit, letter in ((0x1, "A"), (0x2, "B"), (0x4, "C"), (0x8, "D")):
            if y & bit:
                if pos >= len(atr):
                    info.problems.append(f"the ATR ends before T{letter}{i}")
                    return info
                info.interface_bytes[f"T{letter}{i}"] = atr[pos]
                pos += 1
        td = info.interface_bytes.get(f"TD{i}")
        if not y & 0x8 or td is None:
            break
        protocols.append(td & 0x0F)
        y, i = td >> 4, i + 1
    info.protocols = sorted(set(protocols)) or [0]
    info.historical = bytes(atr[pos:pos + k])
    if len(info.historical) < k:
        info.problems.append(f"T0 announces {k} historical bytes, {len(info.historical)} follow")
    pos += k
    if any(p != 0 for p in protocols):
        if pos >= len(atr):
            info.problems.append("TCK missing")
        else:
            check = 0
            for b in atr[1:pos + 1]:
                check ^= b
            info.tck_ok = check == 0
            if not info.tck_ok:
                info.problems.append("TCK is wrong")
            pos += 1
    if pos < len(atr):
        info.problems.append(f"{len(atr) - pos} extra bytes after the ATR")
    contactless = atr[0] == 0x3B and (atr[1] & 0xF0) == 0x80 and atr[2:4] == b"\x80\x01"
    info.kind = "contactless ISO 14443-4 card" if contactless else "contact card"
    _historical(info)
    return info
