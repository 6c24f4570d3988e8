"""Data Object Lists and the Application File Locator (EMV 4.4 Book 3, 5.4 and 10.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emvtap.tags import TAGS
from emvtap.tlv import (
    TlvError,
    _read_length,
    _read_tag,
    encode_length,
    is_constructed,
    tag_bytes,
)

__all__ = [
    "AflEntry",
    "AflError",
    "DolEntry",
    "TlvError",
    "build_dol_data",
    "encode_dol",
    "parse_afl",
    "parse_dol",
    "split_dol_data",
]


@dataclass(frozen=True)
class DolEntry:
    tag: int
    length: int


def parse_dol(dol: bytes) -> list[DolEntry]:
    """A DOL is a list of tag ‖ length pairs, no values (Book 3, 5.4)."""
    out: list[DolEntry] = []
    pos, end = 0, len(dol)
    while pos < end:
        tag, pos = _read_tag(dol, pos, end)
        length, pos = _read_length(dol, pos, end)
        out.append(DolEntry(tag, length))
    return out


def encode_dol(entries: list[DolEntry]) -> bytes:
    return b"".join(tag_bytes(e.tag) + encode_length(e.length) for e in entries)


def _fit(tag: int, value: bytes, length: int) -> bytes:
    """Book 3, 5.4: numeric (n) values are truncated/padded on the left, everything else on
    the right; compressed numeric (cn) is padded with F on the right."""
    fmt = TAGS[tag].fmt if tag in TAGS else "b"
    if len(value) == length:
        return value
    if fmt == "n":
        if len(value) > length:
            return value[len(value) - length :]
        return bytes(length - len(value)) + value
    if len(value) > length:
        return value[:length]
    pad = 0xFF if fmt == "cn" else 0x00
    return value + bytes([pad]) * (length - len(value))


def build_dol_data(dol: bytes | list[DolEntry], values: Mapping[int, bytes]) -> bytes:
    """Concatenate the values the DOL asks for, in its order (Book 3, 5.4): tags without a
    value, and constructed tags, are zero-filled to the length the DOL gives."""
    entries = parse_dol(dol) if isinstance(dol, bytes | bytearray) else dol
    return b"".join(
        _fit(e.tag, bytes(values[e.tag]), e.length)
        if e.tag in values and not is_constructed(e.tag)
        else bytes(e.length)
        for e in entries
    )


def split_dol_data(dol: bytes | list[DolEntry], data: bytes) -> dict[int, bytes]:
    """The card's side of a DOL: cut the concatenated values back into tag → value.

    Raises ``ValueError`` when ``data`` is not exactly as long as the DOL says.
    """
    entries = parse_dol(dol) if isinstance(dol, bytes | bytearray) else dol
    total = sum(e.length for e in entries)
    if len(data) != total:
        raise ValueError(f"DOL data is {len(data)} bytes, the DOL asks for {total}")
    out: dict[int, bytes] = {}
    pos = 0
    for e in entries:
        out[e.tag] = data[pos : pos + e.length]
        pos += e.length
    return out


class AflError(ValueError):
    """An AFL that breaks Book 3, 10.2 (length not a multiple of 4, SFI 0 or > 30, ...)."""


@dataclass(frozen=True)
class AflEntry:
    sfi: int
    first_record: int
    last_record: int
    oda_records: int  # how many records from the first are in the static data for ODA

    def records(self) -> range:
        return range(self.first_record, self.last_record + 1)

    def is_oda(self, record: int) -> bool:
        return record < self.first_record + self.oda_records


def parse_afl(afl: bytes) -> list[AflEntry]:
    """Book 3, 10.2: 4-byte entries SFI<<3 ‖ first ‖ last ‖ records involved in ODA."""
    if len(afl) % 4:
        raise AflError(f"AFL length {len(afl)} is not a multiple of 4")
    out: list[AflEntry] = []
    for i in range(0, len(afl), 4):
        b1, first, last, oda = afl[i : i + 4]
        sfi = b1 >> 3
        if not 1 <= sfi <= 30 or b1 & 0x07:
            raise AflError(f"AFL entry {i // 4 + 1}: bad SFI byte {b1:02X}")
        if first == 0 or last < first:
            raise AflError(f"AFL entry {i // 4 + 1}: bad record range {first}..{last}")
        if oda > last - first + 1:
            raise AflError(f"AFL entry {i // 4 + 1}: {oda} ODA records in a range of "
                           f"{last - first + 1}")
        out.append(AflEntry(sfi, first, last, oda))
    return out

