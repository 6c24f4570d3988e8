"""Expectations on a tap, as one table: each key a scenario may write under ``expect:``, how to
read the actual value from the terminal's JSON record of the tap (the record ``emvtap terminal
pay --json`` writes), how to compare, and how to validate what the scenario wrote.

A value may be a list: the tap passes when the actual value is any one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emvtap.bits import CID, TVR, Bit, is_set, names
from terminal.outcome import Cvm, Outcome

__all__ = ["CVM_ALIASES", "EXPECTATIONS", "TVR_BITS", "Expectation", "check", "normalise"]

Record = Mapping[str, Any]

#: Short names a scenario may use for the Book A CVM outcome values.
CVM_ALIASES: dict[str, str] = {
    "CDCVM": str(Cvm.CDCVM),
    "SIGNATURE": str(Cvm.SIGNATURE),
    "NONE": str(Cvm.NO_CVM),
}

#: TVR bits by the lower-case attribute name of :class:`emvtap.bits.TVR`.
TVR_BITS: dict[str, Bit] = {
    name.lower(): bit for name, bit in vars(TVR).items() if isinstance(bit, Bit)
}

SCRIPT_RESULTS = {0x0: "not performed", 0x1: "failed", 0x2: "successful"}


def _one_of(allowed: set[str], what: str) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        text = str(value).upper()
        text = CVM_ALIASES.get(text, text) if what == "CVM" else text
        if text not in allowed:
            raise ValueError(f"{value!r} is not a {what}; one of {sorted(allowed)}")
        return text

    return validate


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool | dict | list):
        raise ValueError(f"{value!r}: expected a text value")
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _response_code(value: Any) -> str | None:
    if value is None:
        return None  # "the tap never went online"
    text = f"{value:02d}" if isinstance(value, int) else str(value)
    if len(text) != 2:
        raise ValueError(f"response code {value!r}: two characters, quoted (\"00\", \"62\")")
    return text.upper()


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r}: expected a count (0, 1, 2 …)")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r}: expected true or false")
    return value


def _tvr_names(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{value!r}: expected a TVR bit name or a list of them")
    unknown = [n for n in names if n.lower() not in TVR_BITS]
    if unknown:
        raise ValueError(f"unknown TVR bits {unknown}; known: {sorted(TVR_BITS)}")
    return tuple(n.lower() for n in names)


def _tvr(record: Record) -> bytes:
    return bytes.fromhex(str(record.get("tvr") or "0000000000"))


def _script_result(record: Record) -> str:
    raw = bytes.fromhex(str(record.get("issuer_script_results") or ""))
    if not raw:
        return "none"
    results = {SCRIPT_RESULTS.get(raw[i] >> 4, "unknown") for i in range(0, len(raw), 5)}
    return "failed" if "failed" in results else results.pop() if len(results) == 1 else "mixed"


@dataclass(frozen=True)
class Expectation:
    key: str
    description: str
    actual: Callable[[Record], Any]
    validate: Callable[[Any], Any]
    matches: Callable[[Any, Any], bool] = lambda actual, expected: actual == expected
    accepts_list: bool = True  # a list means "any one of"


OUTCOMES = {str(o) for o in Outcome}
CVMS = {str(c) for c in Cvm}

#: Every key of ``expect:`` (docs/hil.md, "Expectations").
EXPECTATIONS: dict[str, Expectation] = {e.key: e for e in (
    Expectation("outcome", "the kernel's outcome (Book A 6.2)",
                lambda r: r.get("outcome"), _one_of(OUTCOMES, "outcome")),
    Expectation("final_outcome", "the outcome after the online response (else the kernel's)",
                lambda r: r.get("final_outcome") or r.get("outcome"),
                _one_of(OUTCOMES, "outcome")),
    Expectation("cvm", "the CVM outcome (NO CVM, ONLINE PIN, CDCVM, SIGNATURE, N/A)",
                lambda r: r.get("cvm"), _one_of(CVMS, "CVM")),
    Expectation("oda_method", "offline data authentication method (fDDA, SDA, DDA, CDA, none)",
                lambda r: (r.get("oda") or {}).get("method"), _text,
                lambda a, e: str(a).lower() == e.lower()),
    Expectation("oda_result", "ODA result: starts with the text (ok, failed, not performed)",
                lambda r: (r.get("oda") or {}).get("result"), _text,
                lambda a, e: str(a).lower().startswith(e.lower())),
    Expectation("cryptogram", "cryptogram type the card returned (ARQC, TC, AAC)",
                lambda r: (r.get("cryptogram") or {}).get("type"),
                _one_of(set(CID.NAMES.values()), "cryptogram type")),
    Expectation("response_code", "DE 39 of the 0110 (quoted: \"00\"); null = never online",
                lambda r: (r.get("online") or {}).get("response_code"), _response_code),
    Expectation("online", "whether an authorization request went to the switch",
                lambda r: bool((r.get("online") or {}).get("request")), _flag,
                accepts_list=False),
    Expectation("reason_contains", "text the outcome's reason contains (any case)",
                lambda r: r.get("reason") or "", _text,
                lambda a, e: e.lower() in str(a).lower()),
    Expectation("tvr_set", "TVR bits that must be set (names of emvtap.bits.TVR, any case)",
                _tvr, _tvr_names,
                lambda a, e: all(is_set(a, TVR_BITS[n]) for n in e), accepts_list=False),
    Expectation("tvr_clear", "TVR bits that must not be set",
                _tvr, _tvr_names,
                lambda a, e: not any(is_set(a, TVR_BITS[n]) for n in e), accepts_list=False),
    Expectation("arpc", "whether the 0110 carried issuer authentication data (91, the ARPC)",
                lambda r: bool((r.get("online") or {}).get("arpc")), _flag, accepts_list=False),
    Expectation("scripts", "number of issuer scripts (71/72) in the 0110",
                lambda r: (r.get("online") or {}).get("scripts", 0), _count),
    Expectation("issuer_update", "issuer update on the second presentment: starts with the text "
                "(delivered, card not presented again, …); null = none was pending",
                lambda r: (r.get("issuer_update") or {}).get("result"), _optional_text,
                lambda a, e: a == e if e is None else str(a).lower().startswith(e.lower())),
    Expectation("script_results", "issuer script results (none, successful, failed, mixed)",
                _script_result, _one_of({"NONE", "SUCCESSFUL", "FAILED", "MIXED"}, "result"),
                lambda a, e: a.upper() == e),
)}


def normalise(key: str, value: Any) -> Any:
    """The validated form of ``expect: {key: value}``; :class:`ValueError` says what is wrong.
    A list becomes a tuple of accepted values."""
    if key not in EXPECTATIONS:
        raise ValueError(f"unknown expectation {key!r}; known: {sorted(EXPECTATIONS)}")
    exp = EXPECTATIONS[key]
    if isinstance(value, list) and exp.accepts_list:
        if not value:
            raise ValueError(f"{key}: an empty list accepts nothing")
        return tuple(exp.validate(v) for v in value)
    return exp.validate(value)


def _show(value: Any, any_of: bool = True) -> str:
    if isinstance(value, bytes):  # a TVR
        bits = names(value, TVR)
        return value.hex().upper() + (f" ({'; '.join(bits)})" if bits else "")
    if isinstance(value, tuple):
        return " or ".join(_show(v) for v in value) if any_of else repr(list(value))
    return repr(value)


def check(checks: Mapping[str, Any], record: Record) -> list[str]:
    """The expectations *record* does not meet, one message each (empty: all met)."""
    failures = []
    for key, expected in checks.items():
        exp = EXPECTATIONS[key]
        actual = exp.actual(record)
        options = expected if isinstance(expected, tuple) and exp.accepts_list else (expected,)
        if not any(exp.matches(actual, option) for option in options):
            failures.append(f"{key}: expected {_show(expected, exp.accepts_list)}, "
                            f"got {_show(actual)}")
    return failures
