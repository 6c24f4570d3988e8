"""The readers this machine offers, with what each can be in the lab (terminal, card emulator),
and their card insert/remove events with the ATR decoded - what ``pcsc_scan`` shows.

PC/SC readers come from pcscd (pyscard); every PC/SC reader is a terminal only (PC/SC has no
card emulation). nfcpy devices come from a USB probe run in a child process killed after a
timeout (:func:`lab.doctor.probes.probe_nfcpy`), their role from the nfcpy driver
(:data:`lab.doctor.readers.NFCPY_DRIVER_ROLES`: the ACR122U is a terminal only, PN533,
SCL3711, RC-S380 can also emulate a card). nfcpy's ``udp`` radio is virtual and not probed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from emvtap.atr import decode_atr
from lab.doctor.probes import NfcProbeTimeout, probe_nfcpy
from lab.doctor.readers import NFCPY_DRIVER_ROLES, READERS_BY_ID, TERMINAL, pcsc_label

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "PcscError", "ReaderEvent", "ReaderInfo", "ReaderList",
           "list_readers", "watch_pcsc"]

FORMAT_NAME = "emvtap-readers"
FORMAT_VERSION = 1

_ROLE_WORDS = {"terminal": "terminal", "emulator": "card emulator"}


def _roles(roles: frozenset[str]) -> list[str]:
    return [_ROLE_WORDS[r] for r in ("terminal", "emulator") if r in roles]


@dataclass
class ReaderInfo:
    spec: str  # what --reader / --link takes
    name: str
    kind: str  # "pcsc" or "nfcpy"
    roles: list[str]
    status: str = "ok"
    card_atr: bytes | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"spec": self.spec, "name": self.name, "kind": self.kind,
                               "roles": self.roles, "status": self.status, "note": self.note}
        if self.card_atr is not None:
            out["card"] = decode_atr(self.card_atr).to_json()
        return out


@dataclass
class ReaderList:
    readers: list[ReaderInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- PC/SC -------------------------------------------------------------------------------


class PcscError(Exception):
    """pcscd is not reachable (or pyscard is missing)."""


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:
        raise PcscError(f"pyscard is not importable: {exc}") from exc
    return scard


def _context(scard: Any) -> Any:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscError(f"no PC/SC service (pcscd): {scard.SCardGetErrorMessage(hresult)}")
    return context


def _reader_names(scard: Any, context: Any) -> list[str]:
    hresult, names = scard.SCardListReaders(context, [])
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscError(f"SCardListReaders: {scard.SCardGetErrorMessage(hresult)}")
    return list(names)


def _states(scard: Any, context: Any, names: list[str]) -> dict[str, tuple[int, bytes]]:
    """Reader → (event state, ATR) right now (SCardGetStatusChange with a zero timeout)."""
    if not names:
        return {}
    hresult, states = scard.SCardGetStatusChange(
        context, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names])
    if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
        raise PcscError(f"SCardGetStatusChange: {scard.SCardGetErrorMessage(hresult)}")
    return {name: (state, bytes(atr)) for name, state, atr in states}


def pcsc_readers() -> list[ReaderInfo]:
    scard = _scard()
    context = _context(scard)
    try:
        names = _reader_names(scard, context)
        states = _states(scard, context, names)
    finally:
        scard.SCardReleaseContext(context)
    out = []
    for name in names:
        state, atr = states.get(name, (0, b""))
        present = bool(state & scard.SCARD_STATE_PRESENT) and bool(atr)
        note = pcsc_label(name)
        if state & scard.SCARD_STATE_EXCLUSIVE:
            note += "; in exclusive use by another program"
        out.append(ReaderInfo(f"pcsc:{name}", name, "pcsc", _roles(TERMINAL),
                              "card present" if present else "empty",
                              atr if present else None, note))
    return out


# --- nfcpy -------------------------------------------------------------------------------


def nfcpy_devices(timeout: float) -> tuple[list[ReaderInfo], str | None]:
    """USB devices nfcpy has a driver for; the probe is killed after *timeout* seconds."""
    try:
        probe = probe_nfcpy(timeout)
    except NfcProbeTimeout as exc:
        return [], str(exc)
    out = []
    for dev in probe.devices:
        known = READERS_BY_ID.get((dev.vid, dev.pid))
        name = dev.name or (known.name if known else f"{dev.vid:04x}:{dev.pid:04x}")
        roles = NFCPY_DRIVER_ROLES.get(dev.driver, TERMINAL)
        status = {"ok": "ready", "busy": "busy (a kernel driver or pcscd holds it)",
                  "denied": "permission denied (udev rules: emvtap doctor)",
                  "error": "error"}[dev.status]
        out.append(ReaderInfo(f"nfc:{dev.path}", name, "nfcpy", _roles(roles), status,
                              note=f"nfcpy driver {dev.driver}"
                                   + (f": {dev.error}" if dev.error else "")))
    return out, probe.error


def list_readers(*, nfc: bool = True, nfc_timeout: float = 5.0) -> ReaderList:
    result = ReaderList()
    try:
        result.readers += pcsc_readers()
    except PcscError as exc:
        result.problems.append(f"PC/SC: {exc}")
    if nfc:
        devices, problem = nfcpy_devices(nfc_timeout)
        result.readers += devices
        if problem:
            result.problems.append(f"nfcpy: {problem}")
    return result


# --- watch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderEvent:
    kind: str  # "reader added", "reader removed", "card inserted", "card removed"
    reader: str
    atr: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "reader": self.reader}
        if self.atr is not None:
            out["card"] = decode_atr(self.atr).to_json()
        return out


def watch_pcsc(stopped: Callable[[], bool] = lambda: False, poll_ms: int = 500
               ) -> Iterator[ReaderEvent]:
    """Card insert/remove and reader add/remove events of pcscd, as they happen: the current
    cards first (as "card inserted"), then each change. Ends when ``stopped()`` is true
    (checked every *poll_ms*); raises :class:`PcscError` when pcscd goes away."""
    scard = _scard()
    context = _context(scard)
    try:
        known: dict[str, int] = {}
        names = _reader_names(scard, context)
        for name, (state, atr) in _states(scard, context, names).items():
            known[name] = state & ~scard.SCARD_STATE_CHANGED
            if state & scard.SCARD_STATE_PRESENT and atr:
                yield ReaderEvent("card inserted", name, atr)
        while not stopped():
            if not known:  # no reader to wait on: look for new ones every poll
                time.sleep(poll_ms / 1000)
                states = []
            else:
                hresult, states = scard.SCardGetStatusChange(context, poll_ms,
                                                             list(known.items()))
                if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                    raise PcscError(
                        f"SCardGetStatusChange: {scard.SCardGetErrorMessage(hresult)}")
                if hresult == scard.SCARD_E_TIMEOUT:
                    states = []
            for name, state, atr in states:
                before = known.get(name, 0)
                if state & scard.SCARD_STATE_UNKNOWN or state & scard.SCARD_STATE_IGNORE:
                    known.pop(name, None)
                    yield ReaderEvent("reader removed", name)
                    continue
                was, now = bool(before & scard.SCARD_STATE_PRESENT), bool(
                    state & scard.SCARD_STATE_PRESENT)
                if now and not was:
                    yield ReaderEvent("card inserted", name, bytes(atr))
                elif was and not now:
                    yield ReaderEvent("card removed", name)
                known[name] = state & ~scard.SCARD_STATE_CHANGED
            current = _reader_names(scard, context)
            for name in current:
                if name not in known:
                    yield ReaderEvent("reader added", name)
                    known[name] = scard.SCARD_STATE_UNAWARE
    finally:
        scard.SCardReleaseContext(context)
