"""BER-TLV as EMV uses it (EMV 4.4 Book 3, Annex B).

Order and repeated tags are kept: a PPSE answer carries several ``61`` entries and a script
template several ``86`` commands, so a TLV stream decodes to a *list*, never a dict.
Malformed input raises a :class:`TlvError` subclass that says what was wrong and where.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "BadLength",
    "BadTag",
    "LengthPastEnd",
    "NestingTooDeep",
    "Tlv",
    "TlvError",
    "TruncatedLength",
    "TruncatedTag",
    "decode",
    "encode",
    "encode_length",
    "find",
    "find_all",
    "flatten",
    "tag_bytes",
    "tag_hex",
]


class TlvError(ValueError):
    """Malformed BER-TLV; ``offset`` is where in the input the problem starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.offset = offset


class TruncatedTag(TlvError):
    """The input ends inside a multi-byte tag."""


class BadTag(TlvError):
    """A tag that BER-TLV does not allow (e.g. a subsequent byte of 0x80, or too long)."""


class TruncatedLength(TlvError):
    """The input ends inside the length field."""


class BadLength(TlvError):
    """A length form EMV does not allow (indefinite form, or more than 3 length bytes)."""


class LengthPastEnd(TlvError):
    """The length says the value goes beyond the end of the input (or its template)."""


class NestingTooDeep(TlvError):
    """Templates nested deeper than any EMV object (a guard against hostile input)."""


def tag_bytes(tag: int) -> bytes:
    """The tag's bytes as they appear on the wire (``0x9F02`` → ``9F 02``)."""
    if tag < 0:
        raise ValueError(f"negative tag {tag}")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def tag_hex(tag: int) -> str:
    return tag_bytes(tag).hex().upper()


def encode_length(length: int) -> bytes:
    """Definite-form length: short form below 128, else ``81``/``82``/``83`` + bytes."""
    if length < 0x80:
        return bytes([length])
    n = (length.bit_length() + 7) // 8
    if n > 3:
        raise ValueError(f"length {length} too large for EMV BER-TLV")
    return bytes([0x80 | n]) + length.to_bytes(n, "big")


def is_constructed(tag: int) -> bool:
    return bool(tag_bytes(tag)[0] & 0x20)


@dataclass(frozen=True)
class Tlv:
    """One data object. ``children`` is set for constructed tags (templates)."""

    tag: int
    value: bytes
    children: tuple[Tlv, ...] | None = None

    @classmethod
    def primitive(cls, tag: int, value: bytes) -> Tlv:
        return cls(tag, bytes(value))

    @classmethod
    def template(cls, tag: int, children: Iterable[Tlv]) -> Tlv:
        kids = tuple(children)
        return cls(tag, b"".join(k.encode() for k in kids), kids)

    @property
    def constructed(self) -> bool:
        return self.children is not None

    def encode(self) -> bytes:
        return tag_bytes(self.tag) + encode_length(len(self.value)) + self.value

    def find(self, tag: int) -> Tlv | None:
        """First object with ``tag`` in this one or below it (depth first, in order)."""
        return next(iter(self.find_all(tag)), None)

    def find_all(self, tag: int) -> list[Tlv]:
        return list(_walk([self], tag))

    def __repr__(self) -> str:  # short and useful in test failures
        return f"Tlv({tag_hex(self.tag)}, {self.value.hex().upper()})"


def _walk(tlvs: Iterable[Tlv], tag: int) -> Iterator[Tlv]:
    for t in tlvs:
        if t.tag == tag:
            yield t
        if t.children:
            yield from _walk(t.children, tag)


def find(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    return next(_walk(tlvs, tag), None)


def find_all(tlvs: Iterable[Tlv], tag: int) -> list[Tlv]:
    return list(_walk(tlvs, tag))


def flatten(tlvs: Iterable[Tlv]) -> dict[int, bytes]:
    """Primitive objects by tag, first occurrence wins (for data-element look-ups)."""
    out: dict[int, bytes] = {}
    stack = list(tlvs)[::-1]
    while stack:
        t = stack.pop()
        if t.children is not None:
            stack.extend(reversed(t.children))
        else:
            out.setdefault(t.tag, t.value)
    return out


def encode(tlvs: Iterable[Tlv]) -> bytes:
    return b"".join(t.encode() for t in tlvs)


_MAX_TAG_BYTES = 4
_MAX_DEPTH = 16


def _read_tag(data: bytes, pos: int, end: int) -> tuple[int, int]:
    start = pos
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= end:
                raise TruncatedTag("input ends inside a multi-byte tag", start)
            b = data[pos]
            if pos == start + 1 and b == 0x80:
                raise BadTag("subsequent tag byte 80 is not allowed", pos)
            pos += 1
            if pos - start > _MAX_TAG_BYTES:
                raise BadTag(f"tag longer than {_MAX_TAG_BYTES} bytes", start)
            if not b & 0x80:
                break
    return int.from_bytes(data[start:pos], "big"), pos


def _read_length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise TruncatedLength("input ends before the length", pos)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0:
        raise BadLength("indefinite length form is not used in EMV", pos)
    if n > 3:
        raise BadLength(f"{n} length bytes (EMV allows at most 3)", pos)
    if pos + 1 + n > end:
        raise TruncatedLength("input ends inside the length", pos)
    return int.from_bytes(data[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


def _decode(data: bytes, pos: int, end: int, depth: int) -> list[Tlv]:
    if depth > _MAX_DEPTH:
        raise NestingTooDeep(f"templates nested deeper than {_MAX_DEPTH}", pos)
    out: list[Tlv] = []
    while pos < end:
        if data[pos] in (0x00, 0xFF):  # padding between objects, Book 3 Annex B
            pos += 1
            continue
        start = pos
        tag, pos = _read_tag(data, pos, end)
        length, pos = _read_length(data, pos, end)
        if pos + length > end:
            raise LengthPastEnd(
                f"tag {tag_hex(tag)} says {length} bytes, only {end - pos} remain", start
            )
        value = bytes(data[pos : pos + length])
        children = _decode(data, pos, pos + length, depth + 1) if data[start] & 0x20 else None
        out.append(Tlv(tag, value, tuple(children) if children is not None else None))
        pos += length
    return out


def decode(data: bytes) -> list[Tlv]:
    """Decode a BER-TLV stream into objects, keeping order and repeats."""
    return _decode(bytes(data), 0, len(data), 0)
