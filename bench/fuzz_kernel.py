"""Kernel fuzz: taps of the HCE card of each scheme profile over the in-process loopback link,
with the card's answers mutated in transit, and four counters that must stay at zero.

    python bench/fuzz_kernel.py --taps 200000 --seed 1 [--json summary.json]

Profiles: UnionPay QuickPass (kernel 7, qPBOC quick path, fDDA), Visa (kernel 3, qVSDC quick
path, fDDA format 95), Mastercard (kernel 2, EMV full path with CDA). Each tap uses a fresh card
state, an amount that the card approves offline (most taps), or one above the floor limit or
the CVM limit, and no host (a quarter of the taps have a host that approves, to run the online
paths). Each tap gets zero, one or two mutation events; an event picks an answer (SELECT AID,
GPO, a record, GET DATA, GENERATE AC) and a mutation: bit flips, length bytes off by one,
truncation, trailing bytes, another status word, a duplicated or removed data object, an
unsigned copy ("shadow") of a signed data object, a changed value, DOL entries with long-form
lengths, another PAN in track 2, the ATC moved, CTQ bits flipped, templates reordered or
renamed.

The counters:

- ``exceptions``: ``perform_transaction`` raised (it must end every tap in an outcome);
- ``internal_errors``: a tap whose reason says "internal error";
- ``signed_offline_approvals``: an offline approval (kernel APPROVED, or approved offline by
  the default action codes) in a tap where a signed item or its unsigned shadow was changed:
  the content of a record, a certificate or key component, the AIP, the fDDA signature and
  its card authentication data, the ATC and CTQ the signature covers, a GENERATE AC answer
  (CDA covers it whole), the PAN of track 2 (5A's shadow), or any data object of the signed
  records appearing anywhere it was not;
- ``clear_pans``: a tap record (the redacted JSON) holding the card's PAN digits, a PAN the
  fuzzer put in track 2, or the card's track 2 discretionary data.

Same ``--seed``, same taps: every random choice - the card's included - comes from it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emvtap.dol import parse_afl
from emvtap.luhn import luhn_check_digit
from emvtap.perso import generate_profile
from emvtap.perso_schemes import generate_mastercard_profile, generate_visa_profile
from emvtap.profile import CardProfile
from emvtap.tlv import Tlv, TlvError, decode
from hce_card.card import HceCard
from hce_card.state import StateStore
from terminal.config import TerminalConfig
from terminal.outcome import Outcome, TransactionResult
from terminal.pay import capk_store, perform_transaction
from terminal.transport.loopback import LoopbackTransport

__all__ = ["FuzzSummary", "run_fuzz"]

NOW = datetime(2026, 3, 16, 10, 30)
#: amount (minor units) → weight: offline region, above the floor limit, above the CVM limit
AMOUNTS: tuple[tuple[int, int], ...] = ((1234, 6), (15000, 2), (40000, 1))
#: the status words a mutated answer may get instead of its own
STATUS_WORDS = (0x6A82, 0x6985, 0x6F00, 0x6700, 0x6A83, 0x6283, 0x6D00, 0x9000, 0x6C05)
#: data objects outside the signed records whose change the signatures catch
CERTIFICATE_TAGS = frozenset({0x8F, 0x90, 0x92, 0x9F32, 0x9F46, 0x9F47, 0x9F48})
#: what fDDA signs outside the static data: the signature, the card authentication data,
#: and the ATC and CTQ the signature covers (they count when the tap ran fDDA)
FDDA_SIGNED_TAGS = frozenset({0x9F4B, 0x9F69, 0x9F6C, 0x9F36})
#: what CDA signs: every object of the GENERATE AC answers, and so the ATC that GET DATA
#: gave before (they count when the tap ran CDA)
CDA_SIGNED_TAGS = frozenset({0x9F36})


# --- the schemes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheme:
    """One card product under test and what its signatures cover."""

    name: str
    profile: CardProfile
    oda_records: frozenset[tuple[int, int]]
    signed_tags: frozenset[int]  # primitive tags of the records in the static data
    signed_values: frozenset[tuple[int, bytes]]  # and their values
    pan: str
    track2_tail: str  # after the separator: expiry, service code, discretionary data
    quick_path: bool


def _primitives(objs: list[Tlv]) -> list[Tlv]:
    out: list[Tlv] = []
    for t in objs:
        out += _primitives(list(t.children)) if t.children is not None else [t]
    return out


def _scheme(name: str, profile: CardProfile) -> Scheme:
    app = profile.applications[0]
    oda = frozenset((e.sfi, r) for e in parse_afl(app.afl) for r in e.records() if e.is_oda(r))
    signed: set[tuple[int, bytes]] = set()
    for rec in app.records:
        if (rec.sfi, rec.record) in oda:
            signed |= {(t.tag, t.value) for t in _primitives(decode(rec.data))}
    t2 = app.track2.hex().upper()
    return Scheme(name, profile, oda, frozenset(t for t, _ in signed), frozenset(signed),
                  profile.pan, t2.split("D", 1)[1].rstrip("F"), b"\x9f\x66" in app.pdol)


def schemes(seed: int) -> list[Scheme]:
    """The three profiles: quickpass (quick path), visa (qVSDC), mastercard (CDA full path)."""
    return [
        _scheme("quickpass", generate_profile(seed)),
        _scheme("visa", generate_visa_profile(seed)),
        _scheme("mastercard", generate_mastercard_profile(seed)),
    ]


# --- mutations --------------------------------------------------------------------------------


@dataclass
class TapLog:
    """What the mutator did in one tap."""

    events: list[str] = field(default_factory=list)
    #: what the mutations changed: "static" (static data, certificates, AIP, the PAN and
    #: its track 2 shadow), "fdda" (what fDDA signs), "cda" (what CDA signs)
    touched: set[str] = field(default_factory=set)
    injected_pans: list[str] = field(default_factory=list)


Mutation = Callable[[random.Random, bytes, "MutationContext"], bytes | None]


@dataclass
class MutationContext:
    scheme: Scheme
    command: bytes
    log: TapLog


def _flip_bit(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    if not data:
        return None
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


def _set_byte(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    if not data:
        return None
    i = rng.randrange(len(data))
    return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]


def _length_positions(data: bytes) -> list[int]:
    """Offsets of the length bytes of the TLVs of ``data`` (a lenient walk)."""
    out, stack = [], [(0, len(data))]
    while stack:
        pos, end = stack.pop()
        while pos < end:
            if data[pos] in (0x00, 0xFF):
                pos += 1
                continue
            start = pos
            pos += 1
            if data[start] & 0x1F == 0x1F:
                while pos < end and data[pos] & 0x80:
                    pos += 1
                pos += 1
            if pos >= end:
                break
            out.append(pos)
            length = data[pos]
            pos += 1
            if length & 0x80:
                n = length & 0x7F
                length = int.from_bytes(data[pos:pos + n], "big")
                pos += n
            if data[start] & 0x20:
                stack.append((pos, min(end, pos + length)))
            pos += length
    return out


def _length_off_by_one(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    positions = _length_positions(data)
    if not positions:
        return None
    i = rng.choice(positions)
    return data[:i] + bytes([(data[i] + rng.choice((1, -1, 2, 0x80))) % 256]) + data[i + 1:]


def _truncate(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    return data[:-rng.randint(1, min(8, len(data)))] if data else None


def _append(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    extra = rng.choice((b"\x00", b"\x00\x00", rng.randbytes(rng.randint(1, 4))))
    return data + extra


def _parse(data: bytes) -> list[Tlv] | None:
    try:
        return decode(data)
    except TlvError:
        return None


def _edit_tlvs(data: bytes, edit: Callable[[list[Tlv]], list[Tlv] | None]) -> bytes | None:
    """Apply ``edit`` to the children of the top template (or to the top level)."""
    objs = _parse(data)
    if not objs:
        return None
    top = objs[0]
    if top.children is None:
        new = edit(objs)
        return None if new is None else b"".join(t.encode() for t in new)
    kids = list(top.children)
    # into A5 of an FCI, where its data objects are
    a5 = next((k for k in kids if k.tag == 0xA5 and k.children is not None), None)
    if a5 is not None and top.tag == 0x6F:
        new_a5 = edit(list(a5.children or ()))
        if new_a5 is None:
            return None
        kids = [Tlv.template(0xA5, new_a5) if k is a5 else k for k in kids]
    else:
        new = edit(kids)
        if new is None:
            return None
        kids = new
    return Tlv.template(top.tag, kids).encode() + b"".join(t.encode() for t in objs[1:])


def _duplicate(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    def edit(kids: list[Tlv]) -> list[Tlv] | None:
        prims = [k for k in kids if k.children is None]
        if not prims:
            return None
        kids.insert(rng.randrange(len(kids) + 1), rng.choice(prims))
        return kids
    return _edit_tlvs(data, edit)


def _shadow_value(rng: random.Random, tag: int, mc: MutationContext) -> bytes:
    """An unsigned copy for ``tag``: a plausible other value, or the signed value itself."""
    table = {
        0x5F25: bytes.fromhex("200101"), 0x5F24: bytes.fromhex("491231"),
        0x8E: bytes.fromhex("000000000000000042031F03"), 0x9F07: b"\xff\xff",
        0x5F28: bytes.fromhex("0156"), 0x9F0E: bytes(5), 0x9F0D: bytes(5), 0x9F0F: bytes(5),
        0x82: bytes.fromhex("3D00"), 0x9F36: b"\x12\x34", 0x9F6C: bytes.fromhex("0080"),
    }
    if tag == 0x5A:
        pan = _other_pan(rng, mc.scheme.pan)
        mc.log.injected_pans.append(pan)
        return bytes.fromhex(pan + ("F" if len(pan) % 2 else ""))
    value = table.get(tag)
    return value if value is not None and rng.random() < 0.7 else rng.randbytes(
        len(value) if value else rng.randint(1, 4))


def _shadow(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    pool = sorted(mc.scheme.signed_tags | {0x82, 0x9F36, 0x9F6C, 0x5A})
    tag = rng.choice(pool)

    def edit(kids: list[Tlv]) -> list[Tlv]:
        kids.insert(rng.randrange(len(kids) + 1), Tlv.primitive(tag, _shadow_value(rng, tag, mc)))
        return kids
    return _edit_tlvs(data, edit)


def _change_value(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    def edit(kids: list[Tlv]) -> list[Tlv] | None:
        idx = [i for i, k in enumerate(kids) if k.children is None and k.value]
        if not idx:
            return None
        i = rng.choice(idx)
        v = bytearray(kids[i].value)
        if rng.random() < 0.5:
            j = rng.randrange(len(v))
            v[j] = (v[j] + rng.choice((1, -1, 0x10))) % 256
        else:
            v = bytearray(rng.randbytes(len(v)))
        kids[i] = Tlv.primitive(kids[i].tag, bytes(v))
        return kids
    return _edit_tlvs(data, edit)


def _remove(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    def edit(kids: list[Tlv]) -> list[Tlv] | None:
        if not kids:
            return None
        del kids[rng.randrange(len(kids))]
        return kids
    return _edit_tlvs(data, edit)


def _dol_long_length(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    """A PDOL (9F38), CDOL (8C/8D) or DDOL (9F49) entry with a long-form length byte."""
    def edit(kids: list[Tlv]) -> list[Tlv] | None:
        idx = [i for i, k in enumerate(kids) if k.tag in (0x9F38, 0x8C, 0x8D, 0x9F49)]
        if not idx:
            return None
        i = rng.choice(idx)
        dol = bytearray(kids[i].value)
        lengths = _dol_length_positions(bytes(dol))
        if not lengths:
            return None
        dol[rng.choice(lengths)] = rng.choice((0x81, 0x82, 0x83, 0x84, 0xFF))
        kids[i] = Tlv.primitive(kids[i].tag, bytes(dol))
        return kids
    return _edit_tlvs(data, edit)


def _dol_length_positions(dol: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(dol):
        if dol[pos] & 0x1F == 0x1F:
            pos += 1
            while pos < len(dol) and dol[pos] & 0x80:
                pos += 1
        pos += 1
        if pos < len(dol):
            out.append(pos)
        pos += 1
    return out


def _other_pan(rng: random.Random, pan: str) -> str:
    body = pan[:6] + "".join(str(rng.randrange(10)) for _ in pan[6:-1])
    return body + luhn_check_digit(body)


def _track2_pan(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    def edit(kids: list[Tlv]) -> list[Tlv] | None:
        idx = [i for i, k in enumerate(kids) if k.tag == 0x57]
        if not idx:
            return None
        i = idx[0]
        head, sep, rest = kids[i].value.hex().upper().partition("D")
        if not sep or not head.isdigit() or len(head) < 12:
            return None
        pan = _other_pan(rng, head)
        mc.log.injected_pans.append(pan)
        kids[i] = Tlv.primitive(0x57, bytes.fromhex(f"{pan}D{rest}"))
        return kids
    return _edit_tlvs(data, edit)


def _nudge(tag: int, change: Callable[[random.Random, bytes], bytes]) -> Mutation:
    def mutate(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
        def edit(kids: list[Tlv]) -> list[Tlv] | None:
            idx = [i for i, k in enumerate(kids) if k.tag == tag]
            if not idx:
                return None
            i = idx[0]
            kids[i] = Tlv.primitive(tag, change(rng, kids[i].value))
            return kids
        return _edit_tlvs(data, edit)
    return mutate


def _atc(rng: random.Random, value: bytes) -> bytes:
    n = (int.from_bytes(value, "big") + rng.choice((-1, 1, -5, 0x100))) % 65536
    return n.to_bytes(2, "big")


def _ctq(rng: random.Random, value: bytes) -> bytes:
    v = bytearray(value or b"\x00\x00")
    v[rng.randrange(len(v))] ^= 1 << rng.randrange(8)
    return bytes(v)


def _reorder(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    def edit(kids: list[Tlv]) -> list[Tlv]:
        rng.shuffle(kids)
        return kids
    return _edit_tlvs(data, edit)


def _rename_template(rng: random.Random, data: bytes, mc: MutationContext) -> bytes | None:
    objs = _parse(data)
    if not objs or objs[0].children is None:
        return None
    tag = rng.choice((0x70, 0x77, 0x6F, 0x80, 0xA5))
    if tag == 0x80:
        return Tlv.primitive(0x80, b"".join(k.encode() for k in objs[0].children)).encode()
    return Tlv.template(tag, list(objs[0].children)).encode()


#: name → (weight, mutation of the response data); "sw" is handled apart
MUTATIONS: dict[str, tuple[int, Mutation]] = {
    "flip bit": (6, _flip_bit),
    "set byte": (4, _set_byte),
    "length off": (6, _length_off_by_one),
    "truncate": (4, _truncate),
    "append": (3, _append),
    "duplicate TLV": (8, _duplicate),
    "unsigned shadow": (10, _shadow),
    "change value": (8, _change_value),
    "remove TLV": (5, _remove),
    "DOL long length": (4, _dol_long_length),
    "track 2 PAN": (4, _track2_pan),
    "ATC moved": (4, _nudge(0x9F36, _atc)),
    "CTQ bits": (4, _nudge(0x9F6C, _ctq)),
    "reorder": (3, _reorder),
    "template renamed": (2, _rename_template),
}
_NAMES = [*MUTATIONS, "status word"]
_WEIGHTS = [w for w, _ in MUTATIONS.values()] + [3]

#: answers an event can hit: (label, matcher on the command, how many of them a tap sends)
TARGETS: tuple[tuple[str, Callable[[bytes], bool], int], ...] = (
    ("SELECT AID", lambda c: c[1] == 0xA4 and b"PAY.SYS" not in c, 1),
    ("GPO", lambda c: c[1] == 0xA8, 1),
    ("READ RECORD", lambda c: c[1] == 0xB2, 4),
    ("GET DATA", lambda c: c[1] == 0xCA, 2),
    ("GENERATE AC", lambda c: c[1] == 0xAE, 2),
)
_TARGET_WEIGHTS = (2, 4, 6, 1, 3)


# --- what the signatures cover ---------------------------------------------------------------


def _watched(data: bytes, scheme: Scheme, tags: frozenset[int]) -> tuple[Any, ...] | None:
    """The values of ``tags`` in one answer - other than an exact copy of a signed value -
    and, with 5A among ``tags``, the PAN of 57 (``None``: the answer does not parse). A set:
    an identical copy changes no value (the redundancy rule ends those taps anyway)."""
    objs = _parse(data)
    if objs is None:
        return None
    out = []
    for t in _primitives(objs):
        if t.tag == 0x57 and 0x5A in tags:
            out.append((0x57, t.value.hex().upper().split("D")[0]))
        elif t.tag in tags and (t.tag, t.value) not in scheme.signed_values:
            out.append((t.tag, t.value))
    return tuple(sorted(set(out)))


def _record_content(data: bytes) -> bytes | None:
    objs = _parse(data)
    if objs is None or len(objs) != 1 or objs[0].children is None:
        return None
    return objs[0].value


def _cda_content(data: bytes) -> tuple[Any, ...] | None:
    """A GENERATE AC answer as CDA covers it: the objects in order but 9F4B, and 9F4B."""
    objs = _parse(data)
    if objs is None:
        return None
    prims = _primitives(objs)
    return (tuple(t.encode() for t in prims if t.tag != 0x9F4B),
            tuple(sorted(t.value for t in prims if t.tag == 0x9F4B)))


def touches_signed(scheme: Scheme, command: bytes, before: bytes, after: bytes) -> set[str]:
    """What a mutation changed of the signed items or their unsigned shadows: a subset of
    {"static", "fdda", "cda"} (see :class:`TapLog`)."""
    if before == after or after[-2] in (0x61, 0x6C):  # the reader asks again, unchanged
        return set()
    out: set[str] = set()
    b_data, a_data = before[:-2], after[:-2]
    sw_changed = before[-2:] != after[-2:]
    if command[1] == 0xAE:
        if sw_changed or _cda_content(b_data) != _cda_content(a_data):
            out.add("cda")
        return out
    if command[1] == 0xB2 and ((command[3] >> 3), command[2]) in scheme.oda_records \
            and (sw_changed or _record_content(b_data) != _record_content(a_data)):
        out.add("static")
    classes = (("static", scheme.signed_tags | CERTIFICATE_TAGS | {0x82, 0x5A}),
               ("fdda", FDDA_SIGNED_TAGS),
               ("cda", CDA_SIGNED_TAGS if command[1] == 0xCA else frozenset()))
    for name, tags in classes:
        if not tags:
            continue
        w_before, w_after = _watched(b_data, scheme, tags), _watched(a_data, scheme, tags)
        if (sw_changed and w_before) or (w_after is None and w_before) or (
                w_after is not None and w_before != w_after):
            out.add(name)
    return out


def _rests_on_touched(result: TransactionResult, log: TapLog) -> bool:
    """Did this tap's outcome rest on something the mutations changed?"""
    return "static" in log.touched or (
        "fdda" in log.touched and result.oda_method == "fDDA") or (
        "cda" in log.touched and result.oda_method == "CDA")


