"""The terminal's PC/SC transport and the card's vpcd link, through a real pcscd: the card is
served by ``VpcdLink`` in a thread, the terminal talks pyscard → pcscd → vpcd → TCP → card."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
from virtual_hw import VpcdSlot, serve_card_on_vpcd, wait_for_reader

from hce_card.link.vpcd import VpcdLink
from terminal.transport import CardRemovedError, NoCardError, open_transport
from terminal.transport.pcsc import PcscTransport, list_readers

pytestmark = [pytest.mark.pcsc, pytest.mark.timeout(60)]

ATR = bytes.fromhex("3B8880010000000000718100F9")
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
PPSE_FCI = bytes.fromhex(
    "6F2A840E325041592E5359532E4444463031A518BF0C15611361114F08A0000003330101018701019F2A0107"
)[:40]


class EchoCard:
    """A tiny card: SELECT answers a fixed FCI; INS CA answers 61xx and serves it with GET
    RESPONSE in chunks; INS B2 answers 6Cxx to a wrong Le; anything else echoes its data."""

    atr = ATR

    def __init__(self) -> None:
        self.resets = 0
        self.commands: list[bytes] = []
        self._pending = b""
        self.block = threading.Event()
        self.link: VpcdLink | None = None

    def reset(self) -> None:
        self.resets += 1
        self._pending = b""

    def process(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        ins = apdu[1]
        if ins == 0xA4:
            return PPSE_FCI + b"\x90\x00"
        if ins == 0xCA:  # 300 bytes of data, announced with 61xx
            self._pending = bytes(i % 251 for i in range(300))
            return b"\x61\x00"
        if ins == 0xC0:
            le = apdu[4] or 256
            chunk, self._pending = self._pending[:le], self._pending[le:]
            if self._pending:
                return chunk + bytes([0x61, min(len(self._pending), 256) & 0xFF])
            return chunk + b"\x90\x00"
        if ins == 0xB2:
            if apdu[4] != 0x1C:
                return b"\x6c\x1c"
            return b"\x70\x1a" + b"R" * 26 + b"\x90\x00"
        if ins == 0xDD:  # the card is pulled out of the field while it computes
            assert self.link is not None
            self.link.remove_card()
            return b"\x90\x00"
        if ins == 0xEE:  # a card that never answers (until released)
            self.block.wait(30)
            return b"\x90\x00"
        return apdu[5 : 5 + apdu[4]] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"


@pytest.fixture
def card() -> EchoCard:
    return EchoCard()


def test_pcscd_lists_both_vpcd_readers(pcscd: None) -> None:
    readers = list_readers()
    assert "Virtual PCD 00 00" in readers
    assert "Virtual PCD 00 01" in readers


def test_connect_returns_the_card_s_atr_after_power_on(vpcd_slot: VpcdSlot, card: EchoCard) -> None:
    with serve_card_on_vpcd(card, vpcd_slot), open_transport(vpcd_slot.reader_spec) as reader:
        assert reader.connect(5) == ATR
        assert card.resets >= 1  # vpcd powered the card on for pcscd


def test_select_ppse_round_trip(vpcd_slot: VpcdSlot, card: EchoCard) -> None:
    with serve_card_on_vpcd(card, vpcd_slot), open_transport(vpcd_slot.reader_spec) as reader:
        reader.connect(5)
        assert reader.transmit(SELECT_PPSE) == PPSE_FCI + b"\x90\x00"
        assert card.commands == [SELECT_PPSE]


def test_61xx_chain_through_pcscd_is_collected_with_get_response(
    vpcd_slot: VpcdSlot, card: EchoCard
) -> None:
    with serve_card_on_vpcd(card, vpcd_slot), open_transport(vpcd_slot.reader_spec) as reader:
        reader.connect(5)
        response = reader.transmit(bytes.fromhex("80CA9F4F00"))
        assert response == bytes(i % 251 for i in range(300)) + b"\x90\x00"
        assert [c[:2] for c in card.commands] == [b"\x80\xca", b"\x00\xc0", b"\x00\xc0"]
        assert [c.hex() for c in card.commands[1:]] == ["00c0000000", "00c000002c"]
        assert len(reader.exchanges) == 3


def test_6cxx_through_pcscd_is_resent_with_the_card_s_le(
    vpcd_slot: VpcdSlot, card: EchoCard
) -> None:
    with serve_card_on_vpcd(card, vpcd_slot), open_transport(vpcd_slot.reader_spec) as reader:
        reader.connect(5)
        assert reader.transmit(bytes.fromhex("00B2010C00")) == b"\x70\x1a" + b"R" * 26 + b"\x90\x00"
        assert card.commands[-1] == bytes.fromhex("00B2010C1C")


def test_255_byte_command_and_256_byte_response(vpcd_slot: VpcdSlot, card: EchoCard) -> None:
    with serve_card_on_vpcd(card, vpcd_slot), open_transport(vpcd_slot.reader_spec) as reader:
        reader.connect(5)
        data = bytes(range(255))
        assert reader.transmit(bytes.fromhex("80E20000FF") + data) == data + b"\x90\x00"
        card._pending = b"Z" * 256
        assert reader.transmit(bytes.fromhex("00C0000000")) == b"Z" * 256 + b"\x90\x00"


def _median_round_trip_ms(slot: VpcdSlot, card: EchoCard, quickack: bool, count: int) -> float:
    with (
        serve_card_on_vpcd(card, slot, quickack=quickack),
        PcscTransport(slot.reader, apdu_timeout=None) as reader,
    ):
        reader.connect(5)
        for _ in range(count):
            reader.transmit(SELECT_PPSE)
        return statistics.median(e.seconds for e in reader.exchanges) * 1000


def test_quickack_effect_on_the_apdu_round_trip(vpcd_slot: VpcdSlot, card: EchoCard) -> None:
    """docs/architecture.md: vpcd writes length and payload separately with Nagle on; without
    TCP_QUICKACK after every read each APDU waits for a delayed ACK (~40 ms). Measured and
    printed only: no timed assertion in tests (bench/ is for numbers)."""
    with_quickack = _median_round_trip_ms(vpcd_slot, card, True, 50)
    without_quickack = _median_round_trip_ms(vpcd_slot, card, False, 50)
    print(
        f"\nvpcd APDU round trip, median of 50: with TCP_QUICKACK {with_quickack:.3f} ms, "
        f"without {without_quickack:.3f} ms"
    )
    assert len(card.commands) == 100


def test_card_leaving_between_commands_raises_card_removed(
    vpcd_slot: VpcdSlot, card: EchoCard
) -> None:
    with (
        serve_card_on_vpcd(card, vpcd_slot) as link,
        open_transport(vpcd_slot.reader_spec) as reader,
    ):
        reader.connect(5)
        reader.transmit(SELECT_PPSE)
        link.remove_card()
        with pytest.raises(CardRemovedError):
            reader.transmit(SELECT_PPSE)
        with pytest.raises(CardRemovedError):  # and it stays removed for the kernel
            reader.transmit(SELECT_PPSE)


def test_card_pulled_mid_command_raises_card_removed_not_a_hang(
    vpcd_slot: VpcdSlot, card: EchoCard
) -> None:
    with (
        serve_card_on_vpcd(card, vpcd_slot) as link,
        open_transport(vpcd_slot.reader_spec) as reader,
    ):
        card.link = link
        reader.connect(5)
        started = time.monotonic()
        with pytest.raises(CardRemovedError):
            reader.transmit(bytes.fromhex("80DD000000"))
        assert time.monotonic() - started < 5


def test_card_presented_again_after_removal_is_a_fresh_session(
    vpcd_slot: VpcdSlot, card: EchoCard
) -> None:
    """EMV Contactless Book A, Try Again: present the card again. connect() must not take the
    card pcscd still lists from before the loss; it waits for pcscd's card event.

    vpcd cannot tell a card that left and came back within one 400 ms poll from one that never
    left (and pcscd then keeps a dead session): like a real card, ours stays out of the field
    until pcscd has seen it go."""
    with (
        serve_card_on_vpcd(card, vpcd_slot) as link,
        open_transport(vpcd_slot.reader_spec) as reader,
    ):
        card.link = link
        reader.connect(5)
        with pytest.raises(CardRemovedError):
            reader.transmit(bytes.fromhex("80DD000000"))
        resets = card.resets
        started = time.monotonic()

        def present_again_once_gone() -> None:
            wait_for_reader(vpcd_slot.reader, present=False)
            link.insert_card()

        threading.Thread(target=present_again_once_gone, daemon=True).start()
        assert reader.connect(5) == ATR
        print(f"\nre-presented card connected {time.monotonic() - started:.3f} s after the loss")
        assert reader.transmit(SELECT_PPSE) == PPSE_FCI + b"\x90\x00"
        assert card.resets > resets


def test_a_card_that_never_answers_is_removed_after_the_apdu_timeout(
    vpcd_slot: VpcdSlot, card: EchoCard
) -> None:
    with (
        serve_card_on_vpcd(card, vpcd_slot),
        PcscTransport(vpcd_slot.reader, apdu_timeout=0.5) as reader,
    ):
        reader.connect(5)
        started = time.monotonic()
        try:
            with pytest.raises(CardRemovedError, match="no answer"):
                reader.transmit(bytes.fromhex("80EE000000"))
            assert time.monotonic() - started < 5
        finally:
            card.block.set()  # lets pcscd's stuck call finish before the card leaves


def test_connect_with_no_card_raises_no_card_after_the_timeout(vpcd_slot: VpcdSlot) -> None:
    reader = open_transport(vpcd_slot.reader_spec)
    started = time.monotonic()
    with pytest.raises(NoCardError), reader:
        reader.connect(0.5)
    assert 0.4 < time.monotonic() - started < 5


def test_connect_waits_for_a_card_presented_later(vpcd_slot: VpcdSlot, card: EchoCard) -> None:
    link = VpcdLink(card, "127.0.0.1", vpcd_slot.port)
    link.remove_card()  # not in the field yet
    link.start()
    try:
        with open_transport(vpcd_slot.reader_spec) as reader:
            threading.Timer(0.2, link.insert_card).start()
            assert reader.connect(5) == ATR
            assert reader.transmit(SELECT_PPSE).endswith(b"\x90\x00")
    finally:
        link.close()
        wait_for_reader(vpcd_slot.reader, present=False)


def test_cancel_ends_a_wait_for_a_card(vpcd_slot: VpcdSlot) -> None:
    reader = PcscTransport(vpcd_slot.reader)
    threading.Timer(0.3, reader.cancel).start()
    with pytest.raises(NoCardError, match="cancelled"), reader:
        reader.connect(None)
