"""Reader transports of the terminal: one interface (:class:`~.base.Transport`), one driver per
kind of reader, chosen by a spec string.

==========================  =====================================================
``pcsc:`` / ``pcsc:N``      PC/SC reader by index (pyscard, pcscd)
``pcsc:<name>``             PC/SC reader by exact name or unique substring
``loopback:``               an in-process card object (``card=`` argument)
``nfc:usb[:…]``             nfcpy reader on USB (PN53x, ACR122U raw, RC-S380)
``nfc:udp:HOST:PORT``       nfcpy's ``udp`` driver (virtual radio on loopback)
``nfc:sim:CHIP:HOST:PORT``  nfcpy's CHIP driver on a simulated chip (``emvtap.chipsim``)
==========================  =====================================================
"""

from __future__ import annotations

from typing import Any

from .base import (
    BaseTransport,
    CardLike,
    CardRemovedError,
    Exchange,
    NoCardError,
    Transport,
    TransportError,
    transmit_apdu,
)

__all__ = [
    "BaseTransport",
    "CardLike",
    "CardRemovedError",
    "Exchange",
    "NoCardError",
    "Transport",
    "TransportError",
    "open_transport",
    "transmit_apdu",
]

SPEC_FORMS = ("pcsc:[INDEX|NAME], loopback:, nfc:usb[:BUS[:DEV]|:VID[:PID]], nfc:udp[:HOST[:PORT]]"
              ", nfc:sim:CHIP[:HOST[:PORT]]")


def open_transport(spec: str, card: CardLike | None = None, **options: Any) -> BaseTransport:
    """The transport for a reader *spec* (see the module docstring). Nothing is opened on the
    radio or in pcscd until ``connect``. ``card`` is the card object of ``loopback:``.

    Raises :class:`ValueError` for a spec of no known form.
    """
    kind, sep, rest = spec.partition(":")
    if not sep:
        raise ValueError(f"reader spec {spec!r} has no kind; expected one of: {SPEC_FORMS}")
    if kind == "pcsc":
        from .pcsc import PcscTransport

        return PcscTransport(rest, **options)
    if kind == "loopback":
        if rest:
            raise ValueError(f"loopback: takes no argument, got {spec!r}")
        if card is None:
            raise ValueError("loopback: needs the card object (open_transport(spec, card=…))")
        if options:
            raise ValueError(f"loopback: takes no options, got {sorted(options)}")
        from .loopback import LoopbackTransport

        return LoopbackTransport(card)
    if kind == "nfc":
        from .nfc import NfcTransport

        return NfcTransport(rest, **options)
    raise ValueError(f"unknown reader kind {kind!r} in {spec!r}; expected one of: {SPEC_FORMS}")
