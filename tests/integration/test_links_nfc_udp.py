"""The terminal's nfcpy reader and the card's ISO-DEP side, over nfcpy's ``udp`` radio on
loopback: nfcpy's own ISO-DEP initiator (RATS, chaining, WTX, R(NAK) retries) against our
card side. Every test has its own UDP port (nfcpy's default 54321 would collide)."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from hce_card.link.base import LinkError
from hce_card.link.isodep import SessionEnd
from hce_card.link.nfc_target import NfcTargetLink
from terminal.transport import CardRemovedError, NoCardError, open_transport
from terminal.transport.nfc import NfcTransport

pytestmark = pytest.mark.timeout(60)

SELECT = bytes.fromhex("00A4040007A000000333010100")


class EchoCard:
    """INS 10: 1,022 bytes of response; INS 5E: slow (``delay`` s); INS DD: pulled from the
    field mid-command; INS CA: 61xx + GET RESPONSE; otherwise echo the data field."""

    atr = bytes.fromhex("3B8880010000000000718100F9")

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self.delay = 0.3
        self.link: NfcTargetLink | None = None
        self._pending = b""

    def reset(self) -> None:
        self._pending = b""

    def process(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        ins = apdu[1]
        if ins == 0x10:
            return bytes(i % 256 for i in range(1022)) + b"\x90\x00"
        if ins == 0x5E:
            time.sleep(self.delay)  # a card computing (e.g. an RSA signature), not a sync
            return b"\x5e\x90\x00"
        if ins == 0xDD:
            assert self.link is not None
            self.link.remove_card()
            return b"\x90\x00"
        if ins == 0xCA:
            self._pending = b"P" * 40
            return b"\x61\x28"
        if ins == 0xC0:
            data, self._pending = self._pending, b""
            return data + b"\x90\x00"
        return apdu[5 : 5 + apdu[4]] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"


@pytest.fixture
def card() -> EchoCard:
    return EchoCard()


@pytest.fixture
def link(card: EchoCard, udp_port: int) -> Iterator[NfcTargetLink]:
    link = NfcTargetLink(card, f"udp:127.0.0.1:{udp_port}")
    card.link = link
    link.start()
    assert link.listening.wait(5)
    yield link
    link.close()


@pytest.fixture
def reader(udp_port: int) -> Iterator[NfcTransport]:
    transport = NfcTransport(f"udp:127.0.0.1:{udp_port}")
    yield transport
    transport.close()


def test_activation_answers_rats_and_the_reader_reports_the_atr_of_the_ats(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    assert reader.connect(5) == bytes.fromhex("3B80800101")
    assert reader.ats == bytes.fromhex("0578807002")
    assert reader.uid == link.uid


def test_select_round_trip_over_iso_dep(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    reader.connect(5)
    assert reader.transmit(SELECT) == bytes.fromhex("A0000003330101") + b"\x90\x00"
    assert card.commands == [SELECT]


def test_a_261_byte_command_is_chained_by_the_reader_and_reassembled_by_the_card(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    reader.connect(5)
    command = bytes.fromhex("80E20000FF") + bytes(range(255)) + b"\x00"
    assert reader.transmit(command) == bytes(range(255)) + b"\x90\x00"
    assert card.commands == [command]


def test_a_707_byte_command_crosses_in_three_chained_blocks(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    reader.connect(5)
    command = bytes.fromhex("80E2000000") + bytes(i % 256 for i in range(702))
    reader.transmit(command)
    assert card.commands == [command]


def test_a_1022_byte_response_is_chained_by_the_card(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    reader.connect(5)
    assert reader.transmit(bytes.fromhex("8010000000")) == (
        bytes(i % 256 for i in range(1022)) + b"\x90\x00"
    )


def test_61xx_over_nfc_is_collected_with_get_response(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    reader.connect(5)
    assert reader.transmit(bytes.fromhex("80CA9F4F00")) == b"P" * 40 + b"\x90\x00"


def test_a_slow_card_keeps_the_reader_waiting_with_s_wtx(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    """FWT of the default ATS is 38.7 ms; a 300 ms command needs S(WTX), or nfcpy's reader
    times out, sends R(NAK)s and gives up."""
    reader.connect(5)
    assert reader.transmit(bytes.fromhex("805E000000")) == b"\x5e\x90\x00"
    assert link.isodep.wtx_sent >= 1
    card.delay = 1.5  # several extensions in a row
    before = link.isodep.wtx_sent
    assert reader.transmit(bytes.fromhex("805E000000")) == b"\x5e\x90\x00"
    assert link.isodep.wtx_sent - before >= 2
    assert reader.transmit(SELECT).endswith(b"\x90\x00")  # and the session goes on


def test_deselect_ends_the_session_and_the_card_serves_the_next_tap(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    for _ in range(3):
        reader.connect(5)
        assert reader.transmit(SELECT).endswith(b"\x90\x00")
        reader.disconnect()  # S(DESELECT), field off
    assert link.wait_for_sessions(3, timeout=5)
    assert link.sessions == [SessionEnd.DESELECTED] * 3
    assert len(card.commands) == 3


def test_card_removed_mid_apdu_is_card_removed_on_the_reader_not_a_hang(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    reader.connect(5)
    started = time.monotonic()
    with pytest.raises(CardRemovedError):
        reader.transmit(bytes.fromhex("80DD000000"))
    print(f"\ncard pulled mid-APDU: CardRemovedError after {time.monotonic() - started:.3f} s")
    with pytest.raises(CardRemovedError):  # and the kernel keeps seeing it gone
        reader.transmit(SELECT)
    link.insert_card()  # presented again: a new activation works
    assert link.listening.wait(5)
    assert reader.connect(5) == bytes.fromhex("3B80800101")
    assert reader.transmit(SELECT).endswith(b"\x90\x00")


def test_reader_vanishing_mid_session_ends_the_card_session_and_the_next_reader_is_served(
    link: NfcTargetLink, udp_port: int
) -> None:
    first = NfcTransport(f"udp:127.0.0.1:{udp_port}")
    first.connect(5)
    first.transmit(SELECT)
    first._clf.close()  # the reader goes away without S(DESELECT): RFOFF, then silence
    first._clf = None
    assert link.wait_for_sessions(1, timeout=5)
    assert link.sessions == [SessionEnd.FIELD_OFF]
    with open_transport(f"nfc:udp:127.0.0.1:{udp_port}") as second:
        second.connect(5)
        assert second.transmit(SELECT).endswith(b"\x90\x00")


def test_a_phone_with_p2p_enabled_is_read(card: EchoCard, udp_port: int) -> None:
    """SEL_RES 60 (ISO-DEP + NFC-DEP): nfcpy's default on-discover ignores such targets."""
    with NfcTargetLink(card, f"udp:127.0.0.1:{udp_port}", sel_res=b"\x60") as phone:
        assert phone.listening.wait(5)
        with NfcTransport(f"udp:127.0.0.1:{udp_port}") as reader:
            reader.connect(5)
            assert reader.transmit(SELECT).endswith(b"\x90\x00")