# --- the card in transit ---------------------------------------------------------------------


class HostileLink:
    """The card behind a link that applies the tap's mutation events to its answers."""

    def __init__(self, card: HceCard, scheme: Scheme, rng: random.Random,
                 events: list[tuple[str, int, str]], log: TapLog) -> None:
        self.card, self.scheme, self.rng, self.log = card, scheme, rng, log
        self.atr = card.atr
        self.events = events
        self.seen: Counter[str] = Counter()

    def reset(self) -> None:
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        response = self.card.process(apdu)
        for label, matches, _ in TARGETS:
            if matches(apdu):
                nth = self.seen[label]
                self.seen[label] += 1
                original = response
                for target, n, kind in self.events:
                    if target == label and n == nth:
                        response = self._mutate(apdu, response, kind, f"{label} #{nth}")
                # what the terminal gets against what the card sent (two events on one
                # answer may undo each other)
                self.log.touched |= touches_signed(self.scheme, apdu, original, response)
                break
        return response

    def _mutate(self, apdu: bytes, response: bytes, kind: str, where: str) -> bytes:
        mc = MutationContext(self.scheme, apdu, self.log)
        if kind == "status word":
            sw = self.rng.choice(STATUS_WORDS)
            mutated = response[:-2] + sw.to_bytes(2, "big")
        else:
            try:
                data = MUTATIONS[kind][1](self.rng, response[:-2], mc)
            except ValueError:  # a mutation that does not apply to this answer
                data = None
            if data is None:
                data = _flip_bit(self.rng, response[:-2], mc)
                kind += " (fallback: flip bit)"
            mutated = (data if data is not None else response[:-2]) + response[-2:]
        if mutated != response:
            self.log.events.append(f"{where}: {kind}")
        return mutated


