"""The terminal's nfcpy reader and the card's ISO-DEP side through nfcpy's own PN533 driver
(nfc/clf/pn533.py on the pn53x base) on both ends, each on a simulated PN533
(emvtap/chipsim) joined by a simulated field on loopback: every driver line from ``init`` to
``sense_tta``/``listen_tta``/``exchange`` runs as on a USB reader (docs/hardware.md)."""

from __future__ import annotations

import socket
import statistics
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


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EchoCard:
    """INS 10: 1,022 bytes of response; INS 5E: slow (``delay`` s); INS DD: pulled from the
    field mid-command; otherwise echo the data field."""

    atr = bytes.fromhex("3B8880010000000000718100F9")

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self.delay = 0.3
        self.link: NfcTargetLink | None = None

    def reset(self) -> None:
        pass

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
        return apdu[5 : 5 + apdu[4]] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"


@pytest.fixture
def port() -> int:
    return free_tcp_port()


@pytest.fixture
def card() -> EchoCard:
    return EchoCard()


@pytest.fixture
def link(card: EchoCard, port: int) -> Iterator[NfcTargetLink]:
    link = NfcTargetLink(card, f"sim:pn533:127.0.0.1:{port}")
    card.link = link
    link.start()
    assert link.listening.wait(5)
    yield link
    link.close()


@pytest.fixture
def reader(port: int) -> Iterator[NfcTransport]:
    transport = NfcTransport(f"sim:pn533:127.0.0.1:{port}")
    yield transport
    transport.close()


def test_nfcpy_opens_its_pn533_driver_on_the_simulated_chip(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    reader.connect(5)
    device = reader._clf.device
    assert type(device).__module__ == "nfc.clf.pn533"
    assert device.chipset_name == "PN533v2.7"
    assert str(device).startswith("emvtap PN533 simulator PN533v2.7")


def test_activation_the_target_chip_answers_rats_with_the_cards_ats(
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


def test_a_261_byte_command_is_chained_through_both_drivers(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    reader.connect(5)
    command = bytes.fromhex("80E20000FF") + bytes(range(255)) + b"\x00"
    assert reader.transmit(command) == bytes(range(255)) + b"\x90\x00"
    assert card.commands == [command]


def test_a_1022_byte_response_is_chained_by_the_card(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    reader.connect(5)
    assert reader.transmit(bytes.fromhex("8010000000")) == (
        bytes(i % 256 for i in range(1022)) + b"\x90\x00"
    )


def test_a_slow_card_keeps_the_reader_waiting_with_s_wtx(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    reader.connect(5)
    card.delay = 1.0
    assert reader.transmit(bytes.fromhex("805E000000")) == b"\x5e\x90\x00"
    assert link.isodep.wtx_sent >= 2
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


def test_card_removed_mid_apdu_is_card_removed_on_the_reader(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    reader.connect(5)
    started = time.monotonic()
    with pytest.raises(CardRemovedError):
        reader.transmit(bytes.fromhex("80DD000000"))
    print(f"\ncard pulled mid-APDU: CardRemovedError after {time.monotonic() - started:.3f} s")
    with pytest.raises(CardRemovedError):
        reader.transmit(SELECT)
    link.insert_card()
    assert link.listening.wait(5)
    assert reader.connect(5) == bytes.fromhex("3B80800101")
    assert reader.transmit(SELECT).endswith(b"\x90\x00")


def test_one_rf_error_is_recovered_by_the_iso_dep_retransmission(
    link: NfcTargetLink, reader: NfcTransport, card: EchoCard
) -> None:
    """ISO/IEC 14443-4, 7.5.6: a block received with an error is answered with R(NAK)
    and the last block is sent again; nfcpy's initiator does that, the card repeats."""
    reader.connect(5)
    reader._clf.chip.inject("rf-error")
    assert reader.transmit(SELECT) == bytes.fromhex("A0000003330101") + b"\x90\x00"
    assert card.commands == [SELECT]


def test_a_lost_frame_is_recovered_and_a_dead_link_is_card_removed(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    reader.connect(5)
    reader._clf.chip.inject("timeout")
    assert reader.transmit(SELECT).endswith(b"\x90\x00")
    reader._clf.chip.inject("timeout", 10)
    with pytest.raises(CardRemovedError):
        reader.transmit(SELECT)


def test_a_reader_vanishing_ends_the_card_session_and_the_next_reader_is_served(
    link: NfcTargetLink, port: int
) -> None:
    first = NfcTransport(f"sim:pn533:127.0.0.1:{port}")
    first.connect(5)
    first.transmit(SELECT)
    first._clf.close()  # the reader goes away without S(DESELECT): RF off
    first._clf = None
    assert link.wait_for_sessions(1, timeout=5)
    assert link.sessions == [SessionEnd.FIELD_OFF]
    with open_transport(f"nfc:sim:pn533:127.0.0.1:{port}") as second:
        second.connect(5)
        assert second.transmit(SELECT).endswith(b"\x90\x00")


def test_connect_with_no_card_raises_no_card(reader: NfcTransport) -> None:
    with pytest.raises(NoCardError):
        reader.connect(0.5)


def test_a_port_someone_else_holds_is_a_link_error(card: EchoCard, port: int) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        link = NfcTargetLink(card, f"sim:pn533:127.0.0.1:{port}")
        with pytest.raises(LinkError, match="cannot open"):
            link.serve()


def test_apdu_round_trip_through_two_simulated_pn533(
    link: NfcTargetLink, reader: NfcTransport
) -> None:
    """Measured and printed (no timed assertion)."""
    reader.connect(5)
    for _ in range(100):
        reader.transmit(SELECT)
    median = statistics.median(e.seconds for e in reader.exchanges) * 1000
    print(f"\nnfc sim:pn533 APDU round trip, median of 100: {median:.3f} ms")
