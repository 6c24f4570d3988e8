"""Waiting on pcscd for a reader's card state, with ``SCardGetStatusChange`` (pcscd answers at
its next 400 ms poll; no sleeping, no polling of our own)."""

from __future__ import annotations

from lab.hil.results import RigError

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
    from terminal.transport.base import TransportError
    from terminal.transport.pcsc import wait_for_card_state

    try:
        return wait_for_card_state(reader, present=present, timeout=timeout)
    except (TimeoutError, TransportError) as exc:
        raise RigError(str(exc)) from exc
