"""Waiting on pcscd for a reader's card state, with ``SCardGetStatusChange`` (pcscd answers at
its next 400 ms poll; no sleeping, no polling of our own)."""

from __future__ import annotations

import time

from terminal.hil.results import RigError

__all__ = ["reader_names", "wait_for_reader"]


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


def reader_names() -> list[str]:
    """The readers pcscd lists; :class:`RigError` (with the fix) when pcscd does not answer."""
    from terminal.transport.base import TransportError
    from terminal.transport.pcsc import list_readers

    try:
        return list_readers()
    except TransportError as exc:
        raise RigError(f"{exc} (start it: bash scripts/pcscd-start.sh)") from exc


def wait_for_reader(reader: str, *, present: bool, timeout: float = 5.0) -> float:
    """Block until pcscd reports a card in *reader* (or none); the seconds waited."""
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise RigError(f"SCardEstablishContext: {scard.SCardGetErrorMessage(hresult)}")
    start = time.monotonic()
    deadline = start + timeout
    state = scard.SCARD_STATE_UNAWARE
    try:
        while True:
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            hresult, states = scard.SCardGetStatusChange(context, wait_ms, [(reader, state)])
            if hresult == scard.SCARD_S_SUCCESS:
                event_state = states[0][1]
                if bool(event_state & scard.SCARD_STATE_PRESENT) == present:
                    return time.monotonic() - start
                state = event_state & ~scard.SCARD_STATE_CHANGED
            elif _code(hresult) != _code(scard.SCARD_E_TIMEOUT):
                raise RigError(f"SCardGetStatusChange({reader}): "
                               f"{scard.SCardGetErrorMessage(hresult)}")
            if time.monotonic() >= deadline:
                what = "a card" if present else "no card"
                raise RigError(f"pcscd did not report {what} in {reader!r} within {timeout} s")
    finally:
        scard.SCardReleaseContext(context)
