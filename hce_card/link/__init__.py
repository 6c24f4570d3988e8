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

from .base import CardLike, CardLink, LinkError, describe_command, process_guarded

__all__ = [
    "CardLike",
    "CardLink",
    "LinkError",
    "describe_command",
    "open_link",
    "parse_host_port",
    "process_guarded",
]

SPEC_FORMS = ("loopback, vpcd[:HOST[:PORT]], nfc:udp[:HOST[:PORT]], nfc:usb[:BUS[:DEV]|:VID[:PID]]"
              ", nfc:sim:CHIP[:HOST[:PORT]]")


def parse_host_port(rest: str, default_host: str, default_port: int, spec: str) -> tuple[str, int]:
    """``""``, ``HOST`` or ``HOST:PORT`` → (host, port); :class:`ValueError` naming *spec*."""
    host, _, port_text = rest.partition(":")
    host = host or default_host
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r} in {spec!r}")
    return host, int(port_text)


def open_link(spec: str, card: CardLike, **options: Any) -> CardLink:
    """The link for *spec* serving *card* (call ``serve()`` to run it). Raises
    :class:`ValueError` for a spec of no known form."""
    kind, _, rest = spec.partition(":")
    if kind == "loopback":
        if rest:
            raise ValueError(f"loopback takes no argument, got {spec!r}")
        from .loopback import LoopbackLink

        return LoopbackLink(card)
    if kind == "vpcd":
        from .vpcd import VPCD_DEFAULT_PORT, VpcdLink

        host, port = parse_host_port(rest, "127.0.0.1", VPCD_DEFAULT_PORT, spec)
        return VpcdLink(card, host, port, **options)
    if kind == "nfc":
        from .nfc_target import NfcTargetLink

        return NfcTargetLink(card, rest, **options)
    raise ValueError(f"unknown card link {spec!r}; expected one of: {SPEC_FORMS}")
