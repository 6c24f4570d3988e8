"""Reader specs: every form opens its driver (nothing touches pcscd or a radio before
``connect``), anything else is a ValueError that says what was expected."""

from __future__ import annotations

import pytest

from terminal.transport import open_transport
from terminal.transport.base import TransportError
from terminal.transport.pcsc import PcscTransport, resolve_reader

READERS = ["ACS ACR122U PICC Interface 00 00", "Virtual PCD 00 00", "Virtual PCD 00 01"]


@pytest.mark.parametrize(
    "spec", ["", "pcsc", "foo:bar", "PCSC:0", "loopback:extra", "tcp:127.0.0.1:1", ":0"]
)
def test_unknown_or_malformed_specs_are_value_errors(spec: str) -> None:
    with pytest.raises(ValueError):
        open_transport(spec, card=object())  # type: ignore[arg-type]


def test_unknown_spec_error_lists_the_known_forms() -> None:
    with pytest.raises(ValueError, match=r"pcsc:.*loopback:.*nfc:usb.*nfc:udp"):
        open_transport("acr122:0")


@pytest.mark.parametrize(
    ("spec", "selector"),
    [("pcsc:", ""), ("pcsc:0", "0"), ("pcsc:Virtual PCD 00 01", "Virtual PCD 00 01")],
)
def test_pcsc_specs_open_a_pcsc_transport_without_touching_pcscd(spec: str, selector: str) -> None:
    transport = open_transport(spec)
    assert isinstance(transport, PcscTransport)
    assert transport.selector == selector
    assert transport.spec == spec


def test_pcsc_options_are_checked() -> None:
    with pytest.raises(ValueError, match="share"):
        open_transport("pcsc:0", share="nobody")
    with pytest.raises(ValueError, match="disposition"):
        open_transport("pcsc:0", disposition="eject")


@pytest.mark.parametrize(
    ("selector", "reader"),
    [
        ("", READERS[0]),
        ("1", READERS[1]),
        ("Virtual PCD 00 01", READERS[2]),
        ("acr122", READERS[0]),
        ("PCD 00 00", READERS[1]),
    ],
)
def test_pcsc_reader_by_index_name_or_unique_substring(selector: str, reader: str) -> None:
    assert resolve_reader(selector, READERS) == reader


@pytest.mark.parametrize(
    ("selector", "message"),
    [("3", "no PC/SC reader 3"), ("omnikey", "no PC/SC reader matches"), ("virtual", "several")],
)
def test_pcsc_reader_selection_errors_name_the_readers(selector: str, message: str) -> None:
    with pytest.raises(TransportError, match=message):
        resolve_reader(selector, READERS)


def test_pcsc_with_no_reader_attached() -> None:
    with pytest.raises(TransportError, match="no PC/SC reader"):
        resolve_reader("", [])
