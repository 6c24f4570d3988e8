"""What a run found: the status of each scenario and step, each tap's outcome with its timings,
and the exceptions the runner uses to stop a scenario with a given status.

Statuses (docs/hil.md, "Statuses"):

- ``passed``: every step ran and every expectation held.
- ``failed``: an expectation did not hold (the message says which).
- ``error``: the rig broke (a card process died, the switch did not start, a reader vanished).
- ``unsupported``: "not supported by this build: <what is missing>" - a part of emvtap the
  scenario needs (a CLI command or option, a transport, a terminal feature) is not in this
  build yet. Never counted as a pass.
- ``not-run``: the scenario cannot run on this rig (a real card needs real readers and a person).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NotRunnable",
    "RigError",
    "ScenarioResult",
    "Status",
    "StepResult",
    "TapTiming",
    "Unsupported",
]


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    UNSUPPORTED = "unsupported"
    NOT_RUN = "not-run"

    @property
    def ok(self) -> bool:
        """Not a failure of the build under test (the run's exit code stays 0)."""
        return self in (Status.PASSED, Status.UNSUPPORTED, Status.NOT_RUN)


class Unsupported(Exception):
    """This build lacks something the scenario needs; ``what`` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported by this build: {what}")
        self.what = what


class RigError(Exception):
    """The test rig failed (not the payment code under test)."""


class NotRunnable(Exception):
    """The scenario cannot run on this rig at all (the message says what it needs)."""


@dataclass
class TapTiming:
    """One tap's clock: ``in_field_ms`` from the first command sent to the last response
    (what the 500 ms contactless target is about), ``connect_ms`` waiting for the card,
    ``online_ms`` the 0100/0110 exchange, and every APDU with its round trip."""

    connect_ms: float = 0.0
    in_field_ms: float = 0.0
    online_ms: float | None = None
    apdus: list[dict[str, Any]] = field(default_factory=list)  # name, sw, ms

    @property
    def slowest(self) -> dict[str, Any] | None:
        return max(self.apdus, key=lambda a: a["ms"], default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "connect_ms": round(self.connect_ms, 3),
            "in_field_ms": round(self.in_field_ms, 3),
            "online_ms": self.online_ms,
            "apdus": self.apdus,
        }


@dataclass
class StepResult:
    index: int
    kind: str
    title: str
    status: Status = Status.PASSED
    message: str = ""
    seconds: float = 0.0
    #: Taps only: the outcome summary (outcome, final outcome, reason, CVM, ODA, RC, TVR …).
    tap: dict[str, Any] | None = None
    timing: TapTiming | None = None
    over_budget: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # events: the switch's answer

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "kind": self.kind,
            "title": self.title,
            "status": str(self.status),
            "message": self.message,
            "seconds": round(self.seconds, 3),
        }
        if self.tap is not None:
            out["tap"] = self.tap
        if self.timing is not None:
            out["timing"] = self.timing.to_json()
        if self.over_budget:
            out["over_budget"] = self.over_budget
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class ScenarioResult:
    id: str
    title: str
    path: str
    rig: str
    status: Status = Status.PASSED
    message: str = ""
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    workdir: str = ""

    @property
    def taps(self) -> list[StepResult]:
        return [s for s in self.steps if s.timing is not None]

    @property
    def over_budget(self) -> list[str]:
        return [f"step {s.index + 1}: {m}" for s in self.steps for m in s.over_budget]

    @property
    def status_text(self) -> str:
        """The status as a person reads it (``unsupported`` says what is missing)."""
        if self.status is Status.UNSUPPORTED:
            return self.message
        return str(self.status)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "path": self.path,
            "rig": self.rig,
            "status": str(self.status),
            "message": self.message,
            "seconds": round(self.seconds, 3),
            "over_budget": self.over_budget,
            "workdir": self.workdir,
            "steps": [s.to_json() for s in self.steps],
        }
