"""emvtap.endpoints: the one HOST:PORT parser, the one reader / card-link spec parser and the
nfcpy device path rules, as the terminal transports, the card links and the lab use them."""

from __future__ import annotations

import pytest

from emvtap.endpoints import (
    CARD_LINK_KINDS,
    READER_KINDS,
    VPCD_DEFAULT_PORT,
    CardLike,
    EndpointKind,
    HostPort,
    SpecError,
    nfcpy_path,
    parse_endpoint,
    parse_host_port,
)
from hce_card.card import HceCard
from hce_card.link import open_link
from terminal.transport import open_transport

# --- HOST:PORT ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8583", ("127.0.0.1", 8583)),
        ("switch.lan:1", ("switch.lan", 1)),
        ("[::1]:8583", ("::1", 8583)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_host_and_port_are_read(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8583", "no port"),
        ("host:", "no port"),
        (":8583", "no host"),
        ("host:0", "out of range 1..65535"),
        ("host:70000", "out of range 1..65535"),
        ("a:b", "'b' is not a number"),
        ("host:८५", "is not a number"),  # non-ASCII digits
        ("::1:8583", "IPv6 host goes in brackets"),
        ("h:1:2", "is not HOST:PORT"),
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_host_port(text)


def test_defaults_fill_what_is_left_out() -> None:
    assert parse_host_port("", default_host="127.0.0.1", default_port=7) == ("127.0.0.1", 7)
    assert parse_host_port("h", default_host="127.0.0.1", default_port=7) == ("h", 7)
    assert parse_host_port(":9", default_host="127.0.0.1") == ("127.0.0.1", 9)
    with pytest.raises(SpecError, match="out of range"):
        parse_host_port(":0", default_host="127.0.0.1", default_port=7)


def test_an_address_prints_as_it_is_read() -> None:
    assert str(HostPort("::1", 5)) == "[::1]:5"
    assert parse_host_port(str(HostPort("::1", 5))) == ("::1", 5)
    assert str(HostPort("127.0.0.1", 5)) == "127.0.0.1:5"


# --- specs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kinds", "kind", "argument"),
    [
        ("pcsc:", READER_KINDS, EndpointKind.PCSC, ""),
        ("pcsc:Virtual PCD 00 01", READER_KINDS, EndpointKind.PCSC, "Virtual PCD 00 01"),
        ("loopback:", READER_KINDS, EndpointKind.LOOPBACK, ""),
        ("nfc:usb:054c:06c3", READER_KINDS, EndpointKind.NFC, "usb:054c:06c3"),
        ("nfc:udp:127.0.0.1:50999", CARD_LINK_KINDS, EndpointKind.NFC, "udp:127.0.0.1:50999"),
        ("vpcd:127.0.0.1:35964", CARD_LINK_KINDS, EndpointKind.VPCD, "127.0.0.1:35964"),
    ],
)
def test_every_spec_form_is_read(spec, kinds, kind, argument) -> None:
    endpoint = parse_endpoint(spec, kinds, bare_kind=True)
    assert (endpoint.spec, endpoint.kind, endpoint.argument) == (spec, kind, argument)


def test_vpcd_address_and_its_defaults() -> None:
    assert parse_endpoint("vpcd:h:1", CARD_LINK_KINDS).address == ("h", 1)
    assert parse_endpoint("vpcd", CARD_LINK_KINDS, bare_kind=True).address == (
        "127.0.0.1", VPCD_DEFAULT_PORT)
    with pytest.raises(SpecError, match=r"bad vpcd address.*out of range"):
        parse_endpoint("vpcd:h:70000", CARD_LINK_KINDS)


@pytest.mark.parametrize(
    ("spec", "kinds", "message"),
    [
        ("pcsc", READER_KINDS, "has no kind"),
        ("vpcd:h:1", READER_KINDS, "unknown kind 'vpcd'.*pcsc:"),  # a card link, not a reader
        ("pcsc:0", CARD_LINK_KINDS, "unknown kind 'pcsc'.*vpcd"),  # a reader, not a card link
        ("loopback:x", READER_KINDS, "loopback takes no argument"),
        ("nfc:acr122", READER_KINDS, "nfcpy device path must start with"),
        ("nfc:udp:h:p", CARD_LINK_KINDS, r"expected nfc:udp\[:HOST\[:PORT\]\]"),
    ],
)
def test_a_spec_of_the_wrong_side_or_form_is_refused(spec, kinds, message) -> None:
    with pytest.raises(SpecError, match=message):
        parse_endpoint(spec, kinds)


def test_nfcpy_paths_keep_their_text() -> None:
    assert nfcpy_path("tty:USB0:pn532", "nfc:tty:USB0:pn532") == "tty:USB0:pn532"
    assert parse_endpoint("nfc:udp", READER_KINDS).is_udp
    assert not parse_endpoint("nfc:usb", READER_KINDS).is_udp


def test_both_sides_open_through_the_one_parser() -> None:
    """The terminal's transports and the card's links refuse the same bad nfc spec with the
    same message, and accept the same good one."""
    messages = []
    for opener in (open_transport, lambda s: open_link(s, object())):
        with pytest.raises(ValueError) as info:
            opener("nfc:udp:127.0.0.1:0")
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "out of range" in messages[0]


def test_the_software_card_is_card_like() -> None:
    from emvtap.perso import generate_profile

    assert isinstance(HceCard(generate_profile(1)), CardLike)
    assert not isinstance(object(), CardLike)


def test_a_udp_port_nfcpy_cannot_use_is_refused_when_a_driver_opens_it() -> None:
    """Reading a spec checks its form; the nfcpy port limit (a port /etc/services names) is
    the drivers' to refuse, on both sides."""
    spec = "nfc:udp:127.0.0.1:9"  # "discard" in /etc/services
    assert parse_endpoint(spec, READER_KINDS).argument == "udp:127.0.0.1:9"
    with pytest.raises(SpecError, match="/etc/services"):
        nfcpy_path("udp:127.0.0.1:9", spec)
