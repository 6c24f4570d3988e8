"""The terminal's transport-level duties (ISO/IEC 7816-4, 5.1.3 and 7.6.1; EMV 4.4 Book 1,
9.3.1): GET RESPONSE on 61xx, re-send with Le = SW2 on 6Cxx, driven by a scripted card."""

from __future__ import annotations

import pytest

from terminal.transport import CardRemovedError, NoCardError, TransportError, open_transport
from terminal.transport.base import (
    MAX_GET_RESPONSE,
    Exchange,
    get_response_command,
    transmit_apdu,
    with_le,
)
from terminal.transport.loopback import LoopbackTransport

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
READ_RECORD = bytes.fromhex("00B2010C00")


class ScriptedCard:
    """Answers each command with the next scripted response, after checking the command."""

    atr = bytes.fromhex("3B8880010000000000718100F9")

    def __init__(self, script: list[tuple[bytes, bytes]]) -> None:
        self.script = list(script)
        self.received: list[bytes] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def process(self, apdu: bytes) -> bytes:
        self.received.append(apdu)
        expected, response = self.script.pop(0)
        assert apdu == expected, f"card expected {expected.hex()}, got {apdu.hex()}"
        return response


def tap(script: list[tuple[bytes, bytes]]) -> tuple[LoopbackTransport, ScriptedCard]:
    card = ScriptedCard(script)
    transport = LoopbackTransport(card)
    transport.connect()
    return transport, card


def test_transport_sends_get_response_on_61xx() -> None:
    transport, card = tap(
        [
            (SELECT_PPSE, bytes.fromhex("6F10") + b"\x61\x10"),
            (bytes.fromhex("00C0000010"), bytes(range(16)) + b"\x90\x00"),
        ]
    )
    assert transport.transmit(SELECT_PPSE) == bytes.fromhex("6F10") + bytes(range(16)) + b"\x90\x00"
    assert card.script == []


def test_get_response_is_repeated_while_the_card_answers_61xx_and_data_is_concatenated() -> None:
    transport, _ = tap(
        [
            (READ_RECORD, b"\x61\x00"),
            (bytes.fromhex("00C0000000"), b"A" * 256 + b"\x61\x00"),
            (bytes.fromhex("00C0000000"), b"B" * 256 + b"\x61\x05"),
            (bytes.fromhex("00C0000005"), b"CCCCC" + b"\x90\x00"),
        ]
    )
    assert transport.transmit(READ_RECORD) == b"A" * 256 + b"B" * 256 + b"CCCCC\x90\x00"


def test_the_final_status_word_after_get_response_is_the_card_s_last_one() -> None:
    transport, _ = tap(
        [
            (READ_RECORD, b"\x61\x02"),
            (bytes.fromhex("00C0000002"), b"\x70\x00\x62\x83"),
        ]
    )
    assert transport.transmit(READ_RECORD) == b"\x70\x00\x62\x83"


def test_get_response_uses_cla_00_whatever_the_command_cla() -> None:
    """EMV 4.4 Book 1, 9.3.1: GET RESPONSE is '00 C0 00 00 Le'."""
    gpo = bytes.fromhex("80A8000002830000")
    transport, card = tap(
        [
            (gpo, b"\x61\x04"),
            (bytes.fromhex("00C0000004"), bytes.fromhex("80020080") + b"\x90\x00"),
        ]
    )
    transport.transmit(gpo)
    assert card.received[1][0] == 0x00


def test_transport_resends_with_le_from_sw2_on_6cxx() -> None:
    transport, card = tap(
        [
            (READ_RECORD, b"\x6c\x1a"),
            (bytes.fromhex("00B2010C1A"), b"R" * 26 + b"\x90\x00"),
        ]
    )
    assert transport.transmit(READ_RECORD) == b"R" * 26 + b"\x90\x00"
    assert len(card.received) == 2


def test_6cxx_on_a_case_1_command_appends_le() -> None:
    transport, _ = tap(
        [
            (bytes.fromhex("80CA9F36"), b"\x6c\x05"),
            (bytes.fromhex("80CA9F3605"), bytes.fromhex("9F36020001") + b"\x90\x00"),
        ]
    )
    assert transport.transmit(bytes.fromhex("80CA9F36")) == bytes.fromhex("9F360200019000")


def test_6cxx_is_followed_by_61xx_handling() -> None:
    transport, _ = tap(
        [
            (READ_RECORD, b"\x6c\x10"),
            (bytes.fromhex("00B2010C10"), b"\x61\x10"),
            (bytes.fromhex("00C0000010"), b"X" * 16 + b"\x90\x00"),
        ]
    )
    assert transport.transmit(READ_RECORD) == b"X" * 16 + b"\x90\x00"


