"""The list of AIDs a reader tries on a card without a usable PPSE or PSE (EMV 4.4 Book 1,
12.3.3, "list of AIDs"), every scheme a reader may meet - not only those the terminal's
configuration accepts for payment. Partial names: one SELECT finds every product under it."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["KNOWN_AIDS", "KnownAid", "scheme_of"]


class KnownAid(NamedTuple):
    aid: bytes
    scheme: str


KNOWN_AIDS: tuple[KnownAid, ...] = tuple(KnownAid(bytes.fromhex(a), s) for a, s in (
    ("A0000000031010", "Visa credit/debit"),
    ("A0000000032010", "Visa Electron"),
    ("A0000000032020", "V PAY"),
    ("A0000000038010", "Visa Plus"),
    ("A0000000041010", "Mastercard"),
    ("A0000000043060", "Maestro"),
    ("A0000000046000", "Cirrus"),
    ("A00000002501", "American Express"),
    ("A0000001523010", "Discover"),
    ("A0000001524010", "Discover Common Debit"),
    ("A0000000651010", "JCB"),
    ("A000000333", "UnionPay"),
    ("A0000000421010", "Cartes Bancaires"),
    ("A0000000422010", "Cartes Bancaires"),
    ("A0000003591010028001", "girocard"),
    ("D27600002545500100", "girocard"),
    ("A0000002771010", "Interac"),
    ("A0000006581010", "MIR"),
    ("A0000005241010", "RuPay"),
    ("A0000000101030", "Maestro UK"),
    ("A000000004", "Mastercard (other)"),
    ("A000000003", "Visa (other)"),
))


def scheme_of(aid: bytes) -> str:
    """The scheme whose AID (or RID) ``aid`` starts with; ``""`` when none is known."""
    best = ""
    best_len = 0
    for known in KNOWN_AIDS:
        if aid.startswith(known.aid) and len(known.aid) > best_len:
            best, best_len = known.scheme, len(known.aid)
    return best
