"""Card links: the wire between a reader and the software card, one module per kind of link.

=============================  =========================================================
``loopback``                   in-process (:class:`~.loopback.LoopbackLink`)
``vpcd`` / ``vpcd:HOST:PORT``  client of pcscd's virtual reader (:class:`~.vpcd.VpcdLink`)
``nfc:udp[:HOST[:PORT]]``      ISO 14443-4 card side on nfcpy's ``udp`` driver
``nfc:usb[:…]``                ISO 14443-4 card side on a PN53x or RC-S380 (nfcpy)
``nfc:sim:CHIP:HOST:PORT``    the same on nfcpy's CHIP driver on a simulated chip
=============================  =========================================================
"""

from __future__ import annotations

from typing import Any

from emvtap.endpoints import (
    CARD_LINK_KINDS,
    CardLike,
    EndpointKind,
    parse_endpoint,
    spec_forms,
)

from .base import CardLink, LinkError, describe_command, process_guarded

__all__ = [
    "CardLink",
    "LinkError",
    "describe_command",
    "open_link",
    "process_guarded",
]

SPEC_FORMS = spec_forms(CARD_LINK_KINDS)


def open_link(spec: str, card: CardLike, **options: Any) -> CardLink:
    """The link for *spec* serving *card* (call ``serve()`` to run it). Raises
    :class:`ValueError` for a spec of no known form (:func:`emvtap.endpoints.parse_endpoint`)."""
    endpoint = parse_endpoint(spec, CARD_LINK_KINDS, bare_kind=True)
    if endpoint.kind is EndpointKind.LOOPBACK:
        from .loopback import LoopbackLink

        return LoopbackLink(card)
    if endpoint.kind is EndpointKind.VPCD:
        from .vpcd import VpcdLink

        assert endpoint.address is not None
        return VpcdLink(card, endpoint.address.host, endpoint.address.port, **options)
    from .nfc_target import NfcTargetLink

    return NfcTargetLink(card, endpoint.argument, **options)
