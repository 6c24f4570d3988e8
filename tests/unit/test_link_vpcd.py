"""The card side of vpcd's protocol against a fake vpcd (a TCP server in the test that frames
like vsmartcard's vpcd: 2-byte big-endian length, then the payload, in two writes)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from hce_card.link import open_link
from hce_card.link.loopback import LoopbackLink
from hce_card.link.vpcd import VpcdLink

ATR = bytes.fromhex("3B8880010000000000718100F9")
pytestmark = pytest.mark.timeout(20)


class EchoCard:
    atr = ATR

    def __init__(self) -> None:
        self.resets = 0
        self.commands: list[bytes] = []

    def reset(self) -> None:
        self.resets += 1

    def process(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        if apdu[1] == 0xEE:
            raise RuntimeError("card bug")
        if apdu[1] == 0xE0:
            return b""
        return apdu[5 : 5 + apdu[4]] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"


class FakeVpcd:
    """vpcd's side: listens, accepts the card, sends control messages and APDUs."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 5.0) -> None:
        self.server.settimeout(timeout)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(timeout)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(payload)))  # two writes, as vpcd 0.8 does
        self.conn.sendall(payload)

    def recv(self) -> bytes:
        assert self.conn is not None
        (length,) = struct.unpack(">H", self._exact(2))
        return self._exact(length)

    def _exact(self, n: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise ConnectionResetError("card closed the connection")
            data += chunk
        return data

    def transmit(self, apdu: bytes) -> bytes:
        self.send(apdu)
        return self.recv()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def card() -> EchoCard:
    return EchoCard()


@pytest.fixture
def link(vpcd: FakeVpcd, card: EchoCard) -> Iterator[VpcdLink]:
    link = VpcdLink(card, "127.0.0.1", vpcd.port)
    link.start()
    vpcd.accept()
    assert link.connected.wait(5)
    yield link
    link.close()


def test_power_on_and_reset_reset_the_card(vpcd: FakeVpcd, card: EchoCard, link: VpcdLink) -> None:
    vpcd.send(b"\x01")
    vpcd.send(b"\x02")
    vpcd.send(b"\x00")  # power off: no answer, no reset
    assert vpcd.transmit(b"\x04") == ATR  # ordered after the three control messages
    assert card.resets == 2


def test_atr_request_is_answered_with_the_card_s_atr(vpcd: FakeVpcd, link: VpcdLink) -> None:
    assert vpcd.transmit(b"\x04") == ATR


def test_apdus_go_to_the_card_and_back(vpcd: FakeVpcd, card: EchoCard, link: VpcdLink) -> None:
    select = bytes.fromhex("00A4040007A000000333010100")
    assert vpcd.transmit(select) == bytes.fromhex("A0000003330101") + b"\x90\x00"
    assert card.commands == [select]


def test_long_apdus_and_responses_cross_the_frame_intact(vpcd: FakeVpcd, link: VpcdLink) -> None:
    command = bytes.fromhex("80AE8000FF") + bytes(range(255))
    assert vpcd.transmit(command) == bytes(range(255)) + b"\x90\x00"


def test_a_card_that_raises_answers_6f00_and_keeps_serving(vpcd: FakeVpcd, link: VpcdLink) -> None:
    assert vpcd.transmit(bytes.fromhex("00EE000000")) == b"\x6f\x00"
    assert vpcd.transmit(bytes.fromhex("00A4040001AA")) == b"\xaa\x90\x00"


def test_a_card_answer_without_status_word_becomes_6f00(vpcd: FakeVpcd, link: VpcdLink) -> None:
    assert vpcd.transmit(bytes.fromhex("00E0000000")) == b"\x6f\x00"


def test_the_link_sets_nodelay_on_its_socket(link: VpcdLink) -> None:
    assert link._sock is not None
    assert link._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_link_connects_when_vpcd_comes_up_later(card: EchoCard) -> None:
    with socket.socket() as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    link = VpcdLink(card, "127.0.0.1", port, backoff=(0.01, 0.05))
    link.start()
    try:
        assert not link.connected.wait(0.1)
        late = FakeVpcd(port)
        try:
            late.accept()
            assert link.connected.wait(5)
            assert late.transmit(b"\x04") == ATR
        finally:
            late.close()
    finally:
        link.close()


def test_link_reconnects_after_vpcd_closes_the_connection(vpcd: FakeVpcd, link: VpcdLink) -> None:
    assert vpcd.conn is not None
    vpcd.conn.close()
    vpcd.accept()
    assert vpcd.transmit(b"\x04") == ATR


def test_stop_returns_serve_promptly(vpcd: FakeVpcd, card: EchoCard) -> None:
    link = VpcdLink(card, "127.0.0.1", vpcd.port)
    thread = link.start()
    vpcd.accept()
    link.stop()
    thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(ConnectionResetError):
        vpcd.recv()


def test_a_callers_stop_event_stops_the_link(vpcd: FakeVpcd, card: EchoCard) -> None:
    stop = threading.Event()
    link = VpcdLink(card, "127.0.0.1", vpcd.port, stop_event=stop)
    thread = link.start()
    vpcd.accept()
    stop.set()  # no wake(): the link looks at the event within STOP_POLL
    thread.join(5)
    assert not thread.is_alive()


def test_card_removed_mid_command_sends_no_answer(vpcd: FakeVpcd, card: EchoCard) -> None:
    class Pulled(EchoCard):
        link: VpcdLink

        def process(self, apdu: bytes) -> bytes:
            self.link.remove_card()  # from inside process: the field is gone
            return b"\x90\x00"

    pulled = Pulled()
    link = VpcdLink(pulled, "127.0.0.1", vpcd.port)
    pulled.link = link
    link.start()
    try:
        vpcd.accept()
        vpcd.send(bytes.fromhex("00A4040000"))
        with pytest.raises(ConnectionResetError):
            vpcd.recv()
        vpcd.server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            vpcd.server.accept()  # stays out of the field until insert_card()
        link.insert_card()
        vpcd.accept()
        assert vpcd.transmit(b"\x04") == ATR
    finally:
        link.close()


def test_remove_card_waits_for_the_socket_to_close(vpcd: FakeVpcd, link: VpcdLink) -> None:
    link.remove_card()
    assert not link.connected.is_set()
    with pytest.raises(ConnectionResetError):
        vpcd.recv()


def test_open_link_specs() -> None:
    card = EchoCard()
    vpcd_link = open_link("vpcd:127.0.0.1:35964", card)
    assert isinstance(vpcd_link, VpcdLink)
    assert (vpcd_link.host, vpcd_link.port) == ("127.0.0.1", 35964)
    default = open_link("vpcd", card)
    assert isinstance(default, VpcdLink)
    assert (default.host, default.port) == ("127.0.0.1", 35963)
    assert isinstance(open_link("loopback", card), LoopbackLink)


@pytest.mark.parametrize(
    "spec", ["", "vpcd:127.0.0.1:http", "vpcd:host:70000", "loopback:1", "serial:/dev/ttyS0"]
)
def test_open_link_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        open_link(spec, EchoCard())


def test_loopback_link_guards_the_card() -> None:
    link = LoopbackLink(EchoCard())
    assert link.atr == ATR
    assert link.process(bytes.fromhex("00EE000000")) == b"\x6f\x00"
    assert link.process(bytes.fromhex("00A4040001AA")) == b"\xaa\x90\x00"
    link.stop()
    link.serve()  # returns at once once stopped
