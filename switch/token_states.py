"""What a token (a device card) can be, and what a lifecycle event can do to it.

A token is ``active``, ``suspended`` while any hold remains on it, or ``deleted`` (final). A
lifecycle event's effect on each affected token is one of :class:`TokenEffect`; the hold and
release effects name the hold they add or lift (``switch/lifecycle.py``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = ["Effect", "TokenEffect", "TokenState", "sql_check"]


class TokenState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"

    @classmethod
    def of_holds(cls, holds: set[str] | frozenset[str]) -> TokenState:
        """Suspended while any hold remains, active when the last is lifted."""
        return cls.SUSPENDED if holds else cls.ACTIVE


class TokenEffect(StrEnum):
    """What an event does to every token it affects."""

    HOLD = "hold"  # add a named hold (suspends)
    RELEASE = "release"  # lift a named hold (resumes when it was the last)
    DELETE = "delete"  # final
    DEFAULT = "default"  # make it the device's default card
    UPDATE = "update"  # the bank changes token data
    REMAP = "remap"  # the physical card behind it is renewed
    PUSH = "push"  # issuer data pushed to the device card
    NONE = "none"  # nothing
    POLICY = "policy"  # decided by the operator's policy (:class:`switch.lifecycle.Policy`)


class Effect(NamedTuple):
    """An effect with its argument: the hold name (``{channel}``: the asking channel) or the
    policy name."""

    kind: TokenEffect
    name: str = ""

    def hold_name(self, channel: str) -> str:
        return self.name.replace("{channel}", channel)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else str(self.kind)


def sql_check(column: str) -> str:
    """An SQL ``CHECK`` expression that holds for the token state names only."""
    return f"{column} IN ({', '.join(repr(s.value) for s in TokenState)})"
