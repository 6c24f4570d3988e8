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

from emvtap.endpoints import READER_KINDS, CardLike, EndpointKind, parse_endpoint, spec_forms

from .base import (
    BaseTransport,
    CardRemovedError,
    Exchange,
    NoCardError,
    Transport,
    TransportError,
    transmit_apdu,
)

__all__ = [
    "BaseTransport",
    "CardRemovedError",
    "Exchange",
    "NoCardError",
    "Transport",
    "TransportError",
    "open_transport",
    "transmit_apdu",
]

SPEC_FORMS = spec_forms(READER_KINDS)


def open_transport(spec: str, card: CardLike | None = None, **options: Any) -> BaseTransport:
    """The transport for a reader *spec* (see the module docstring). Nothing is opened on the
    radio or in pcscd until ``connect``. ``card`` is the card object of ``loopback:``.

    Raises :class:`ValueError` for a spec of no known form
    (:func:`emvtap.endpoints.parse_endpoint`).
    """
    endpoint = parse_endpoint(spec, READER_KINDS)
    if endpoint.kind is EndpointKind.PCSC:
        from .pcsc import PcscTransport

        return PcscTransport(endpoint.argument, **options)
    if endpoint.kind is EndpointKind.LOOPBACK:
        if card is None:
            raise ValueError("loopback: needs the card object (open_transport(spec, card=…))")
        if options:
            raise ValueError(f"loopback: takes no options, got {sorted(options)}")
        from .loopback import LoopbackTransport

        return LoopbackTransport(card)
    from .nfc import NfcTransport

    return NfcTransport(endpoint.argument, **options)
