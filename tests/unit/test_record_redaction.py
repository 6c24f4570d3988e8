"""The tap record masks PAN and track 2 without relying on the card's answer parsing
(PCI DSS 3.4; terminal/redaction.py), and the redundancy rule of Book 3, 10.2 as a pure
function (terminal/kernel/redundancy.py)."""

from __future__ import annotations

from emvtap.tlv import Tlv
from terminal.kernel.redundancy import check_redundancy
from terminal.redaction import CardholderData, scan_answer

PAN = "4761739216540249"
TRACK2 = bytes.fromhex(f"{PAN}D30122015955726F")


def test_a_pan_in_an_answer_that_is_not_ber_tlv_is_found() -> None:
    answer = bytearray(Tlv.template(0x77, [Tlv.primitive(0x57, TRACK2),
                                           Tlv.primitive(0x9F36, b"\x00\x01")]).encode())
    answer[1] += 1  # the template one byte too long
    pans, tracks, _ = scan_answer(bytes(answer))
    assert PAN in pans
    assert any(t.startswith(f"{PAN}D3012201") for t in tracks)


def test_track2_whose_tag_byte_was_changed_is_found_by_its_shape() -> None:
    answer = Tlv.primitive(0x58, TRACK2).encode()  # 58 10 <PAN> D ...: the length reads "10"
    pans, _, _ = scan_answer(answer)
    assert PAN in pans  # the run "10" + PAN is taken, and every ending of it


def test_masking_keeps_first_six_last_four_and_the_length() -> None:
    known = CardholderData()
    known.add_track2(TRACK2.hex())
    text = f"r=5713{TRACK2.hex().upper()} decoded: 57 [19] {PAN}D30122015955726"
    masked = known.mask(text)
    assert len(masked) == len(text)
    assert "476173******0249D" in masked
    assert PAN not in masked and "5955726" not in masked


def test_a_track2_tail_never_hides_the_start_of_the_pan_after_it() -> None:
    known = CardholderData()
    known.add_track2(f"{PAN}D30122015955726F5A08{PAN}")  # a length byte broke: 5A follows
    masked = known.mask(f"{PAN}D30122015955726F5A08{PAN}")
    assert masked == "476173******0249D**************F5A08476173******0249"


def test_clear_text_without_a_known_pan_is_unchanged() -> None:
    assert CardholderData().mask("9F360200019000") == "9F360200019000"


# --- Book 3, 10.2: redundancy -----------------------------------------------------------------


def _objs(*pairs: tuple[int, str]) -> list[Tlv]:
    return [Tlv.template(0x70, [Tlv.primitive(t, bytes.fromhex(v)) for t, v in pairs])]


def test_a_data_object_twice_in_one_answer_is_redundant() -> None:
    assert check_redundancy({}, _objs((0x5F25, "251101"), (0x5F25, "251101")),
                            "GPO answer") == "redundant data object 5F25 in GPO answer"


def test_a_data_object_in_two_answers_is_redundant_even_with_the_same_value() -> None:
    received: dict[int, tuple[str, bytes]] = {}
    assert check_redundancy(received, _objs((0x5F25, "200101")), "FCI") is None
    assert check_redundancy(received, _objs((0x5F25, "251101")), "record SFI 1/1") == (
        "redundant data object 5F25 in record SFI 1/1, already in FCI with another value")
    assert check_redundancy(received, _objs((0x5F25, "200101")), "record SFI 1/2") == (
        "redundant data object 5F25 in record SFI 1/2, already in FCI")


def test_pan_sequence_number_may_repeat_with_its_value_only() -> None:
    received: dict[int, tuple[str, bytes]] = {}
    assert check_redundancy(received, _objs((0x5F34, "01")), "GPO answer") is None
    assert check_redundancy(received, _objs((0x5F34, "01")), "record SFI 1/1") is None
    assert check_redundancy(received, _objs((0x5F34, "02")), "record SFI 1/2") is not None


def test_get_data_may_read_again_what_it_asks_for_unchanged() -> None:
    received: dict[int, tuple[str, bytes]] = {}
    assert check_redundancy(received, _objs((0x9F36, "0007")), "GPO answer") is None
    assert check_redundancy(received, [Tlv.primitive(0x9F36, bytes.fromhex("0007"))],
                            "GET DATA 9F36 answer", requested=0x9F36) is None
    assert check_redundancy(received, [Tlv.primitive(0x9F36, bytes.fromhex("0006"))],
                            "GET DATA 9F36 answer", requested=0x9F36) is not None


def test_a_pan_with_a_corrupted_nibble_is_still_masked() -> None:
    """A byte of the PAN inside 57 changed in transit (94 → BD): the other digits are still
    the card's PAN and must not show."""
    corrupted = bytes.fromhex("476173BD16540249D30122015955726F")
    answer = bytes.fromhex("7714") + Tlv.primitive(0x57, corrupted).encode() + b"\x9f"
    known = CardholderData()
    known.note(answer)
    masked = known.mask(answer.hex().upper())
    assert "16540249" not in masked and "5955726" not in masked


def test_a_pan_whose_5a_tag_byte_was_changed_is_found_by_length_and_luhn() -> None:
    answer = bytes.fromhex("7081871A08") + bytes.fromhex(PAN) + bytes.fromhex("5F240330")
    known = CardholderData()
    known.note(answer)
    assert PAN[6:] not in known.mask(answer.hex().upper())


def test_track2_whose_separator_was_changed_is_masked_whole() -> None:
    """57 10 <PAN> F 3012... : no D left, the 19 bytes after the tag are masked anyway."""
    corrupted = bytes.fromhex(f"{PAN}F30122015955726F")
    answer = bytes.fromhex("7781AF") + Tlv.primitive(0x57, corrupted).encode()
    known = CardholderData()
    known.note(answer)
    masked = known.mask(answer.hex().upper())
    assert PAN[6:] not in masked and "5955726" not in masked