def test_a_second_6cxx_is_returned_to_the_kernel_not_resent_for_ever() -> None:
    transport, card = tap(
        [
            (READ_RECORD, b"\x6c\x10"),
            (bytes.fromhex("00B2010C10"), b"\x6c\x11"),
        ]
    )
    assert transport.transmit(READ_RECORD) == b"\x6c\x11"
    assert len(card.received) == 2


def test_status_words_other_than_61_and_6c_pass_through_unchanged() -> None:
    for sw in (b"\x90\x00", b"\x6a\x82", b"\x69\x85", b"\x62\x83", b"\x63\xc2"):
        transport, card = tap([(READ_RECORD, b"\x01\x02" + sw)])
        assert transport.transmit(READ_RECORD) == b"\x01\x02" + sw
        assert len(card.received) == 1


def test_a_card_that_answers_61xx_for_ever_is_a_transport_error_not_a_hang() -> None:
    class Looping(ScriptedCard):
        def process(self, apdu: bytes) -> bytes:
            self.received.append(apdu)
            return b"\x61\x00"

    card = Looping([])
    transport = LoopbackTransport(card)
    transport.connect()
    with pytest.raises(TransportError, match="61xx"):
        transport.transmit(READ_RECORD)
    assert len(card.received) <= MAX_GET_RESPONSE + 1


def test_a_response_without_status_word_is_a_transport_error() -> None:
    for short in (b"", b"\x90"):
        transport, _ = tap([(READ_RECORD, short)])
        with pytest.raises(TransportError, match="no status word"):
            transport.transmit(READ_RECORD)


def test_every_wire_exchange_is_recorded_with_its_time() -> None:
    transport, _ = tap(
        [
            (SELECT_PPSE, b"\x61\x01"),
            (bytes.fromhex("00C0000001"), b"\x6f\x90\x00"),
        ]
    )
    transport.transmit(SELECT_PPSE)
    assert [e[:2] for e in transport.exchanges] == [
        (SELECT_PPSE, b"\x61\x01"),
        (bytes.fromhex("00C0000001"), b"\x6f\x90\x00"),
    ]
    assert all(isinstance(e, Exchange) and e.seconds >= 0 for e in transport.exchanges)


def test_get_response_command_asks_for_sw2_bytes() -> None:
    assert get_response_command(0x00) == bytes.fromhex("00C0000000")
    assert get_response_command(0x1F) == bytes.fromhex("00C000001F")


@pytest.mark.parametrize(
    ("command", "le", "expected"),
    [
        ("00B2010C", 0x10, "00B2010C10"),  # case 1 -> case 2
        ("00B2010C00", 0x1A, "00B2010C1A"),  # case 2
        ("00A4040002AABB", 0x05, "00A4040002AABB05"),  # case 3 -> case 4
        ("00A4040002AABB00", 0x05, "00A4040002AABB05"),  # case 4
    ],
)
def test_with_le_handles_the_four_short_apdu_cases(command: str, le: int, expected: str) -> None:
    assert with_le(bytes.fromhex(command), le) == bytes.fromhex(expected)


def test_with_le_refuses_what_is_not_a_short_apdu() -> None:
    for bad in ("00A4", "00A4040005AABB"):
        with pytest.raises(ValueError):
            with_le(bytes.fromhex(bad), 1)


def test_6cxx_to_a_malformed_command_is_returned_as_is() -> None:
    assert transmit_apdu(lambda _: b"\x6c\x05", bytes.fromhex("00A4040005AABB")) == b"\x6c\x05"


def test_loopback_connect_powers_the_card_on_and_returns_its_atr() -> None:
    card = ScriptedCard([])
    with LoopbackTransport(card) as transport:
        assert transport.connect(1.0) == card.atr
    assert card.resets == 1


def test_loopback_without_a_card_raises_no_card() -> None:
    with pytest.raises(NoCardError):
        LoopbackTransport(None).connect(0.1)


def test_loopback_card_removed_mid_tap_raises_card_removed() -> None:
    transport, _ = tap([(READ_RECORD, b"\x90\x00")])
    transport.transmit(READ_RECORD)
    transport.remove_card()
    with pytest.raises(CardRemovedError):
        transport.transmit(READ_RECORD)


def test_card_removed_and_no_card_are_transport_errors() -> None:
    """The kernel may catch TransportError alone and still end in TRY AGAIN."""
    assert issubclass(CardRemovedError, TransportError)
    assert issubclass(NoCardError, TransportError)


def test_open_transport_loopback_needs_the_card() -> None:
    with pytest.raises(ValueError, match="card"):
        open_transport("loopback:")
    assert isinstance(open_transport("loopback:", card=ScriptedCard([])), LoopbackTransport)
