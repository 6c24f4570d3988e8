"""The Luhn check digit (ISO/IEC 7812-1 Annex B) of PANs and payment tokens."""

from __future__ import annotations

__all__ = ["luhn_check_digit", "luhn_complete", "luhn_valid"]


def _sum(digits: str, double_odd_positions: bool) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if (i % 2 == 0) == double_odd_positions:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial`` ‖ digit Luhn-valid."""
    return str((10 - _sum(partial, True) % 10) % 10)


def luhn_complete(partial: str) -> str:
    return partial + luhn_check_digit(partial)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and _sum(number, False) % 10 == 0
