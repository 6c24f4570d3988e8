"""Redundant card data (EMV 4.4 Book 3, 10.2: "redundant primitive data objects are not
permitted"; Contactless Book C-2, the parsing of card responses: a tag already received
ends the transaction): every primitive data object the card gives the kernel - in the FCI of
the selected application, the GET PROCESSING OPTIONS answer, the records, the GET DATA
answers - is received once in the whole transaction.

The kernel keeps the first copy of a tag, so a second copy is never harmless: an unsigned
copy in the FCI or the GPO answer that came before the signed record would be the one the
offline decision rests on. Checking redundancy among the records only is not enough.

The cases the books allow are data here, not branches:

- :data:`SAME_VALUE_REPEATS`: data objects the quick-path books let the card return in the
  GPO answer although Book 3, Annex A keeps them in a record; the same value in both places
  is one data object, a different value is a conflict.
- a GET DATA answer for the tag the terminal asked for (Book 3, 6.5.7) may repeat a value
  already received, unchanged: the terminal asked for it again.

The answers to GENERATE AC and INTERNAL AUTHENTICATE are not card data of this kind: each
carries the results of its own command (Book 3, 6.5.5.4 and 6.5.9.4).
"""

from __future__ import annotations

from collections import Counter

from emvtap.tlv import Tlv

__all__ = ["SAME_VALUE_REPEATS", "check_redundancy", "primitive_objects"]

#: C-3 / C-7: the PAN Sequence Number is returned in the GPO answer of the quick path, and
#: personalisation keeps it in the first record as well (Book 3, Annex A: 5F34 in 70).
SAME_VALUE_REPEATS: dict[int, str] = {
    0x5F34: "PAN Sequence Number",
}


def primitive_objects(objs: list[Tlv]) -> list[Tlv]:
    """The primitive data objects of ``objs``, templates opened, in order."""
    out: list[Tlv] = []
    for t in objs:
        if t.children is not None:
            out += primitive_objects(list(t.children))
        else:
            out.append(t)
    return out


def check_redundancy(received: dict[int, tuple[str, bytes]], objs: list[Tlv], source: str,
                     *, requested: int | None = None) -> str | None:
    """Book 3, 10.2: check the data objects of one card answer (``source``: "FCI", "GPO
    answer", "record SFI 1/1", "GET DATA 9F36 answer" ...) against each other and against
    ``received`` (tag → where it came from and its value), then add them to ``received``.
    Returns why a data object is redundant - the kernel ends the transaction with it - or
    ``None``. ``requested`` is the tag a GET DATA asked for."""
    prims = primitive_objects(objs)
    for tag, count in Counter(t.tag for t in prims).items():
        if count > 1:
            return f"redundant data object {tag:X} in {source}"
    for t in prims:
        earlier = received.get(t.tag)
        if earlier is None:
            continue
        where, value = earlier
        same = value == t.value
        if same and (t.tag in SAME_VALUE_REPEATS or t.tag == requested):
            continue
        return (f"redundant data object {t.tag:X} in {source}, already in {where}"
                + ("" if same else " with another value"))
    for t in prims:
        received.setdefault(t.tag, (source, t.value))
    return None
