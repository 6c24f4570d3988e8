"""What an attack is, as data: the commands it targets, the lies it tells (mutations), the
scenario it is run in and the verdict a correct terminal reaches.

An attack file (YAML) and the built-in catalogue (:mod:`hce_card.attacks.catalogue`) use the
same form; :func:`attack_from_dict` turns one entry into an :class:`Attack` and refuses a bad
entry with a :class:`AttackError` that names the entry and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hce_card.attacks.mutators import check_args

__all__ = [
    "FAMILIES",
    "OUTCOMES",
    "TARGETS",
    "Attack",
    "AttackError",
    "Mutation",
    "Scenario",
    "Verdict",
    "attack_from_dict",
    "mutation_from_dict",
]

#: The four families of the catalogue.
FAMILIES = ("cvm", "shadowing", "crypto", "transport")

#: Outcomes a terminal can end a tap with (EMV Contactless Book A, 6.2.2).
OUTCOMES = ("APPROVED", "DECLINED", "ONLINE REQUEST", "TRY ANOTHER INTERFACE",
            "END APPLICATION", "TRY AGAIN", "SELECT NEXT")

#: Verdict shorthands used by the catalogue: a correct terminal ends in one of these.
NOT_APPROVED_OFFLINE = ("DECLINED", "ONLINE REQUEST", "END APPLICATION", "TRY AGAIN",
                        "TRY ANOTHER INTERFACE")
SHORTHANDS: dict[str, tuple[str, ...]] = {
    "not approved offline": NOT_APPROVED_OFFLINE,
    "no transaction": ("END APPLICATION", "TRY AGAIN", "TRY ANOTHER INTERFACE", "DECLINED"),
}

#: Which command's answer a mutation changes ("record:2.1" = SFI 2 record 1).
TARGETS = ("ppse", "select", "gpo", "record", "get_data", "gen_ac", "gen_ac1", "gen_ac2",
           "internal_auth", "any")

#: Mutation operations (implemented in :mod:`hce_card.attacks.mutators`).
OPS = ("add", "set", "remove", "bits", "flip", "set_pan", "length_delta", "truncate",
       "oversize", "raw", "sw", "loop61", "loop6c", "delay", "remove_card", "atc_rewind",
       "serve_aid_as", "resign_issuer_certificate")


class AttackError(ValueError):
    """An attack definition emvtap cannot run (unknown id, field or operation)."""


@dataclass(frozen=True)
class Mutation:
    """One lie: ``op`` applied to the answer of the commands ``target`` names.

    ``args`` are the operation's own fields (``path``, ``tag``, ``value``, ``sw`` …)."""

    op: str
    target: str = "any"
    args: Mapping[str, Any] = field(default_factory=dict)
    #: apply to the n-th matching command of a tap only (1-based); 0: every one
    occurrence: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "target": self.target, **self.args}
        if self.occurrence:
            out["occurrence"] = self.occurrence
        return out


@dataclass(frozen=True)
class Scenario:
    """The card image and the tap the attack is run in: the card product (``quickpass``,
    ``visa``, ``mastercard``, ``multi``), the amount in minor units, terminal settings that
    differ from the defaults (keys of the terminal configuration), and how many taps (the
    verdict is on the last)."""

    card: str = "quickpass"
    amount: int = 1000
    terminal: Mapping[str, Any] = field(default_factory=dict)
    taps: int = 1
    links: tuple[str, ...] = ()  # link kinds the attack needs ("nfc"); empty: any
    date: str = ""  # the tap's date (YYYY-MM-DD) where the terminal lets us set it

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"card": self.card, "amount": self.amount, "taps": self.taps}
        if self.terminal:
            out["terminal"] = dict(self.terminal)
        if self.links:
            out["links"] = list(self.links)
        if self.date:
            out["date"] = self.date
        return out


@dataclass(frozen=True)
class Verdict:
    """What a correct terminal does: its outcome is one of ``outcomes`` and every TVR bit in
    ``tvr`` (names of :class:`emvtap.bits.TVR`) is set; ``text`` says it for a person."""

    outcomes: tuple[str, ...]
    tvr: tuple[str, ...] = ()
    text: str = ""
    tsi: tuple[str, ...] = ()  # names of emvtap.bits.TSI that must be set
    aid: str = ""  # the application the terminal must have selected (hex), when it matters
    cvm: str = ""  # the CVM outcome (Book A 6.2.2), when it matters

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcomes": list(self.outcomes), "tvr": list(self.tvr),
                               "text": self.text}
        out |= {k: v for k, v in (("tsi", list(self.tsi)), ("aid", self.aid),
                                  ("cvm", self.cvm)) if v}
        return out


@dataclass(frozen=True)
class Attack:
    id: str
    title: str
    family: str
    description: str
    source: str
    expected: Verdict
    mutations: tuple[Mutation, ...]
    scenario: Scenario = field(default_factory=Scenario)
    #: the kernel rule a correct terminal applies to reach the verdict (Book and section)
    kernel_rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "family": self.family,
            "description": self.description, "source": self.source,
            "kernel_rule": self.kernel_rule, "scenario": self.scenario.to_dict(),
            "expected": self.expected.to_dict(),
            "mutations": [m.to_dict() for m in self.mutations],
        }