# --- the run ----------------------------------------------------------------------------------


@dataclass
class FuzzSummary:
    taps: int = 0
    mutated_taps: int = 0
    signed_touched_taps: int = 0
    exceptions: int = 0
    internal_errors: int = 0
    signed_offline_approvals: int = 0
    clear_pans: int = 0
    offline_approvals: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    outcomes_by_scheme: dict[str, Counter[str]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counters(self) -> dict[str, int]:
        return {"exceptions": self.exceptions, "internal_errors": self.internal_errors,
                "signed_offline_approvals": self.signed_offline_approvals,
                "clear_pans": self.clear_pans}

    def to_json(self) -> dict[str, Any]:
        return {
            "taps": self.taps, "mutated_taps": self.mutated_taps,
            "signed_touched_taps": self.signed_touched_taps, "counters": self.counters,
            "offline_approvals": self.offline_approvals,
            "outcomes": dict(self.outcomes.most_common()),
            "outcomes_by_scheme": {k: dict(v.most_common())
                                   for k, v in self.outcomes_by_scheme.items()},
            "seconds": round(self.seconds, 1),
            "taps_per_second": round(self.taps / self.seconds, 1) if self.seconds else None,
            "examples": self.examples,
        }


def _offline_approval(result: TransactionResult) -> bool:
    return result.outcome == Outcome.APPROVED or (
        result.final_outcome == Outcome.APPROVED and "approved offline" in result.reason)


def _clear_pan(result: TransactionResult, scheme: Scheme, log: TapLog) -> bool:
    record = json.dumps(result.to_json()).upper()
    # the digits masking hides (after the first six), so a PAN shown in clear is caught
    # whatever its padding or case; and the rest of track 2 (15 digits and more: a shorter
    # needle meets the same digits by chance in the hex of a record)
    needles = [scheme.pan[6:], *(p[6:] for p in log.injected_pans), scheme.track2_tail]
    return any(n and n in record for n in needles)


def _events(rng: random.Random) -> list[tuple[str, int, str]]:
    k = rng.choices((0, 1, 2), (1, 7, 2))[0]
    events = []
    for _ in range(k):
        label, _, count = rng.choices(TARGETS, _TARGET_WEIGHTS)[0]
        events.append((label, rng.randrange(count), rng.choices(_NAMES, _WEIGHTS)[0]))
    return events


def _host(fields: dict[str, Any]) -> dict[str, Any]:
    return {"t": "0110", "11": fields.get("11", "000001"), "39": "00"}


def run_fuzz(taps: int, seed: int, *, first: int = 0,
             progress: Callable[[int, FuzzSummary], None] | None = None,
             records: list[dict[str, Any]] | None = None) -> FuzzSummary:
    """Run ``taps`` mutated taps from ``seed`` (tap numbers ``first`` ... ``first + taps -
    1``: tap *i* is the same in every run); returns the summary (counters, outcomes).
    ``records``, when given, receives each tap's redacted record."""
    products = schemes(seed)
    config = TerminalConfig.default()
    capks = capk_store(config)
    summary = FuzzSummary()
    start = time.perf_counter()
    for i in range(first, first + taps):
        rng = random.Random(f"emvtap kernel fuzz {seed} {i}")
        scheme = products[i % len(products)]
        amount = rng.choices([a for a, _ in AMOUNTS], [w for _, w in AMOUNTS])[0]
        log = TapLog()
        card = HceCard(scheme.profile, StateStore(), random_bytes=rng.randbytes)
        link = HostileLink(card, scheme, rng, _events(rng), log)
        online = rng.random() < 0.25
        try:
            result = perform_transaction(
                LoopbackTransport(link), config, amount, capks=capks, now=NOW,
                unpredictable_number=rng.randbytes(4), rng=random.Random(rng.random()),
                switch="none", authorise=_host if online else None)
        except Exception as exc:  # the counter this bench exists for
            summary.exceptions += 1
            summary.taps += 1
            _example(summary, i, scheme, log, "exception",
                     "".join(traceback.format_exception_only(exc)).strip())
            continue
        summary.taps += 1
        if records is not None:
            records.append({"tap": i, "events": log.events, "record": result.to_json()})
        summary.mutated_taps += bool(log.events)
        touched = _rests_on_touched(result, log)
        summary.signed_touched_taps += touched
        final = str(result.final_outcome or result.outcome)
        summary.outcomes[final] += 1
        summary.outcomes_by_scheme.setdefault(scheme.name, Counter())[final] += 1
        if "internal error" in result.reason:
            summary.internal_errors += 1
            _example(summary, i, scheme, log, "internal error", result.reason)
        if _offline_approval(result):
            summary.offline_approvals += 1
            if touched:
                summary.signed_offline_approvals += 1
                _example(summary, i, scheme, log, "offline approval on changed signed data",
                         result.reason)
        if _clear_pan(result, scheme, log):
            summary.clear_pans += 1
            _example(summary, i, scheme, log, "clear PAN in the record", result.reason)
        if progress and summary.taps % 10000 == 0:
            summary.seconds = time.perf_counter() - start
            progress(summary.taps, summary)
    summary.seconds = time.perf_counter() - start
    return summary


def _example(summary: FuzzSummary, tap: int, scheme: Scheme, log: TapLog, what: str,
             detail: str) -> None:
    if len(summary.examples) < 20:
        summary.examples.append({"tap": tap, "scheme": scheme.name, "what": what,
                                 "events": log.events, "detail": detail})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--taps", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first", type=int, default=0,
                    help="number of the first tap (to replay one: --first N --taps 1)")
    ap.add_argument("--records", help="write every tap's redacted record to this JSON file")
    ap.add_argument("--json", help="also write the summary to this file")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    if args.taps < 1:
        ap.error("--taps must be at least 1")

    def progress(done: int, s: FuzzSummary) -> None:
        print(f"{done} taps, {s.seconds:.0f} s: {s.counters}", file=sys.stderr, flush=True)

    records: list[dict[str, Any]] | None = [] if args.records else None
    summary = run_fuzz(args.taps, args.seed, first=args.first, records=records,
                       progress=None if args.quiet else progress)
    if args.records:
        with open(args.records, "w", encoding="utf-8") as f:
            json.dump(records, f, indent=1)
    report = summary.to_json()
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0 if not any(summary.counters.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
