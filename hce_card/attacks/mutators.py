"""The mutators: each operation of an attack as a function over one card answer.

A data mutation works on the answer's BER-TLV tree through a *path* of hex tags from the top
(``77/9F36``, ``6F/A5/BF0C/61[1]/9F2A`` - ``[n]`` picks the n-th object with that tag, from
0); an answer that is not BER-TLV is left as it is by tree operations. Raw operations change
bytes, the status word or the timing; card operations act on the card's state or its field.

=========================  ====================================================================
``add``                    append ``tag`` = ``value`` (or raw ``tlv`` hex) to the template at
                           ``path`` (empty path: after the top-level objects)
``set``                    replace the value of the object at ``path``
``remove``                 remove the object at ``path``
``bits``                   OR ``set`` / AND-NOT ``clear`` (hex masks) into the value at ``path``
``flip``                   XOR byte ``index`` (default last) of the value at ``path`` with ``xor``
``set_pan``                put ``pan`` in place of the PAN in track 2 (57) or 5A at ``path``
``length_delta``           add ``delta`` to the first object's (short-form) length byte
``truncate``               drop the last ``bytes`` bytes of the data
``oversize``               append a ``bytes``-long DF7F object inside the outer template
``raw``                    answer ``data`` (hex) instead (with ``sw``, default 9000)
``sw``                     answer status word ``sw``, with no data unless ``keep_data``
``loop61``                 answer ``61xx`` to the command and to every GET RESPONSE after it
``loop6c``                 answer ``6Cxx`` (``le``) every time
``delay``                  answer after ``seconds`` (on ISO-DEP links the card sends S(WTX))
``remove_card``            leave the field instead of answering
``atc_rewind``             before the command runs, set the ATC back by ``by``
``serve_aid_as``           list application ``aid`` as ``as`` in the PPSE and answer SELECT
                           ``as`` with it (FCI DF name rewritten)
``resign_issuer_``         re-sign the issuer certificate (90) under the test CA with
``certificate``            ``expiry`` (MMYY) and/or ``serial`` (hex)
=========================  ====================================================================
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from emvtap.apdu import ResponseApdu
from emvtap.tlv import Tlv, TlvError, decode, encode_length, tag_bytes

__all__ = ["APPLY", "PREPARE", "AttackCard", "Node", "check_args", "parse_path"]


class AttackCard(Protocol):
    """What the mutators need from the lying card (:class:`hce_card.attacks.card.AttackCard`)."""

    looping_61: int
    looping_6c: bool

    def sleep(self, seconds: float) -> None: ...

    def leave_field(self) -> None: ...

    def rewind_atc(self, by: int) -> None: ...

_STEP = re.compile(r"^([0-9A-Fa-f]{2,6})(?:\[(\d+)\])?$")


@dataclass
class Node:
    """A mutable BER-TLV object (the answer's tree while it is being changed)."""

    tag: int
    value: bytes = b""
    children: list[Node] | None = None

    @classmethod
    def of(cls, tlv: Tlv) -> Node:
        if tlv.children is None:
            return cls(tlv.tag, tlv.value)
        return cls(tlv.tag, b"", [cls.of(c) for c in tlv.children])

    def encode(self) -> bytes:
        value = self.value if self.children is None else b"".join(c.encode()
                                                                 for c in self.children)
        return tag_bytes(self.tag) + encode_length(len(value)) + value


@dataclass
class Tree:
    top: list[Node] = field(default_factory=list)

    def encode(self) -> bytes:
        return b"".join(n.encode() for n in self.top)


def parse_path(path: str) -> list[tuple[int, int]]:
    """``"77/9F36"`` → [(0x77, 0), (0x9F36, 0)]; ``61[1]`` picks the second 61."""
    steps = []
    for part in filter(None, str(path).split("/")):
        m = _STEP.match(part.strip())
        if not m:
            raise ValueError(f"bad path step {part!r} (hex tag, optionally [index])")
        steps.append((int(m.group(1), 16), int(m.group(2) or 0)))
    return steps


def _locate(tree: Tree, path: str) -> tuple[list[Node], int] | None:
    """The list holding the object at *path* and its index there; ``None`` if absent."""
    siblings = tree.top
    steps = parse_path(path)
    for depth, (tag, nth) in enumerate(steps):
        hits = [i for i, n in enumerate(siblings) if n.tag == tag]
        if nth >= len(hits):
            return None
        index = hits[nth]
        if depth == len(steps) - 1:
            return siblings, index
        children = siblings[index].children
        if children is None:
            return None
        siblings = children
    return None


def _node(tree: Tree, path: str) -> Node | None:
    found = _locate(tree, path)
    return found[0][found[1]] if found else None


def _hex(args: Mapping[str, Any], key: str, default: str | None = None) -> bytes:
    return bytes.fromhex(str(args.get(key, default) or "").replace(" ", ""))


# --- tree operations ------------------------------------------------------------------------


def _add(tree: Tree, args: Mapping[str, Any]) -> None:
    new = ([Node.of(t) for t in decode(_hex(args, "tlv"))] if "tlv" in args
           else [Node(int(str(args["tag"]), 16), _hex(args, "value"))])
    path = str(args.get("path", ""))
    if not path:
        tree.top.extend(new)
        return
    target = _node(tree, path)
    if target is not None and target.children is not None:
        if args.get("position") == "first":
            target.children[:0] = new
        else:
            target.children.extend(new)


def _set(tree: Tree, args: Mapping[str, Any]) -> None:
    target = _node(tree, str(args["path"]))
    if target is not None:
        target.children, target.value = None, _hex(args, "value")


def _remove(tree: Tree, args: Mapping[str, Any]) -> None:
    found = _locate(tree, str(args["path"]))
    if found:
        del found[0][found[1]]


def _bits(tree: Tree, args: Mapping[str, Any]) -> None:
    target = _node(tree, str(args["path"]))
    if target is None or target.children is not None:
        return
    value = bytearray(target.value)
    for i, m in enumerate(_hex(args, "set", "")[:len(value)]):
        value[i] |= m
    for i, m in enumerate(_hex(args, "clear", "")[:len(value)]):
        value[i] &= ~m & 0xFF
    target.value = bytes(value)


def _flip(tree: Tree, args: Mapping[str, Any]) -> None:
    target = _node(tree, str(args["path"]))
    if target is None or target.children is not None or not target.value:
        return
    value = bytearray(target.value)
    value[int(args.get("index", -1))] ^= int(args.get("xor", 1))
    target.value = bytes(value)


def _set_pan(tree: Tree, args: Mapping[str, Any]) -> None:
    target = _node(tree, str(args["path"]))
    if target is None or target.children is not None:
        return
    pan = str(args["pan"])
    digits = target.value.hex().upper()
    is_track2 = target.tag == 0x57 and "D" in digits
    digits = pan + digits[digits.index("D"):] if is_track2 else pan
    if len(digits) % 2:
        digits += "F"
    target.value = bytes.fromhex(digits)


TREE_OPS: dict[str, Callable[[Tree, Mapping[str, Any]], None]] = {
    "add": _add, "set": _set, "remove": _remove, "bits": _bits, "flip": _flip,
    "set_pan": _set_pan,
}


def _tree_op(op: str) -> Callable[[AttackCard, ResponseApdu, Mapping[str, Any]], ResponseApdu]:
    def apply(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
        try:
            tree = Tree([Node.of(t) for t in decode(resp.data)])
        except TlvError:
            return resp
        TREE_OPS[op](tree, args)
        return ResponseApdu(tree.encode(), resp.sw)

    return apply


# --- raw operations -------------------------------------------------------------------------


def _length_delta(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    """The first object's length field (short or 81/82 long form) plus ``delta``; the bytes
    after it are left as they are, so the length no longer matches the data."""
    data = bytearray(resp.data)
    if len(data) < 2:
        return resp
    pos = 2 if data[0] & 0x1F == 0x1F else 1  # after a one- or two-byte tag
    if pos >= len(data):
        return resp
    first = data[pos]
    width = 1 if first < 0x80 else 1 + (first & 0x7F)
    if first >= 0x80 and (width > 3 or pos + width > len(data)):
        return resp
    start = pos if first < 0x80 else pos + 1
    old = int.from_bytes(data[start:pos + width], "big")
    limit = 0x7F if first < 0x80 else (1 << (8 * (width - 1))) - 1
    new = max(0, min(limit, old + int(args.get("delta", 1))))
    data[start:pos + width] = new.to_bytes(pos + width - start, "big")
    return ResponseApdu(bytes(data), resp.sw)


def _truncate(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    return ResponseApdu(resp.data[:max(0, len(resp.data) - int(args.get("bytes", 1)))], resp.sw)


def _oversize(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    filler = Tlv.primitive(0xDF7F, bytes([0x5A]) * int(args.get("bytes", 300)))
    try:
        objs = decode(resp.data)
    except TlvError:
        return ResponseApdu(resp.data + filler.encode(), resp.sw)
    if objs and objs[0].children is not None:
        first = Tlv.template(objs[0].tag, [*objs[0].children, filler])
        return ResponseApdu(first.encode() + b"".join(o.encode() for o in objs[1:]), resp.sw)
    return ResponseApdu(resp.data + filler.encode(), resp.sw)


def _raw(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    return ResponseApdu(_hex(args, "data", ""), int(str(args.get("sw", "9000")), 16))


def _sw(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    return ResponseApdu(resp.data if args.get("keep_data") else b"", int(str(args["sw"]), 16))


def _loop61(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    card.looping_61 = int(args.get("chunk", 16))
    return ResponseApdu(b"", 0x6100 | card.looping_61)


def _loop6c(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    card.looping_6c = True
    return ResponseApdu(b"", 0x6C00 | int(args.get("le", 0x10)))


def _delay(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    card.sleep(float(args.get("seconds", 12.0)))
    return resp


def _remove_card(card: AttackCard, resp: ResponseApdu, args: Mapping[str, Any]) -> ResponseApdu:
    card.leave_field()
    return resp


#: op → what it does to an answer (after the card computed it).
APPLY: dict[str, Callable[[AttackCard, ResponseApdu, Mapping[str, Any]], ResponseApdu]] = {
    **{op: _tree_op(op) for op in TREE_OPS},
    "length_delta": _length_delta,
    "truncate": _truncate,
    "oversize": _oversize,
    "raw": _raw,
    "sw": _sw,
    "loop61": _loop61,
    "loop6c": _loop6c,
    "delay": _delay,
    "remove_card": _remove_card,
}


def _atc_rewind(card: AttackCard, args: Mapping[str, Any]) -> None:
    card.rewind_atc(int(args.get("by", 1)))


#: op → what it does before the card sees the command.
PREPARE: dict[str, Callable[[AttackCard, Mapping[str, Any]], None]] = {
    "atc_rewind": _atc_rewind,
}

#: ops applied once, to the card image, when the attack is armed (see AttackCard).
IMAGE_OPS = ("serve_aid_as", "resign_issuer_certificate")

#: Each op's required arguments and the ones it accepts.
_ARGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "add": (frozenset(), frozenset({"path", "tag", "value", "tlv", "position"})),
    "set": (frozenset({"path", "value"}), frozenset()),
    "remove": (frozenset({"path"}), frozenset()),
    "bits": (frozenset({"path"}), frozenset({"set", "clear"})),
    "flip": (frozenset({"path"}), frozenset({"index", "xor"})),
    "set_pan": (frozenset({"path", "pan"}), frozenset()),
    "length_delta": (frozenset(), frozenset({"delta"})),
    "truncate": (frozenset(), frozenset({"bytes"})),
    "oversize": (frozenset(), frozenset({"bytes"})),
    "raw": (frozenset(), frozenset({"data", "sw"})),
    "sw": (frozenset({"sw"}), frozenset({"keep_data"})),
    "loop61": (frozenset(), frozenset({"chunk"})),
    "loop6c": (frozenset(), frozenset({"le"})),
    "delay": (frozenset(), frozenset({"seconds"})),
    "remove_card": (frozenset(), frozenset()),
    "atc_rewind": (frozenset(), frozenset({"by"})),
    "serve_aid_as": (frozenset({"aid", "as"}), frozenset()),
    "resign_issuer_certificate": (frozenset(), frozenset({"expiry", "serial"})),
}


def check_args(op: str, args: Mapping[str, Any], where: str) -> None:
    """Refuse missing or unknown arguments, bad hex and bad paths, naming *where*
    (:class:`ValueError`)."""
    required, optional = _ARGS[op]
    missing = sorted(required - set(args))
    unknown = sorted(set(args) - required - optional)
    if op == "add" and "tlv" not in args and "tag" not in args:
        missing.append("tag (or tlv)")
    if missing or unknown:
        raise ValueError(f"{where}: op {op}: missing {missing}" if missing
                         else f"{where}: op {op}: unknown argument(s) {unknown}")
    try:
        if "path" in args:
            parse_path(str(args["path"]))
        for key in ("value", "tlv", "set", "clear", "data", "aid", "as", "serial"):
            if key in args:
                bytes.fromhex(str(args[key]).replace(" ", ""))
        if "tlv" in args:
            decode(bytes.fromhex(str(args["tlv"]).replace(" ", "")))
        if "tag" in args:
            int(str(args["tag"]), 16)
        if "sw" in args and len(bytes.fromhex(str(args["sw"]))) != 2:
            raise ValueError(f"sw {args['sw']!r} is not two bytes")
        for key in ("seconds", "bytes", "delta", "by", "index", "xor", "chunk", "le"):
            if key in args:
                float(args[key])
    except (ValueError, TlvError) as exc:
        raise ValueError(f"{where}: op {op}: {exc}") from None


def sleep(seconds: float) -> None:
    """The card takes its time (separate so tests can see it)."""
    time.sleep(seconds)
