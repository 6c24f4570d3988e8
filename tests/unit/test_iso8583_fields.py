"""Every data element of emvtap's ISO 8583 field table refuses bad input on the wire, field by
field (emvtap/iso8583.py field table; ISO 8583:1987 4.1 data element formats): a character
outside the field's format, a value longer than the field allows, a length prefix that is not
ASCII digits. Each refusal is a MessageFormatError naming the field, the MTI and the STAN.

The wire bytes are built here by hand from the layout (ASCII MTI ‖ binary bitmap ‖ fields;
LL/LLL prefixes in ASCII digits), not by the codec under test."""

from __future__ import annotations

import pytest

from emvtap.iso8583 import FIELDS, MessageFormatError, decode_message, encode_message

#: a valid value of every field (text fields as str, binary as bytes)
VALID: dict[int, str | bytes] = {
    2: "6250940000000019", 3: "000000", 4: "000000001234", 7: "1126113000", 11: "000042",
    12: "113000", 13: "1126", 14: "3012", 22: "071", 23: "001",
    35: "6250940000000019=30122010000000000", 37: "000100000042", 38: "A1B2C3", 39: "00",
    41: "TERM0001", 42: "MERCHANT0000001", 48: "0111500123456780501P", 49: "156",
    52: bytes.fromhex("0412AC89ABCDEF67"), 55: bytes.fromhex("9F2701809F360200015F2A020156"),
    56: "U0010000000000000000000000001", 70: "301", 90: "0" * 42,
}
#: per format: a character the format does not allow
BAD_CHARACTER = {"n": "A", "an": "#", "ans": "\x7f", "z": "D"}
STAN = "000042"


def _element(number: int, value: bytes, prefix: bytes | None = None) -> bytes:
    fd = FIELDS[number]
    if fd.prefix == 0:
        return value
    return (prefix if prefix is not None else str(len(value)).zfill(fd.prefix).encode()) + value


def wire(mti: str, elements: dict[int, bytes]) -> bytes:
    """MTI ‖ bitmap(s) ‖ elements in ascending order, each already with its prefix."""
    bitmap = 0
    secondary = any(n > 64 for n in elements)
    for n in elements:
        bitmap |= 1 << (128 - n)
    if secondary:
        bitmap |= 1 << 127
        bitmaps = bitmap.to_bytes(16, "big")
    else:
        bitmaps = (bitmap >> 64).to_bytes(8, "big")
    return mti.encode() + bitmaps + b"".join(elements[n] for n in sorted(elements))


def _raw(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def message_with(number: int, element: bytes, mti: str = "0100") -> bytes:
    """A request with DE 11 and the element under test (plus DE 3 so DE 11 is not first)."""
    elements = {3: _element(3, b"000000"), 11: _element(11, STAN.encode()), number: element}
    return wire(mti, elements)


def _refusal(raw: bytes) -> tuple[str, str | None, str | None]:
    with pytest.raises(MessageFormatError) as info:
        decode_message(raw)
    return info.value.field, info.value.mti, info.value.stan


def _stan_for(number: int) -> str | None:
    """The STAN can be read when DE 11 precedes the bad field on the wire."""
    return STAN if number > 11 else None


TEXT_FIELDS = sorted(n for n, fd in FIELDS.items() if fd.fmt != "b" and n not in (3, 11))
VARIABLE_FIELDS = sorted(n for n, fd in FIELDS.items() if fd.prefix and n not in (3, 11))
#: variable fields whose maximum is below what the prefix can say (LL 19 for DE 2): the ones an
#: over-long value can be written for at all (DE 48/55 LLL 999 and DE 56 LL 99 cannot)
OVER_LENGTH_FIELDS = [n for n in VARIABLE_FIELDS
                      if len(str(FIELDS[n].max_len + 1)) <= FIELDS[n].prefix]


def test_the_hand_built_wire_is_what_the_encoder_sends() -> None:
    for number, value in VALID.items():
        fields = {"t": "0100", "3": "000000", "11": STAN, str(number): value}
        assert message_with(number, _element(number, _raw(value))) == encode_message(fields)
        assert decode_message(message_with(number, _element(number, _raw(value))))[
            str(number)] == value


@pytest.mark.parametrize("number", TEXT_FIELDS)
def test_a_character_outside_the_format_is_refused(number: int) -> None:
    fd = FIELDS[number]
    value = _raw(VALID[number])
    bad = BAD_CHARACTER[fd.fmt].encode("latin-1") + value[1:]
    assert len(bad) == len(value)
    # the element is read whole, then its characters are checked: the STAN is known by then
    assert _refusal(message_with(number, _element(number, bad))) == (str(number), "0100", STAN)


def test_over_length_is_tested_for_every_field_it_can_be_written_for() -> None:
    assert OVER_LENGTH_FIELDS == [2, 35]


@pytest.mark.parametrize("number", OVER_LENGTH_FIELDS)
def test_a_value_over_the_maximum_length_is_refused(number: int) -> None:
    fd = FIELDS[number]
    filler = b"\x00" if fd.fmt == "b" else b"0"
    over = filler * (fd.max_len + 1)
    assert _refusal(message_with(number, _element(number, over))) == (
        str(number), "0100", _stan_for(number))


@pytest.mark.parametrize("number", VARIABLE_FIELDS)
@pytest.mark.parametrize("prefix", ["sign", "space", "letter"])
def test_a_length_prefix_that_is_not_ascii_digits_is_refused(number: int, prefix: str) -> None:
    fd = FIELDS[number]
    value = _raw(VALID[number])
    good = str(len(value)).zfill(fd.prefix)
    bad = {"sign": "+" + good[1:], "space": " " + good[1:], "letter": good[:-1] + "A"}[prefix]
    assert _refusal(message_with(number, _element(number, value, bad.encode()))) == (
        str(number), "0100", _stan_for(number))


@pytest.mark.parametrize("number", sorted(n for n, fd in FIELDS.items() if fd.prefix == 0
                                          and n > 11))
def test_a_fixed_field_cut_short_at_the_end_of_the_message_is_refused(number: int) -> None:
    """A fixed-length element with one byte missing, as the last element of the message."""
    value = _raw(VALID[number])
    raw = wire("0100", {3: b"000000", 11: STAN.encode(), number: value[:-1]})
    assert _refusal(raw) == (str(number), "0100", _stan_for(number))


def test_a_length_prefix_longer_than_the_rest_of_the_message_is_refused() -> None:
    raw = message_with(2, b"19" + b"625094")
    assert _refusal(raw) == ("2", "0100", None)
