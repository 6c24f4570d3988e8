"""The card's persistent state (ATC, counters, blocked flags), written atomically.

The ATC is written to stable storage *before* a cryptogram computed with it leaves the card
(EMV 4.4 Book 2, A1.3: a session key is never reused), so a crash at any point can skip an ATC
but never repeat one. Writes go to a temporary file, are fsync'ed, and renamed over the old file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

__all__ = ["ATC_MAX", "AtcExhausted", "CardState", "StateStore"]

ATC_MAX = 0xFFFF


class AtcExhausted(RuntimeError):
    """The ATC reached its maximum: the application must refuse to generate cryptograms."""


@dataclass(frozen=True)
class CardState:
    atc: int = 0
    last_online_atc: int = 0
    consecutive_offline: int = 0
    application_blocked: bool = False
    card_blocked: bool = False
    issuer_authentication_failed: bool = False
    pin_try_counter: int = 3
    used_keys: tuple[int, ...] = field(default_factory=tuple)


class StateStore:
    """Holds the current :class:`CardState`; with a ``path`` every change is durable."""

    def __init__(self, path: str | Path | None = None, initial: CardState | None = None) -> None:
        self.path = Path(path) if path else None
        if self.path and self.path.exists():
            raw = json.loads(self.path.read_text())
            raw["used_keys"] = tuple(raw.get("used_keys", ()))
            self._state = CardState(**raw)
        else:
            self._state = initial or CardState()
            self._write(self._state)

    @property
    def state(self) -> CardState:
        return self._state

    def update(self, **changes: object) -> CardState:
        new = replace(self._state, **changes)
        self._write(new)
        self._state = new
        return new

    def next_atc(self, **changes: object) -> int:
        """Increment the ATC (with any other changes) and make it durable, then return it."""
        if self._state.atc >= ATC_MAX:
            raise AtcExhausted("ATC reached FFFF")
        return self.update(atc=self._state.atc + 1, **changes).atc

    def _write(self, state: CardState) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(state), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
