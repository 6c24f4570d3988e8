"""A card object called in-process: no reader, no radio, the same transport rules.

``LoopbackTransport(card)`` hands each command to ``card.process(apdu)``; ``connect`` is a
power-on (``card.reset()``) and returns ``card.atr``. GET RESPONSE and ``6Cxx`` are handled as
for any reader (``base.transmit_apdu``), so a card that answers ``61xx`` behaves the same on
loopback as through pcscd.
"""

from __future__ import annotations

from emvtap.endpoints import CardLike

from .base import BaseTransport, CardRemovedError, NoCardError

__all__ = ["LoopbackTransport"]


class LoopbackTransport(BaseTransport):
    """The terminal side of an in-process tap.

    :param card: any object with ``process(apdu) -> bytes``, ``reset()`` and ``atr``.
        ``None`` models an empty field: :meth:`connect` raises :class:`NoCardError`.
    """

    spec = "loopback:"

    def __init__(self, card: CardLike | None) -> None:
        super().__init__()
        self.card = card
        self.connected = False

    def connect(self, timeout: float | None = None) -> bytes:
        """Power the card on (``reset()``) and return its ATR. No card → :class:`NoCardError`
        at once: an in-process field never changes while we wait."""
        if self.card is None:
            raise NoCardError("loopback: no card in the field")
        self.card.reset()
        self.connected = True
        self.exchanges = []
        return bytes(self.card.atr)

    def _send(self, apdu: bytes) -> bytes:
        if not self.connected or self.card is None:
            raise CardRemovedError("loopback: card not connected (removed or never presented)")
        return bytes(self.card.process(apdu))

    def remove_card(self) -> None:
        """Take the card out of the field: the next command raises :class:`CardRemovedError`."""
        self.connected = False

    def disconnect(self) -> None:
        self.connected = False
