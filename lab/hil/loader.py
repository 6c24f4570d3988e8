"""Reading scenario files (YAML, ``format: emvtap-hil-scenario/1``; docs/hil.md) into the
model of :mod:`lab.hil.model`, strictly: an unknown key, a wrong type or a reference to a
card that is not declared is a :class:`ScenarioError` naming the file and the place in it, so a
typo never turns into a silently weaker test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from emvtap.device_types import DEVICE_TYPE_NAMES, DeviceType
from lab.hil.expect import EXPECTATIONS, normalise
from lab.hil.model import (
    Budget,
    CardForm,
    CardRef,
    CardSpec,
    EventStep,
    Expectations,
    InAppStep,
    PersoSource,
    PresentStep,
    ProfileSource,
    ProvisionSource,
    RemoveStep,
    ReplenishStep,
    Scenario,
    Step,
    SyncStep,
    TapStep,
)
from terminal.config import TerminalConfig

__all__ = [
    "CHANNELS",
    "FORMAT",
    "NEEDS",
    "ScenarioError",
    "find_scenarios",
    "load_scenario",
    "load_scenarios",
    "parse_amount",
]

FORMAT = "emvtap-hil-scenario/1"
CHANNELS = ("device", "bank", "network")
NEEDS = ("hardware",)
REF_ATTRIBUTES = ("mpan", "span", "device")
EVENT_VIA = ("api", "cli")


class ScenarioError(ValueError):
    """A scenario file that cannot be run as written; the message says where and why."""


class _At:
    """Where in the file we are, for error messages: ``steps[2].tap.amount``."""

    def __init__(self, path: Path, where: str = "") -> None:
        self.path, self.where = path, where

    def __truediv__(self, key: str | int) -> _At:
        part = f"[{key}]" if isinstance(key, int) else (f".{key}" if self.where else key)
        return _At(self.path, self.where + part)

    def error(self, message: str) -> ScenarioError:
        return ScenarioError(f"{self.path}: {self.where or 'top level'}: {message}")


def _mapping(value: Any, at: _At, allowed: Iterable[str], required: Iterable[str] = ()
             ) -> dict[str, Any]:
    """*value* as a mapping with only *allowed* keys and every *required* one."""
    if not isinstance(value, dict):
        raise at.error(f"expected a mapping, got {type(value).__name__}")
    allowed = set(allowed)
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise at.error(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [k for k in required if k not in value]
    if missing:
        raise at.error(f"missing key(s) {missing}")
    return value


def _typed(value: Any, kind: Any, at: _At, what: str) -> Any:
    """*value* if it is a *kind* (a bool is never taken for a number)."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise at.error(f"expected {what}, got {value!r}")
    return value


def _choice(value: Any, choices: Iterable[str], at: _At) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise at.error(f"{value!r} is not one of {list(choices)}")
    return str(value)


