"""The ACR122U personality of the card side (hce_card/link/acr122u.py): the reader's
pseudo-APDUs are answered by the reader as the ACR122U API manual and PC/SC Part 3 say, and
never reach the card; everything else does."""

from __future__ import annotations

import pytest

from emvtap.perso import generate_profile
from hce_card.card import HceCard
from hce_card.link.acr122u import Acr122uPersonality, with_personality

UID = bytes.fromhex("08123456")
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


class Recorder:
    atr = bytes.fromhex("3B8680018065AB1234567800")  # a Part 3 ATR with 6 historical bytes

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def reset(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        return b"\x6f\x00\x90\x00"


@pytest.fixture
def card() -> Recorder:
    return Recorder()


def test_get_data_uid_is_answered_by_the_reader(card: Recorder) -> None:
    """PC/SC Part 3, 3.2.2.1.3: FF CA 00 00 00 → the UID and 90 00."""
    reader = Acr122uPersonality(card, uid=UID)
    assert reader.process(bytes.fromhex("FFCA000000")) == UID + b"\x90\x00"
    assert card.seen == []


def test_get_data_with_a_short_le_is_6c_with_the_length(card: Recorder) -> None:
    assert Acr122uPersonality(card, uid=UID).process(bytes.fromhex("FFCA000002")) == b"\x6c\x04"


def test_get_data_historical_bytes(card: Recorder) -> None:
    reader = Acr122uPersonality(card, uid=UID)
    historical = bytes.fromhex("8065AB123456")
    assert reader.process(bytes.fromhex("FFCA010000")) == historical + b"\x90\x00"


def test_get_data_of_an_unknown_kind_is_function_not_supported(card: Recorder) -> None:
    assert Acr122uPersonality(card, uid=UID).process(bytes.fromhex("FFCA020000")) == b"\x6a\x81"


def test_led_and_buzzer_answer_90_and_the_led_state(card: Recorder) -> None:
    """ACR122U API manual 6.2: green on (0E) → 90 02; red on (0D) → 90 01; both off → 90 00."""
    reader = Acr122uPersonality(card, uid=UID)
    assert reader.process(bytes.fromhex("FF00400E0400000000")) == b"\x90\x02"
    assert reader.process(bytes.fromhex("FF00400D0403000101")) == b"\x90\x01"
    assert reader.process(bytes.fromhex("FF00400C0400000000")) == b"\x90\x00"
    assert reader.reader.buzzes == 1
    assert card.seen == []


def test_firmware_version_is_the_acr122us(card: Recorder) -> None:
    assert Acr122uPersonality(card).process(bytes.fromhex("FF00480000")).startswith(b"ACR122U2")


def test_direct_transmit_in_data_exchange_reaches_the_card(card: Recorder) -> None:
    """API manual 4.1, PN532 InDataExchange to target 1: D4 40 01 + APDU → D5 41 00 + R-APDU."""
    reader = Acr122uPersonality(card, uid=UID)
    answer = reader.process(bytes.fromhex("FF000000") + bytes([3 + len(SELECT_PPSE)])
                            + bytes.fromhex("D44001") + SELECT_PPSE)
    assert answer == bytes.fromhex("D54100") + b"\x6f\x00\x90\x00" + b"\x90\x00"
    assert card.seen == [SELECT_PPSE]


def test_other_apdus_go_to_the_card_and_the_atr_is_the_cards() -> None:
    hce = HceCard(generate_profile(5))
    reader = Acr122uPersonality(hce)
    assert reader.atr == hce.atr
    assert reader.process(SELECT_PPSE)[-2:] == b"\x90\x00"
    assert reader.uid[0] == 0x08 and len(reader.uid) == 4


def test_an_unknown_personality_is_a_clear_error(card: Recorder) -> None:
    with pytest.raises(ValueError, match="unknown reader personality 'omnikey'"):
        with_personality(card, "omnikey")
