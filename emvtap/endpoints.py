"""Where the actors meet: the card interface a link or loopback reader serves, ``HOST:PORT``
addresses, and the reader / card-link spec strings every CLI takes.

==========================  ======================  =====================================
spec                        side                    meaning
==========================  ======================  =====================================
``pcsc:`` / ``pcsc:N``      terminal                PC/SC reader by index (pcscd)
``pcsc:<name>``             terminal                PC/SC reader by exact name or substring
``loopback:``               terminal and card       an in-process card object
``vpcd[:HOST[:PORT]]``      card                    the card as TCP client of pcscd's vpcd
``nfc:usb[:…]``             terminal and card       nfcpy device on USB (PN53x, RC-S380, …)
``nfc:tty:PORT:DRIVER``     terminal and card       nfcpy device on a serial line
``nfc:udp[:HOST[:PORT]]``   terminal and card       nfcpy's ``udp`` radio simulation
==========================  ======================  =====================================

Every function here raises :class:`ValueError` (:class:`SpecError`) with a message that names
the text it refused and what was expected.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = [
    "CARD_LINK_KINDS",
    "NFCPY_PATH_KINDS",
    "READER_KINDS",
    "VPCD_DEFAULT_HOST",
    "VPCD_DEFAULT_PORT",
    "CardLike",
    "Endpoint",
    "EndpointKind",
    "HostPort",
    "SpecError",
    "check_udp_port",
    "nfcpy_path",
    "parse_endpoint",
    "parse_host_port",
    "spec_forms",
]


class SpecError(ValueError):
    """A reader spec, card link spec or ``HOST:PORT`` that does not parse."""


@runtime_checkable
class CardLike(Protocol):
    """A card as readers and links see it (ISO/IEC 7816-4 APDUs in, response data ‖ SW out):
    ``process`` answers one command, ``reset`` is a power-on (a fresh session, nothing
    selected), ``atr`` the answer to reset."""

    atr: bytes

    def process(self, apdu: bytes) -> bytes: ...

    def reset(self) -> None: ...


# --- HOST:PORT ------------------------------------------------------------------------------------

PORT_RANGE = range(1, 65536)


class HostPort(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_HOST_PORT = re.compile(
    r"\[(?P<v6>[^\]]+)\](?::(?P<p6>[^:]*))?|(?P<host>[^:\[\]]*)(?::(?P<port>[^:]*))?"
)


def parse_host_port(text: str, *, default_host: str | None = None,
                    default_port: int | None = None) -> HostPort:
    """``HOST:PORT`` or ``[IPv6]:PORT`` → :class:`HostPort`; the port is 1..65535.

    With ``default_host`` the host may be left out (``:PORT``, or ``""``); with
    ``default_port`` the port may (``HOST``, or ``""``). :class:`SpecError` otherwise."""
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        raise SpecError(f"{text!r} is not HOST:PORT (an IPv6 host goes in brackets: [::1]:PORT)")
    host = match["v6"] or match["host"] or default_host
    port_text = match["p6"] if match["v6"] else match["port"]
    if not host:
        raise SpecError(f"{text!r} is not HOST:PORT: no host")
    if not port_text:
        if default_port is None:
            raise SpecError(f"{text!r} is not HOST:PORT: no port")
        return HostPort(host, default_port)
    if not port_text.isascii() or not port_text.isdigit():
        raise SpecError(f"{text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if port not in PORT_RANGE:
        raise SpecError(f"{text!r}: port {port} is out of range 1..65535")
    return HostPort(host, port)


# --- nfcpy device paths ---------------------------------------------------------------------------

#: the device path kinds nfcpy's ``ContactlessFrontend.open`` takes.
NFCPY_PATH_KINDS = ("usb", "udp", "tty", "com", "sim")
#: nfcpy's udp driver defaults (``nfc:udp``).
NFCPY_UDP_DEFAULT = HostPort("localhost", 54321)


def check_udp_port(port: int, spec: str) -> None:
    """nfcpy 1.0.4's udp driver turns a port number into its /etc/services name (30865 →
    "csync2") and then fails on ``int()``: refuse such ports with the reason."""
    _host, service = socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)
    if service.isdigit():
        return
    raise SpecError(
        f"{spec!r}: nfcpy's udp driver cannot use port {port}: /etc/services calls it "
        f"{service!r} and nfcpy turns the number into that name; choose another port"
    )


def nfcpy_path(rest: str, spec: str, *, check_port: bool = True) -> str:
    """The nfcpy device path in ``nfc:<path>`` (``rest``), checked; :class:`SpecError` for
    another kind, a malformed udp address or (``check_port``, as the drivers open it) a udp
    port nfcpy cannot use."""
    kind, _, address = rest.partition(":")
    if kind not in NFCPY_PATH_KINDS:
        raise SpecError(
            f"{spec!r}: the nfcpy device path must start with one of {NFCPY_PATH_KINDS} "
            "(nfc:usb[:VID[:PID]], nfc:udp[:HOST[:PORT]], nfc:tty:PORT:DRIVER, "
            "nfc:sim:CHIP[:HOST[:PORT]])"
        )
    if kind == "udp" and address:
        try:
            host_port = parse_host_port(address, default_host=NFCPY_UDP_DEFAULT.host,
                                        default_port=NFCPY_UDP_DEFAULT.port)
        except SpecError as exc:
            raise SpecError(f"{spec!r}: expected nfc:udp[:HOST[:PORT]] ({exc})") from None
        if check_port and ":" in address:
            check_udp_port(host_port.port, spec)
    if kind == "sim":  # a simulated chip under nfcpy's own driver (emvtap.chipsim)
        from emvtap.chipsim import parse_sim_path

        try:
            parse_sim_path(rest, spec)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
    return rest


# --- reader and card link specs -------------------------------------------------------------------

#: the default TCP port of pcscd's vpcd driver (vsmartcard).
VPCD_DEFAULT_PORT = 35963
VPCD_DEFAULT_HOST = "127.0.0.1"


class EndpointKind(StrEnum):
    PCSC = "pcsc"
    LOOPBACK = "loopback"
    VPCD = "vpcd"
    NFC = "nfc"


#: what each kind looks like, for error messages and help texts.
_FORMS = {
    EndpointKind.PCSC: "pcsc:[INDEX|NAME]",
    EndpointKind.LOOPBACK: "loopback:",
    EndpointKind.VPCD: "vpcd[:HOST[:PORT]]",
    EndpointKind.NFC: "nfc:usb[:BUS[:DEV]|:VID[:PID]], nfc:udp[:HOST[:PORT]], "
                      "nfc:sim:CHIP[:HOST[:PORT]]",
}
#: the kinds a terminal reader spec may be, and those of a card link.
READER_KINDS = (EndpointKind.PCSC, EndpointKind.LOOPBACK, EndpointKind.NFC)
CARD_LINK_KINDS = (EndpointKind.LOOPBACK, EndpointKind.VPCD, EndpointKind.NFC)


def spec_forms(kinds: tuple[EndpointKind, ...]) -> str:
    return ", ".join(_FORMS[kind] for kind in kinds)


@dataclass(frozen=True)
class Endpoint:
    """A parsed reader or card link spec."""

    spec: str  # as given
    kind: EndpointKind
    argument: str = ""  # pcsc: the reader selector; nfc: the nfcpy device path
    address: HostPort | None = None  # vpcd: where vpcd listens

    @property
    def is_udp(self) -> bool:
        return self.kind is EndpointKind.NFC and self.argument.partition(":")[0] == "udp"


def parse_endpoint(spec: str, kinds: tuple[EndpointKind, ...] = READER_KINDS, *,
                   bare_kind: bool = False) -> Endpoint:
    """``spec`` → :class:`Endpoint`, if its kind is one of ``kinds``.

    ``bare_kind``: a kind may come without its colon (``vpcd``, ``loopback`` - the card link
    forms); reader specs always have one (``pcsc:``, ``loopback:``)."""
    name, sep, rest = spec.partition(":")
    if not sep and not bare_kind:
        raise SpecError(f"spec {spec!r} has no kind; expected one of: {spec_forms(kinds)}")
    kind = next((k for k in kinds if k.value == name), None)
    if kind is None:
        raise SpecError(f"unknown kind {name!r} in {spec!r}; expected one of: "
                        f"{spec_forms(kinds)}")
    if kind is EndpointKind.LOOPBACK:
        if rest:
            raise SpecError(f"loopback takes no argument, got {spec!r}")
        return Endpoint(spec, kind)
    if kind is EndpointKind.VPCD:
        try:
            address = parse_host_port(rest, default_host=VPCD_DEFAULT_HOST,
                                      default_port=VPCD_DEFAULT_PORT)
        except SpecError as exc:
            raise SpecError(f"bad vpcd address in {spec!r}: {exc}") from None
        return Endpoint(spec, kind, rest, address)
    if kind is EndpointKind.NFC:  # the nfcpy drivers check the udp port when they open it
        return Endpoint(spec, kind, nfcpy_path(rest, spec, check_port=False))
    return Endpoint(spec, kind, rest)