def parse_amount(value: Any, exponent: int = 2) -> tuple[int, str]:
    """``150`` / ``150.00`` / ``"150.00"`` → (15000, "150.00") in minor units."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not an amount")
    try:
        major = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    minor = major.scaleb(exponent)
    if major < 0 or minor != minor.to_integral_value():
        raise ValueError(f"{value!r}: negative or more than {exponent} decimals")
    return int(minor), f"{major:.{exponent}f}"


def _amount_text(value: Any, at: _At) -> str:
    try:
        return parse_amount(value)[1]
    except ValueError as exc:
        raise at.error(str(exc)) from None


def _budget(value: Any, at: _At) -> Budget:
    d = _mapping(value, at, ("tap_ms", "apdu_ms"))
    for key in d:
        _typed(d[key], int | float, at / key, "milliseconds")
    return Budget(tap_ms=d.get("tap_ms"), apdu_ms=d.get("apdu_ms"))


# --- cards ---------------------------------------------------------------------------------

def _limit(d: dict[str, Any], at: _At) -> str:
    value = d.get("no_password_limit")
    return "" if value is None else _amount_text(value, at / "no_password_limit")


def _perso(value: Any, at: _At, base: Path) -> PersoSource:
    d = _mapping(value, at, ("seed", "device_type", "balance", "no_password_limit"), ("seed",))
    return PersoSource(
        seed=_typed(d["seed"], int, at / "seed", "an integer seed"),
        device_type=DeviceType(_choice(d.get("device_type", DeviceType.HANDSET_SE),
                                       DEVICE_TYPE_NAMES, at / "device_type")),
        balance=_amount_text(d.get("balance", "1000.00"), at / "balance"),
        no_password_limit=_limit(d, at),
    )


def _provision(value: Any, at: _At, base: Path) -> ProvisionSource:
    d = _mapping(value, at, ("device", "device_type", "span", "balance", "no_password_limit",
                             "scheme", "purpose"), ("device",))
    return ProvisionSource(
        scheme=_choice(d.get("scheme", "quickpass"), ("quickpass", "visa", "mastercard"),
                       at / "scheme"),
        purpose=_choice(d.get("purpose", "contactless"), ("contactless", "in-app", "any"),
                        at / "purpose"),
        device=str(_typed(d["device"], str, at / "device", "a device name")),
        device_type=DeviceType(_choice(d.get("device_type", DeviceType.HANDSET_SE),
                                       DEVICE_TYPE_NAMES, at / "device_type")),
        span=str(_typed(d.get("span", ""), str, at / "span", "a card label")),
        balance=_amount_text(d.get("balance", "1000.00"), at / "balance"),
        no_password_limit=_limit(d, at),
    )


def _profile(value: Any, at: _At, base: Path) -> ProfileSource:
    if isinstance(value, str):
        value = {"path": value}
    d = _mapping(value, at, ("path", "enroll", "balance", "no_password_limit"), ("path",))
    path = (base / str(_typed(d["path"], str, at / "path", "a file path"))).resolve()
    if not path.is_file():
        raise (at / "path").error(f"no profile file {path}")
    return ProfileSource(path, bool(_typed(d.get("enroll", True), bool, at / "enroll", "a flag")),
                         _amount_text(d.get("balance", "1000.00"), at / "balance"),
                         _limit(d, at))


#: Where a card's profile comes from: key in the card mapping → parser.
SOURCES: dict[str, Callable[[Any, _At, Path], PersoSource | ProvisionSource | ProfileSource]] = {
    "perso": _perso,
    "provision": _provision,
    "profile": _profile,
}


def _card(name: str, value: Any, at: _At, base: Path) -> CardSpec:
    d = _mapping(value, at, ("form", "cdcvm", "pin", "prompt", *SOURCES), ("form",))
    form = CardForm(_choice(d["form"], [f.value for f in CardForm], at / "form"))
    sources = [k for k in SOURCES if k in d]
    if form is CardForm.REAL:
        if sources or "pin" in d:
            raise at.error("a real card has no profile or issuer account here: it is the card "
                           "in the person's hand")
        source = None
    else:
        if len(sources) != 1:
            raise at.error(f"a {form} card needs exactly one of {list(SOURCES)}")
        source = SOURCES[sources[0]](d[sources[0]], at / sources[0], base)
    return CardSpec(
        name=name,
        form=form,
        source=source,
        cdcvm=bool(_typed(d.get("cdcvm", False), bool, at / "cdcvm", "true or false")),
        pin=_pin(d.get("pin"), at / "pin"),
        prompt=str(d.get("prompt", "")),
    )


def _pin(value: Any, at: _At) -> str | None:
    if value is not None and not (isinstance(value, str) and value.isdigit()
                                  and 4 <= len(value) <= 12):
        raise at.error("a PIN is 4 to 12 digits, quoted")
    return value


# --- steps ---------------------------------------------------------------------------------

def _card_name(value: Any, at: _At, cards: Mapping[str, CardSpec]) -> str:
    if value is None:
        if len(cards) == 1:
            return next(iter(cards))
        raise at.error(f"name the card: one of {sorted(cards)}")
    if value not in cards:
        raise at.error(f"no card {value!r}; declared: {sorted(cards)}")
    return str(value)


def _subject(value: Any, at: _At, cards: Mapping[str, CardSpec]) -> CardRef | str:
    """``phone.mpan`` → a reference; anything else is taken literally (an MPAN, a device id)."""
    text = str(_typed(value, str, at, "a subject (card.mpan, card.span, card.device)"))
    card, dot, attribute = text.partition(".")
    if dot and card in cards:
        if attribute not in REF_ATTRIBUTES:
            raise at.error(f"{text!r}: a card reference ends in one of {list(REF_ATTRIBUTES)}")
        if cards[card].form is CardForm.REAL:
            raise at.error(f"{text!r}: a real card is not known to the switch")
        return CardRef(card, attribute)
    return text


def _expectations(value: Any, at: _At) -> Expectations:
    if value is None:
        return Expectations()
    d = _mapping(value, at, EXPECTATIONS)
    checks = {}
    for key, expected in d.items():
        try:
            checks[key] = normalise(key, expected)
        except ValueError as exc:
            raise (at / key).error(str(exc)) from None
    return Expectations(checks)


def _tap(body: Any, extra: dict[str, Any], at: _At, cards: Mapping[str, CardSpec],
         exponent: int) -> TapStep:
    d = _mapping(body, at / "tap", ("card", "amount", "pin", "pull_after", "repeat",
                                    "issuer_update"), ("amount",))
    try:
        minor, text = parse_amount(d["amount"], exponent)
    except ValueError as exc:
        raise (at / "tap" / "amount").error(str(exc)) from None
    pull_after = d.get("pull_after")
    if pull_after is not None and (_typed(pull_after, int, at / "tap" / "pull_after",
                                          "a number of commands") < 1):
        raise (at / "tap" / "pull_after").error("at least 1 (the card was selected)")
    repeat = _typed(d.get("repeat", 1), int, at / "tap" / "repeat", "a count")
    if repeat < 1:
        raise (at / "tap" / "repeat").error("at least 1")
    pin = _pin(d.get("pin"), at / "tap" / "pin")
    return TapStep(
        card=_card_name(d.get("card"), at / "tap" / "card", cards),
        amount=minor,
        amount_text=text,
        expect=_expectations(extra.get("expect"), at / "expect"),
        pin=pin,
        pull_after=pull_after,
        repeat=repeat,
        issuer_update=bool(_typed(d.get("issuer_update", True), bool,
                                  at / "tap" / "issuer_update", "true or false")),
        budget=_budget(extra["budget"], at / "budget") if "budget" in extra else None,
        title=str(extra.get("title", "")),
    )


def _event(body: Any, extra: dict[str, Any], at: _At, cards: Mapping[str, CardSpec],
           exponent: int) -> EventStep:
    d = _mapping(body, at / "event", ("name", "subject", "channel", "params", "via"),
                 ("name", "subject", "channel"))
    expect = _mapping(extra.get("expect") or {}, at / "expect", ("affected",))
    affected = expect.get("affected")
    if affected is not None:
        _typed(affected, int, at / "expect" / "affected", "a number of device cards")
    params = _mapping(d.get("params") or {}, at / "event" / "params",
                      ("new_span", "new_expiry", "amount"))
    return EventStep(
        event=str(_typed(d["name"], str, at / "event" / "name", "an event name")),
        subject=_subject(d["subject"], at / "event" / "subject", cards),
        channel=_choice(d["channel"], CHANNELS, at / "event" / "channel"),
        params=dict(params),
        via=_choice(d.get("via", "api"), EVENT_VIA, at / "event" / "via"),
        affected=affected,
        title=str(extra.get("title", "")),
    )


def _replenish(body: Any, extra: dict[str, Any], at: _At, cards: Mapping[str, CardSpec],
               exponent: int) -> ReplenishStep:
    d = _mapping(body if isinstance(body, dict) else {"card": body}, at / "replenish",
                 ("card", "count"))
    count = d.get("count")
    if count is not None:
        _typed(count, int, at / "replenish" / "count", "a number of keys")
    name = _card_name(d.get("card"), at / "replenish" / "card", cards)
    source = cards[name].source
    if not (isinstance(source, ProvisionSource) and source.device_type is DeviceType.HCE):
        raise (at / "replenish").error(f"{name} is not an HCE wallet card "
                                       "(provision: {device_type: hce})")
    return ReplenishStep(name, count, str(extra.get("title", "")))


IN_APP_RESULTS = ("APPROVED", "DECLINED", "REFUSED")


def _in_app(body: Any, extra: dict[str, Any], at: _At, cards: Mapping[str, CardSpec],
            exponent: int) -> InAppStep:
    d = _mapping(body, at / "in_app", ("card", "amount", "passcode"), ("amount",))
    try:
        minor, text = parse_amount(d["amount"], exponent)
    except ValueError as exc:
        raise (at / "in_app" / "amount").error(str(exc)) from None
    name = _card_name(d.get("card"), at / "in_app" / "card", cards)
    if not isinstance(cards[name].source, ProvisionSource):
        raise (at / "in_app").error(f"{name} is not in a wallet (provision: {{...}})")
    expect = _mapping(extra.get("expect") or {}, at / "expect", ("result", "response_code"))
    checks = {}
    if "result" in expect:
        checks["result"] = _choice(expect["result"], IN_APP_RESULTS, at / "expect" / "result")
    if "response_code" in expect:
        checks["response_code"] = str(expect["response_code"])
    passcode = d.get("passcode")
    return InAppStep(name, minor, text, None if passcode is None else str(passcode), checks,
                     str(extra.get("title", "")))


def _sync(body: Any, extra: dict[str, Any], at: _At, cards: Mapping[str, CardSpec],
          exponent: int) -> SyncStep:
    name = body.get("card") if isinstance(body, dict) else body
    return SyncStep(_card_name(name, at / "sync", cards), str(extra.get("title", "")))


def _physical(cls: type[PresentStep] | type[RemoveStep], key: str) -> Callable[..., Step]:
    def parse(body: Any, extra: dict[str, Any], at: _At, cards: Mapping[str, CardSpec],
              exponent: int) -> Step:
        name = body.get("card") if isinstance(body, dict) else body
        return cls(_card_name(name, at / key, cards), str(extra.get("title", "")))

    return parse


#: Step kinds: the key that names the step → its parser. Extra keys of every step: title,
#: expect, budget (where they mean something).
STEP_KINDS: dict[str, Callable[..., Step]] = {
    "tap": _tap,
    "event": _event,
    "replenish": _replenish,
    "present": _physical(PresentStep, "present"),
    "remove": _physical(RemoveStep, "remove"),
    "in_app": _in_app,
    "sync": _sync,
}
STEP_EXTRAS = ("title", "expect", "budget")


def _step(value: Any, at: _At, cards: Mapping[str, CardSpec], exponent: int) -> Step:
    d = _mapping(value, at, (*STEP_KINDS, *STEP_EXTRAS))
    kinds = [k for k in STEP_KINDS if k in d]
    if len(kinds) != 1:
        raise at.error(f"a step is exactly one of {list(STEP_KINDS)}, got {kinds or 'none'}")
    kind = kinds[0]
    if kind != "tap" and "budget" in d:
        raise at.error("budget applies to taps only")
    if kind not in ("tap", "event", "in_app") and "expect" in d:
        raise at.error(f"a {kind} step has no expectations")
    return STEP_KINDS[kind](d[kind], d, at, cards, exponent)


# --- scenario ------------------------------------------------------------------------------

TOP_KEYS = ("format", "id", "title", "description", "tags", "needs", "switch", "terminal",
            "budget", "cards", "steps")


def load_scenario(path: str | Path) -> Scenario:
    """Read and check one scenario file."""
    path = Path(path)
    at = _At(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise at.error(f"cannot read: {exc}") from None
    d = _mapping(raw, at, TOP_KEYS, ("format", "title", "cards", "steps"))
    if d["format"] != FORMAT:
        raise (at / "format").error(f"{d['format']!r}: this runner reads {FORMAT!r}")
    terminal = _mapping(d.get("terminal") or {}, at / "terminal", ("config", "card_timeout"))
    config = _mapping(terminal.get("config") or {}, at / "terminal" / "config",
                      _terminal_config_keys())
    exponent = int(config.get("transaction_currency_exponent", 2))
    cards_raw = _mapping(d["cards"], at / "cards", [str(k) for k in d["cards"] or {}])
    if not cards_raw:
        raise (at / "cards").error("declare at least one card")
    cards = {str(n): _card(str(n), v, at / "cards" / str(n), path.parent)
             for n, v in cards_raw.items()}
    steps_raw = d["steps"]
    if not isinstance(steps_raw, list) or not steps_raw:
        raise (at / "steps").error("a non-empty list of steps")
    steps = tuple(_step(s, at / "steps" / i, cards, exponent) for i, s in enumerate(steps_raw))
    needs = d.get("needs") or []
    for i, need in enumerate(_typed(needs, list, at / "needs", "a list")):
        _choice(need, NEEDS, at / "needs" / i)
    tags = _typed(d.get("tags") or [], list, at / "tags", "a list")
    card_timeout = _typed(terminal.get("card_timeout", 10.0), int | float,
                          at / "terminal" / "card_timeout", "seconds")
    return Scenario(
        id=str(d.get("id") or path.stem),
        title=str(d["title"]),
        path=path,
        cards=cards,
        steps=steps,
        budget=_budget(d["budget"], at / "budget") if "budget" in d else Budget(),
        needs=frozenset(needs),
        terminal_config=dict(config),
        switch=bool(_typed(d.get("switch", True), bool, at / "switch", "true or false")),
        card_timeout=float(card_timeout),
        description=str(d.get("description", "")).strip(),
        tags=tuple(str(t) for t in tags),
    )


def _terminal_config_keys() -> list[str]:
    return [k for k in TerminalConfig.defaults_dict() if not k.startswith("_")]


def find_scenarios(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files named by *paths*: files as given, directories searched for ``*.yaml``
    and ``*.yml`` (sorted, recursively)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml"))
        elif p.is_file():
            found.append(p)
        else:
            raise ScenarioError(f"{p}: no such scenario file or directory")
    return found


def load_scenarios(paths: Iterable[str | Path]) -> list[Scenario]:
    """Every scenario under *paths*; the ids must be unique."""
    scenarios = [load_scenario(p) for p in find_scenarios(paths)]
    seen: dict[str, Path] = {}
    for s in scenarios:
        if s.id in seen:
            raise ScenarioError(f"{s.path}: id {s.id!r} is also used by {seen[s.id]}")
        seen[s.id] = s.path
    return scenarios
