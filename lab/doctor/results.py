"""What a check returns (:class:`CheckResult`) and what the doctor returns (:class:`Report`),
with their JSON form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.doctor.readers import Role

Status = Literal["ok", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "skip")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: a ``warn``/``fail`` needs a fix, a ``skip`` its reason."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.name!r}: status {self.status!r} not in {STATUSES}")
        if self.status in ("warn", "fail") and not self.fix:
            raise ValueError(f"check {self.name!r}: a {self.status} needs a fix")
        if self.status == "skip" and not self.detail:
            raise ValueError(f"check {self.name!r}: a skip needs its reason")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class Report:
    role: Role
    results: tuple[CheckResult, ...]

    @property
    def ready(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ready else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "ready": self.ready,
            "checks": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
