"""One tap, run by the terminal in this process - the runner lives on the terminal side - on
the rig's terminal reader: the transaction, the issuer update when the host left one pending
("present card again"), the tap's JSON record (the one ``emvtap terminal pay --json`` writes)
and its clock.

:class:`TimedTransport` sits between the kernel and the reader: it times the wait for the card
and every command, and it is where a card is pulled mid-tap - before the command after the
``pull_after``-th, the field gives the card up and the command meets an empty field, as when a
customer pulls the phone away too early.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.hil.results import TapTiming
from terminal.config import TerminalConfig
from terminal.transport.base import CardRemovedError, Transport

__all__ = ["TapRun", "TimedTransport", "run_tap", "summary"]


@dataclass
class _Presentation:
    connect_s: float = 0.0
    first: float | None = None  # perf_counter of the first command sent
    last: float | None = None  # … and of the last response received


class TimedTransport:
    """A transport that keeps the clock of each presentation and can pull the card."""

    def __init__(self, inner: Transport, pull_after: int | None = None,
                 pull: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.pull_after = pull_after
        self.pull = pull
        self.sent = 0
        self.pulled = False
        self.pull_error: Exception | None = None  # the rig failed to pull: re-raised later
        self.presentations: list[_Presentation] = []

    @property
    def exchanges(self) -> Any:
        return self.inner.exchanges

    def connect(self, timeout: float | None = None) -> bytes:
        start = time.perf_counter()
        try:
            return self.inner.connect(timeout)
        finally:
            self.presentations.append(_Presentation(time.perf_counter() - start))

    def transmit(self, apdu: bytes) -> bytes:
        if (self.pull_after is not None and self.sent == self.pull_after and not self.pulled
                and self.pull is not None):
            self.pulled = True
            try:
                self.pull()
            except Exception as exc:  # the kernel would turn it into an outcome: keep it
                self.pull_error = exc
                raise CardRemovedError(f"pulling the card failed: {exc}") from exc
        self.sent += 1
        now = self.presentations[-1] if self.presentations else _Presentation()
        start = time.perf_counter()
        now.first = start if now.first is None else now.first
        response = self.inner.transmit(apdu)
        now.last = time.perf_counter()  # a command that met an empty field does not count
        return response

    def disconnect(self) -> None:
        self.inner.disconnect()

    def __enter__(self) -> TimedTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()


@dataclass
class TapRun:
    record: dict[str, Any]
    timing: TapTiming
    pulled: bool = False
    update_ms: float | None = None  # the issuer update presentation, card in field
    extra: dict[str, Any] = field(default_factory=dict)


def _in_field_ms(p: _Presentation) -> float:
    if p.first is None or p.last is None:
        return 0.0
    return (p.last - p.first) * 1000


def run_tap(
    transport: Transport,
    config: TerminalConfig,
    amount: int,
    *,
    switch: str,
    card_timeout: float,
    pin: str | None = None,
    pull_after: int | None = None,
    pull: Callable[[], None] | None = None,
    issuer_update: bool = True,
    present_again: Callable[[], None] | None = None,
) -> TapRun:
    """One purchase of *amount* (minor units) on *transport*, then the issuer update if the
    host left one pending and *issuer_update* is on (``present_again`` runs first: the POS
    says "present card again")."""
    from terminal.pay import perform_issuer_update, perform_transaction

    timed = TimedTransport(transport, pull_after, pull)
    result = perform_transaction(timed, config, amount, switch=switch, card_timeout=card_timeout,
                                 pin_entry=(lambda: pin) if pin else None)
    timed.disconnect()
    if timed.pull_error is not None:
        raise timed.pull_error
    first_apdus = len(result.apdus)
    if issuer_update and result.issuer_update.get("pending"):
        if present_again is not None:
            present_again()
        perform_issuer_update(timed, config, result, card_timeout=card_timeout)
        timed.disconnect()
    record = result.to_json()
    first = timed.presentations[0] if timed.presentations else _Presentation()
    timing = TapTiming(
        connect_ms=first.connect_s * 1000,
        in_field_ms=_in_field_ms(first),
        online_ms=(record.get("online") or {}).get("ms"),
        apdus=[{"name": a.get("name", ""), "sw": a.get("sw", ""), "ms": a.get("ms", 0.0),
                "presentation": 1 if i < first_apdus else 2}
               for i, a in enumerate(record.get("apdus", []))],
    )
    update_ms = (_in_field_ms(timed.presentations[1]) if len(timed.presentations) > 1
                 else None)
    return TapRun(record, timing, timed.pulled, update_ms)


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a tap record a report shows (PANs are masked in the record already)."""
    online = record.get("online") or {}
    oda = record.get("oda") or {}
    update = record.get("issuer_update") or {}
    return {
        "amount": record.get("amount"),
        "outcome": record.get("outcome"),
        "final_outcome": record.get("final_outcome"),
        "reason": record.get("reason"),
        "cvm": record.get("cvm"),
        "oda": f"{oda.get('method')}: {oda.get('result')}",
        "cryptogram": (record.get("cryptogram") or {}).get("type"),
        "atc": (record.get("cryptogram") or {}).get("atc"),
        "response_code": online.get("response_code"),
        "tvr": record.get("tvr"),
        "tvr_bits": record.get("tvr_bits", []),
        "issuer_update": update.get("result"),
        "issuer_script_results": record.get("issuer_script_results"),
        "pan": record.get("pan"),
        "aid": record.get("aid"),
    }
