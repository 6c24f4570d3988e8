"""What every card link shares: the card interface it serves, the guarded call into the card,
and the one log line per command.

A card link carries APDUs from some reader to a card object and its answers back. The card
(``process(apdu) -> bytes``, ``reset()``, ``atr``) knows nothing about the link; the link knows
nothing about EMV. Links log lengths and INS only: the card's own log masks PANs.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, runtime_checkable

from emvtap.endpoints import CardLike

__all__ = ["CardLink", "LinkError", "describe_command", "process_guarded"]

log = logging.getLogger("emvtap.link")  # under the CLI's "emvtap" logger

#: ISO/IEC 7816-4, 5.1.3: "no precise diagnosis" - what a card answers when it failed inside.
SW_NO_PRECISE_DIAGNOSIS = b"\x6f\x00"


class LinkError(Exception):
    """The link itself failed (the reader side went away, a protocol violation)."""


@runtime_checkable
class CardLink(Protocol):
    """A running link: :meth:`serve` blocks until :meth:`stop` (from any thread, or a signal
    handler) or Ctrl-C; it serves tap after tap."""

    card: CardLike
    stopped: threading.Event

    def serve(self) -> None: ...

    def stop(self) -> None: ...


def describe_command(apdu: bytes) -> str:
    """``CLA INS P1 P2`` and the length, never the data (it may hold a PAN or a PIN block)."""
    if len(apdu) < 4:
        return f"{len(apdu)}-byte command"
    return f"{apdu[:4].hex(' ').upper()} ({len(apdu)} bytes)"


def process_guarded(card: CardLike, apdu: bytes, link: str) -> bytes:
    """``card.process(apdu)``, logged; a card that raises or answers without a status word is
    answered ``6F00`` instead of taking the link down (docs/architecture.md: cards never crash)."""
    try:
        response = bytes(card.process(apdu))
    except Exception:
        log.exception("%s: card raised on %s; answering 6F00", link, describe_command(apdu))
        return SW_NO_PRECISE_DIAGNOSIS
    if len(response) < 2:
        log.error("%s: card answered %d bytes (no SW); answering 6F00", link, len(response))
        return SW_NO_PRECISE_DIAGNOSIS
    log.info(
        "%s: %s -> %d bytes, SW %s",
        link,
        describe_command(apdu),
        len(response) - 2,
        response[-2:].hex().upper(),
    )
    return response
