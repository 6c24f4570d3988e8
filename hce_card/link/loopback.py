"""The in-process card link: the terminal's ``LoopbackTransport`` calls the card through it, so
an in-process tap goes through the same guard and log line as a tap over vpcd or NFC."""

from __future__ import annotations

import threading

from emvtap.endpoints import CardLike

from .base import process_guarded

__all__ = ["LoopbackLink"]


class LoopbackLink:
    """A card made reachable in-process. It is itself card-like (``process``, ``reset``,
    ``atr``), so ``LoopbackTransport(LoopbackLink(card))`` is a complete virtual tap;
    :meth:`serve` only waits for :meth:`stop`, for symmetry with the other links."""

    name = "loopback"

    def __init__(self, card: CardLike) -> None:
        self.card = card
        self.stopped = threading.Event()
        self.commands = 0

    @property
    def atr(self) -> bytes:
        return bytes(self.card.atr)

    def reset(self) -> None:
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        self.commands += 1
        return process_guarded(self.card, bytes(apdu), self.name)

    def serve(self) -> None:
        """Block until :meth:`stop` (or Ctrl-C)."""
        try:
            self.stopped.wait()
        except KeyboardInterrupt:
            self.stopped.set()

    def stop(self) -> None:
        self.stopped.set()
