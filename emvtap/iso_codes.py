"""Country (ISO 3166-1) and currency (ISO 4217) names by numeric code, from the data table
``emvtap/data/iso_codes.tsv`` (the iso-codes project's lists), and the minor-unit exponent of a
currency (ISO 4217: two decimals unless listed otherwise)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import NamedTuple

__all__ = ["IsoCode", "country", "currency", "currency_exponent", "describe_country",
           "describe_currency"]


class IsoCode(NamedTuple):
    numeric: int
    alpha: str
    name: str


#: ISO 4217 currencies whose minor unit is not 2 decimals (numeric code → exponent).
CURRENCY_EXPONENTS: dict[int, int] = {
    48: 3, 108: 0, 152: 0, 262: 0, 324: 0, 348: 2, 352: 0, 368: 3, 392: 0, 400: 3, 410: 0,
    414: 3, 434: 3, 512: 3, 548: 0, 600: 0, 646: 0, 704: 0, 788: 3, 800: 0, 858: 2, 950: 0,
    952: 0, 953: 0, 990: 4,
}


@cache
def _table() -> dict[str, dict[int, IsoCode]]:
    out: dict[str, dict[int, IsoCode]] = {"country": {}, "currency": {}}
    text = (resources.files("emvtap") / "data" / "iso_codes.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        kind, numeric, alpha, name = line.split("\t")
        out[kind][int(numeric)] = IsoCode(int(numeric), alpha, name)
    return out


def _numeric(value: bytes | int | str) -> int | None:
    """A code given as its 2-byte BCD value (``08 26``), an int or a digit string."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value) if value.isdigit() else None
    text = bytes(value).hex()
    return int(text) if text.isdigit() else None


def country(value: bytes | int | str) -> IsoCode | None:
    number = _numeric(value)
    return None if number is None else _table()["country"].get(number)


def currency(value: bytes | int | str) -> IsoCode | None:
    number = _numeric(value)
    return None if number is None else _table()["currency"].get(number)


def currency_exponent(value: bytes | int | str) -> int:
    number = _numeric(value)
    return CURRENCY_EXPONENTS.get(number, 2) if number is not None else 2


def describe_country(value: bytes | int | str) -> str:
    code = country(value)
    return f"{code.name} ({code.alpha}, {code.numeric:03d})" if code else "unknown country"


def describe_currency(value: bytes | int | str) -> str:
    code = currency(value)
    return f"{code.name} ({code.alpha}, {code.numeric:03d})" if code else "unknown currency"
