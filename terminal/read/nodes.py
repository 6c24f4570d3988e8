"""Decoded TLV as JSON nodes and as text: tag, name, format, value (masked unless asked),
and what the value means (:func:`emvtap.describe.describe`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emvtap.describe import describe
from emvtap.masking import mask_tag_value
from emvtap.tags import TAGS, tag_name
from emvtap.tlv import Tlv, tag_hex

__all__ = ["nodes"]


def node(t: Tlv, clear: bool) -> dict[str, Any]:
    info = TAGS.get(t.tag)
    out: dict[str, Any] = {"tag": tag_hex(t.tag), "name": tag_name(t.tag),
                           "format": info.fmt if info else "b", "length": len(t.value)}
    if t.children is not None:
        out["children"] = nodes(t.children, clear)
        return out
    out["value"] = t.value.hex().upper() if clear else mask_tag_value(t.tag, t.value)
    meaning = describe(t.tag, t.value, clear=clear)
    if meaning is not None and (meaning.details or meaning.summary != out["value"]):
        out["decoded"] = meaning.to_json()
    return out


def nodes(tlvs: Iterable[Tlv], clear: bool) -> list[dict[str, Any]]:
    return [node(t, clear) for t in tlvs]