_MUTATION_KEYS = frozenset({"op", "target", "occurrence"})


def mutation_from_dict(d: Mapping[str, Any], where: str) -> Mutation:
    if not isinstance(d, Mapping):
        raise AttackError(f"{where}: a mutation is a mapping, got {d!r}")
    op = d.get("op")
    if op not in OPS:
        raise AttackError(f"{where}: unknown op {op!r}; expected one of {', '.join(OPS)}")
    target = str(d.get("target", "any"))
    if target.split(":", 1)[0] not in TARGETS:
        raise AttackError(f"{where}: unknown target {target!r}; expected one of "
                          f"{', '.join(TARGETS)} (record:SFI.REC, get_data:TAG)")
    occurrence = d.get("occurrence", 0)
    if not isinstance(occurrence, int) or occurrence < 0:
        raise AttackError(f"{where}: occurrence must be a whole number ≥ 0")
    args = {k: v for k, v in d.items() if k not in _MUTATION_KEYS}
    try:
        check_args(op, args, where)
    except ValueError as exc:
        raise AttackError(str(exc)) from None
    return Mutation(op, target, args, occurrence)


def _verdict(d: Any, where: str) -> Verdict:
    if isinstance(d, str):
        d = {"outcomes": d}
    if not isinstance(d, Mapping):
        raise AttackError(f"{where}: expected is a mapping or an outcome")
    outcomes = d.get("outcomes")
    if isinstance(outcomes, str):
        text = outcomes
        outcomes = SHORTHANDS.get(outcomes.lower(), (outcomes,))
    else:
        text = ""
    outcomes = tuple(str(o).upper() for o in (outcomes or ()))
    bad = [o for o in outcomes if o not in OUTCOMES]
    if not outcomes or bad:
        raise AttackError(f"{where}: expected outcomes {bad or 'missing'}; expected some of "
                          f"{', '.join(OUTCOMES)} or {', '.join(SHORTHANDS)}")
    from emvtap.bits import TSI, TVR

    tvr = tuple(str(b).upper() for b in d.get("tvr", ()))
    tsi = tuple(str(b).upper() for b in d.get("tsi", ()))
    unknown = [b for b in tvr if not hasattr(TVR, b)] + [b for b in tsi if not hasattr(TSI, b)]
    if unknown:
        raise AttackError(f"{where}: unknown TVR/TSI bit(s) {unknown} (names in emvtap.bits)")
    return Verdict(outcomes, tvr, str(d.get("text", text or " or ".join(outcomes))), tsi,
                   str(d.get("aid", "")).upper(), str(d.get("cvm", "")).upper())


def _scenario(d: Any, where: str) -> Scenario:
    if d is None:
        return Scenario()
    if not isinstance(d, Mapping):
        raise AttackError(f"{where}: scenario is a mapping")
    card = str(d.get("card", "quickpass"))
    if card not in ("quickpass", "visa", "mastercard", "multi"):
        raise AttackError(f"{where}: card {card!r} is not quickpass, visa, mastercard or multi")
    amount, taps = d.get("amount", 1000), d.get("taps", 1)
    if not isinstance(amount, int) or amount < 0 or not isinstance(taps, int) or taps < 1:
        raise AttackError(f"{where}: amount (minor units) and taps must be whole numbers")
    terminal = d.get("terminal", {})
    if not isinstance(terminal, Mapping):
        raise AttackError(f"{where}: terminal is a mapping of configuration keys")
    when = str(d.get("date", ""))
    if when and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", when):
        raise AttackError(f"{where}: date {when!r} is not YYYY-MM-DD")
    unknown = sorted(set(d) - {"card", "amount", "terminal", "taps", "links", "date"})
    if unknown:
        raise AttackError(f"{where}: unknown scenario field(s) {unknown}")
    return Scenario(card, amount, dict(terminal), taps, tuple(d.get("links", ())), when)


def attack_from_dict(d: Mapping[str, Any], where: str = "attack") -> Attack:
    """One attack from its data-table form (catalogue entry or YAML)."""
    if not isinstance(d, Mapping):
        raise AttackError(f"{where}: an attack is a mapping")
    ident = d.get("id")
    if not isinstance(ident, str) or not ident:
        raise AttackError(f"{where}: missing id")
    where = f"{where} {ident}"
    family = str(d.get("family", "shadowing"))
    if family not in FAMILIES:
        raise AttackError(f"{where}: family {family!r} is not one of {', '.join(FAMILIES)}")
    raw = d.get("mutations")
    if not isinstance(raw, list) or not raw:
        raise AttackError(f"{where}: mutations must be a non-empty list")
    return Attack(
        id=ident, title=str(d.get("title", ident)), family=family,
        description=str(d.get("description", "")), source=str(d.get("source", "")),
        expected=_verdict(d.get("expected"), where),
        mutations=tuple(mutation_from_dict(m, f"{where} mutation {i + 1}")
                        for i, m in enumerate(raw)),
        scenario=_scenario(d.get("scenario"), where),
        kernel_rule=str(d.get("kernel_rule", "")),
    )