def test_connect_with_no_card_raises_no_card(reader: NfcTransport) -> None:
    started = time.monotonic()
    with pytest.raises(NoCardError):
        reader.connect(0.5)
    assert time.monotonic() - started < 5


def test_cancel_ends_a_wait_for_a_card(reader: NfcTransport) -> None:
    threading.Timer(0.2, reader.cancel).start()
    with pytest.raises(NoCardError, match="cancelled"):
        reader.connect(None)


def test_the_card_connects_when_it_comes_into_the_field_after_the_reader_polls(
    card: EchoCard, udp_port: int, reader: NfcTransport
) -> None:
    link = NfcTargetLink(card, f"udp:127.0.0.1:{udp_port}")
    arrival = threading.Timer(0.3, link.start)
    arrival.start()
    try:
        reader.connect(5)
        assert reader.transmit(SELECT).endswith(b"\x90\x00")
    finally:
        arrival.join()
        link.close()


def test_a_port_someone_else_holds_is_an_error_not_a_spin(card: EchoCard, udp_port: int) -> None:
    """nfcpy's udp listen() returns None at once when the port is taken (docs/architecture.md): the
    link reports it instead of calling listen() in a tight loop."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("0.0.0.0", udp_port))
        link = NfcTargetLink(card, f"udp:127.0.0.1:{udp_port}")
        started = time.monotonic()
        with pytest.raises(LinkError, match="another card"):
            link.serve()
        assert time.monotonic() - started < 5


def test_apdu_round_trip_over_udp(link: NfcTargetLink, reader: NfcTransport) -> None:
    """Measured and printed (no timed assertion): the whole nfcpy + ISO-DEP + card path."""
    reader.connect(5)
    for _ in range(200):
        reader.transmit(SELECT)
    median = statistics.median(e.seconds for e in reader.exchanges) * 1000
    print(f"\nnfc udp APDU round trip, median of 200: {median:.3f} ms")


def test_card_in_its_own_process(udp_port: int, reader: NfcTransport) -> None:
    """Two processes, as `emvtap card run --link nfc:udp:…` and `emvtap terminal pay` are."""
    program = textwrap.dedent(
        f"""
        import sys
        from hce_card.link.nfc_target import NfcTargetLink

        class Echo:
            atr = b""
            def reset(self): pass
            def process(self, apdu):
                return apdu[5:5 + apdu[4]] + b"\\x90\\x00" if len(apdu) > 5 else b"\\x90\\x00"

        link = NfcTargetLink(Echo(), "udp:127.0.0.1:{udp_port}")
        import signal
        signal.signal(signal.SIGTERM, lambda *_: link.stop())
        thread = link.start()
        link.listening.wait(10)
        print("listening", flush=True)
        while thread.is_alive():
            thread.join(0.1)  # the main thread stays free for the SIGTERM handler
        print("stopped", link.sessions, flush=True)
        """
    )
    card_process = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, text=True
    )
    try:
        assert card_process.stdout is not None
        assert card_process.stdout.readline().strip() == "listening"
        reader.connect(10)
        assert reader.transmit(SELECT) == bytes.fromhex("A0000003330101") + b"\x90\x00"
        reader.disconnect()
        card_process.terminate()
        out, _ = card_process.communicate(timeout=10)
        assert "DESELECTED" in out
        assert card_process.returncode == 0
    finally:
        if card_process.poll() is None:
            card_process.kill()
            card_process.wait()
