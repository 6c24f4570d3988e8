"""ACR122U extras of the PC/SC driver, with the wire replaced by a recorder: which
pseudo-APDUs go to which reader."""

from __future__ import annotations

import pytest

from terminal.transport.pcsc import ACR122U_FEEDBACK, GET_UID, PcscTransport


class Recorder:
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sent: list[bytes] = []

    def __call__(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.answer


def connected(reader: str, answer: bytes) -> tuple[PcscTransport, Recorder]:
    transport = PcscTransport(reader, apdu_timeout=None)
    transport.reader = reader
    transport._card = 1  # a card handle, as after connect()
    recorder = Recorder(answer)
    transport._send = recorder  # type: ignore[method-assign]
    return transport, recorder


@pytest.mark.parametrize(
    ("outcome", "p2"), [("APPROVED", 0xAC), ("DECLINED", 0x5C), ("TRY AGAIN", 0x5C)]
)
def test_acr122u_gets_the_led_and_buzzer_command_of_the_outcome(outcome: str, p2: int) -> None:
    transport, recorder = connected("ACS ACR122U PICC Interface 00 00", b"\x90\x00")
    assert transport.feedback(outcome) is True
    (command,) = recorder.sent
    assert command[:3] == bytes.fromhex("FF0040") and command[3] == p2 and command[4] == 4


def test_approved_is_green_and_declined_is_red() -> None:
    approved, declined = ACR122U_FEEDBACK["APPROVED"][3], ACR122U_FEEDBACK["DECLINED"][3]
    assert approved & 0x80 and approved & 0x20 and not approved & 0x40  # green blinks
    assert declined & 0x40 and declined & 0x10 and not declined & 0x80  # red blinks


def test_other_readers_get_no_feedback_command() -> None:
    transport, recorder = connected("Identiv uTrust 3700 F CL Reader 00 00", b"\x90\x00")
    assert transport.feedback("APPROVED") is False
    assert recorder.sent == []


def test_uid_is_the_data_of_the_get_data_pseudo_apdu() -> None:
    transport, recorder = connected("ACS ACR122U PICC Interface 00 00", b"\x08\x12\x34\x56\x90\x00")
    assert transport.uid() == bytes.fromhex("08123456")
    assert recorder.sent == [GET_UID]
    assert transport.exchanges == []  # not a card command: not in the trace


def test_uid_is_none_when_the_reader_does_not_answer_it() -> None:
    transport, _ = connected("Virtual PCD 00 00", b"\x6e\x00")
    assert transport.uid() is None
