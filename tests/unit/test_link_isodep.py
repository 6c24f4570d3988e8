"""The card side of ISO/IEC 14443-4 against a scripted reader: each test reads like the
clause it checks (block numbering 7.5.3, block handling rules 7.5.4, chaining 7.5.2, S(WTX)
7.3, S(DESELECT) 8, RATS/ATS 5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from hce_card.link.isodep import (
    DEFAULT_ATS,
    Ats,
    FieldOff,
    FrameTimeout,
    IsoDepCard,
    SessionEnd,
    ats_for,
    fsd_from_rats,
)

pytestmark = pytest.mark.timeout(20)

SELECT = bytes.fromhex("00A4040007A000000333010100")


class Reader:
    """A scripted PCD: each frame the card sends is recorded, and answered with the next frame
    of the script (a callable gets the card's frame and returns the answer). At the end of the
    script the field goes off."""

    def __init__(self, *script: bytes | Callable[[bytes | None], bytes]) -> None:
        self.script = list(script)
        self.sent: list[bytes] = []

    def exchange(self, frame: bytes | None, timeout: float) -> bytes | None:
        if frame is not None:
            self.sent.append(frame)
        if timeout == 0:
            return None
        if not self.script:
            raise FieldOff("end of script")
        step = self.script.pop(0)
        return step(frame) if callable(step) else step


def echo(apdu: bytes) -> bytes:
    return apdu[5 : 5 + apdu[4]] + b"\x90\x00" if len(apdu) > 5 else b"\x90\x00"


def card(process: Callable[[bytes], bytes] = echo, **options: object) -> IsoDepCard:
    return IsoDepCard(process, DEFAULT_ATS, **options)  # type: ignore[arg-type]


def test_rats_is_answered_with_the_ats_and_sets_fsd_and_cid() -> None:
    picc = card()
    assert picc.activate(bytes.fromhex("E080")) == DEFAULT_ATS
    assert (picc.fsd, picc.cid) == (256, 0)
    picc.activate(bytes.fromhex("E023"))
    assert (picc.fsd, picc.cid) == (32, 3)


def test_the_picc_block_number_starts_at_1_rule_c() -> None:
    picc = card()
    picc.activate(bytes.fromhex("E080"))
    assert picc.block_number == 1


def test_an_i_block_carries_the_apdu_and_is_answered_with_the_same_block_number() -> None:
    seen: list[bytes] = []
    picc = card(lambda apdu: seen.append(apdu) or echo(apdu))
    picc.activate(bytes.fromhex("E080"))
    reader = Reader(b"\x03" + SELECT)
    assert picc.run(reader, b"\x02" + SELECT) == SessionEnd.FIELD_OFF
    assert seen == [SELECT, SELECT]
    expected = bytes.fromhex("A0000003330101") + b"\x90\x00"
    assert reader.sent == [b"\x02" + expected, b"\x03" + expected]


def test_a_chained_command_is_acknowledged_with_r_ack_and_reassembled_7_5_2() -> None:
    seen: list[bytes] = []
    picc = card(lambda apdu: seen.append(apdu) or b"\x90\x00")
    picc.activate(bytes.fromhex("E080"))
    command = bytes.fromhex("80E20000FF") + bytes(range(255))
    reader = Reader(b"\x13" + command[100:200], b"\x02" + command[200:])
    picc.run(reader, b"\x12" + command[:100])
    assert seen == [command]
    assert reader.sent == [b"\xa2", b"\xa3", b"\x02\x90\x00"]


def test_a_long_response_is_chained_in_blocks_no_larger_than_fsd() -> None:
    response = bytes(range(256)) * 2 + b"\x90\x00"
    picc = card(lambda apdu: response)
    picc.activate(bytes.fromhex("E020"))  # FSD 32: 29 bytes of INF per block

    def ack(frame: bytes | None) -> bytes:
        assert frame is not None
        return bytes([0xA2 | (frame[0] & 1) ^ 1])  # R(ACK), the reader's next number

    reader = Reader(*[ack] * 17)
    picc.run(reader, b"\x02" + SELECT)
    assert len(reader.sent) == 18
    assert all(len(f) <= 32 - 2 for f in reader.sent)  # FSD counts the 2 CRC bytes
    assert b"".join(f[1:] for f in reader.sent) == response
    assert all(f[0] & 0x10 for f in reader.sent[:-1])  # chaining bit on all but the last
    assert not reader.sent[-1][0] & 0x10
    assert [f[0] & 1 for f in reader.sent[:4]] == [0, 1, 0, 1]  # rule E: toggled per ACK


def test_r_ack_with_the_current_block_number_resends_the_last_block_rule_11() -> None:
    picc = card(lambda apdu: bytes(100) + b"\x90\x00")
    picc.activate(bytes.fromhex("E020"))
    reader = Reader(b"\xa2", b"\xa3")
    picc.run(reader, b"\x02" + SELECT)
    assert reader.sent[1] == reader.sent[0]  # R(ACK) 0 = our number: repeat
    assert reader.sent[2][0] & 0x01 == 1  # R(ACK) 1: next block


def test_r_nak_with_the_current_block_number_resends_the_last_block_rule_11() -> None:
    picc = card()
    picc.activate(bytes.fromhex("E080"))
    reader = Reader(b"\xb2")
    picc.run(reader, b"\x02" + SELECT)
    assert reader.sent[1] == reader.sent[0]


def test_r_nak_with_another_block_number_is_answered_r_ack_rule_12() -> None:
    """nfcpy's presence check is exactly this R(NAK)."""
    picc = card()
    picc.activate(bytes.fromhex("E080"))
    reader = Reader(b"\xb3")
    picc.run(reader, b"\x02" + SELECT)
    assert reader.sent[1] == b"\xa2"


def test_a_slow_command_gets_s_wtx_before_the_frame_waiting_time_7_3() -> None:
    release = threading.Event()

    def slow(apdu: bytes) -> bytes:
        release.wait(5)
        return b"\x90\x00"

    picc = card(slow, wtxm=2)
    picc.activate(bytes.fromhex("E080"))
    sent_at: list[float] = []

    def wtx_response(frame: bytes | None) -> bytes:
        assert frame is not None and frame[0] == 0xF2 and frame[1] == 2
        sent_at.append(time.monotonic())
        if len(sent_at) == 3:
            release.set()
        return frame  # the PCD echoes the WTXM

    reader = Reader(wtx_response, wtx_response, wtx_response)
    started = time.monotonic()
    picc.run(reader, b"\x02" + SELECT)
    assert reader.sent[-1] == b"\x02\x90\x00"
    assert picc.wtx_sent == 3
    assert sent_at[0] - started < picc.ats.fwt  # the first WTX comes within the FWT


def test_a_reader_that_missed_our_wtx_gets_it_again_rule_11() -> None:
    release = threading.Event()
    picc = card(lambda apdu: release.wait(5) and b"\x90\x00", wtxm=1)
    picc.activate(bytes.fromhex("E080"))

    def nak(frame: bytes | None) -> bytes:
        return b"\xb2"

    def wtx_response(frame: bytes | None) -> bytes:
        assert frame is not None and frame[0] == 0xF2
        release.set()
        return frame

    reader = Reader(nak, wtx_response)
    picc.run(reader, b"\x02" + SELECT)
    assert reader.sent[0] == reader.sent[1] == b"\xf2\x01"
    assert reader.sent[-1] == b"\x02\x90\x00"


def test_s_deselect_is_answered_and_ends_the_session_8() -> None:
    picc = card()
    picc.activate(bytes.fromhex("E080"))
    reader = Reader(b"\xc2")
    assert picc.run(reader, b"\x02" + SELECT) == SessionEnd.DESELECTED
    assert reader.sent[-1] == b"\xc2"


def test_blocks_carry_and_are_answered_with_the_cid_the_rats_assigned() -> None:
    picc = card()
    picc.activate(bytes.fromhex("E085"))  # CID 5
    reader = Reader(b"\x0b\x07" + SELECT, b"\xca\x05")  # CID 7: another card's
    assert picc.run(reader, b"\x0a\x05" + SELECT) == SessionEnd.DESELECTED
    assert reader.sent[0][:2] == b"\x0a\x05"
    assert reader.sent[1] == b"\xca\x05"  # nothing was sent for CID 7


def test_a_block_with_nad_is_understood() -> None:
    seen: list[bytes] = []
    picc = card(lambda apdu: seen.append(apdu) or b"\x90\x00")
    picc.activate(bytes.fromhex("E080"))
    picc.run(Reader(), b"\x06\x00" + SELECT)
    assert seen == [SELECT]


def test_invalid_blocks_are_ignored() -> None:
    picc = card()
    picc.activate(bytes.fromhex("E080"))
    reader = Reader(b"\xc2")
    assert picc.run(reader, b"\x26") == SessionEnd.DESELECTED
    assert reader.sent == [b"\xc2"]


def test_no_frame_for_the_idle_timeout_ends_the_session() -> None:
    class Silent:
        def exchange(self, frame: bytes | None, timeout: float) -> bytes | None:
            raise FrameTimeout

    picc = card(idle_timeout=0.2, poll=0.05)
    picc.activate(bytes.fromhex("E080"))
    assert picc.run(Silent(), b"\x02" + SELECT) == SessionEnd.IDLE


def test_a_card_that_raises_answers_6f00() -> None:
    def broken(apdu: bytes) -> bytes:
        raise RuntimeError("bug")

    picc = card(broken)
    picc.activate(bytes.fromhex("E080"))
    reader = Reader()
    picc.run(reader, b"\x02" + SELECT)
    assert reader.sent == [b"\x02\x6f\x00"]


def test_a_card_removed_mid_command_sends_nothing() -> None:
    removed = threading.Event()
    picc = card(lambda apdu: removed.set() or b"\x90\x00", is_removed=removed.is_set)
    picc.activate(bytes.fromhex("E080"))
    reader = Reader()
    assert picc.run(reader, b"\x02" + SELECT) == SessionEnd.REMOVED
    assert reader.sent == []


def test_default_ats_gives_the_fwt_of_the_pn53x_firmware() -> None:
    ats = Ats.parse(DEFAULT_ATS)
    assert (ats.fsc, ats.fwi, ats.cid_supported, ats.nad_supported) == (256, 7, True, False)
    assert ats.fwt == pytest.approx(0.03866, abs=1e-4)


def test_ats_for_builds_historical_bytes_and_fwi() -> None:
    ats = Ats.parse(ats_for(b"\x80\x31", fwi=8))
    assert ats.historical_bytes == b"\x80\x31"
    assert ats.fwi == 8


@pytest.mark.parametrize("bad", ["", "05", "0478", "057880F002"])
def test_malformed_ats_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Ats.parse(bytes.fromhex(bad))


def test_fsd_from_rats() -> None:
    assert fsd_from_rats(bytes.fromhex("E080")) == (256, 0)
    assert fsd_from_rats(bytes.fromhex("E051")) == (64, 1)
    with pytest.raises(ValueError):
        fsd_from_rats(bytes.fromhex("5000"))
