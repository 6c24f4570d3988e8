"""emvtap.iso8583: the field table, codec, framing and DE 48 token data (docs/architecture.md:
truncated, oversized and random input each get a specific error, never another exception)."""

from __future__ import annotations

import random
import struct

import pytest

from emvtap.iso8583 import (
    FIELDS,
    MAX_MESSAGE_LEN,
    SPEC,
    MessageFormatError,
    TokenData,
    decode_message,
    decode_token_data,
    encode_message,
    encode_token_data,
    frame,
    redacted,
    response_mti,
    unframe,
)

AUTH_REQUEST = {
    "t": "0100",
    "2": "6250940000000019",
    "3": "000000",
    "4": "000000001234",
    "7": "1126113000",
    "11": "000042",
    "12": "113000",
    "13": "1126",
    "14": "3012",
    "22": "071",
    "23": "001",
    "35": "6250940000000019=30122010000000000",
    "37": "000100000042",
    "41": "TERM0001",
    "42": "MERCHANT0000001",
    "48": "0111500123456780501P",
    "49": "156",
    "52": bytes.fromhex("0412AC89ABCDEF67"),
    "55": bytes.fromhex("9F2608AABBCCDDEEFF00119F360200015F2A020156"),
    "56": "U0010000000000000000000000001",
}


def test_every_field_of_the_table_round_trips():
    fields = dict(AUTH_REQUEST) | {"38": "123456", "39": "00", "70": "301", "90": "0" * 42}
    assert {int(k) for k in fields if k != "t"} == set(FIELDS)
    assert decode_message(encode_message(fields)) == fields


@pytest.mark.parametrize("mti", ["0100", "0110", "0200", "0210", "0400", "0410", "0800", "0810"])
def test_each_supported_mti_round_trips(mti):
    fields = {"t": mti, "11": "000001", "39": "00"}
    assert decode_message(encode_message(fields)) == fields


def test_layout_is_ascii_mti_then_binary_bitmap():
    raw = encode_message({"t": "0800", "11": "000001", "70": "301"})
    assert raw[:4] == b"0800"
    # primary bitmap: bit 1 (secondary present) and bit 11 (STAN)
    assert raw[4:12] == bytes.fromhex("8020000000000000")
    # secondary bitmap: bit 70 → bit 6 of the second bitmap
    assert raw[12:20] == bytes.fromhex("0400000000000000")
    assert raw[20:] == b"000001301"


def test_secondary_bitmap_only_when_a_field_above_64_is_present():
    raw = encode_message({"t": "0100", "11": "000001"})
    assert raw[4] & 0x80 == 0
    assert len(raw) == 4 + 8 + 6


def test_icc_data_is_binary_with_an_ascii_lll_length():
    raw = encode_message({"t": "0100", "55": b"\x9f\x26\x01\xff"})
    assert raw.endswith(b"004\x9f\x26\x01\xff")


def test_spec_is_generated_from_the_field_table():
    assert SPEC["55"]["data_enc"] == "b" and SPEC["55"]["len_type"] == 3
    assert SPEC["2"]["len_type"] == 2 and SPEC["2"]["max_len"] == 19
    assert SPEC["p"]["data_enc"] == "b"


def test_response_mti_of_each_request():
    assert [response_mti(m) for m in ("0100", "0200", "0400", "0800")] == [
        "0110",
        "0210",
        "0410",
        "0810",
    ]
    with pytest.raises(MessageFormatError):
        response_mti("0110")


# --- encode refuses what the table does not allow --------------------------------------------


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"t": "0300"}, "t"),
        ({"t": "0100", "4": "12.34"}, "4"),
        ({"t": "0100", "4": "1234"}, "4"),
        ({"t": "0100", "2": "6" * 20}, "2"),
        ({"t": "0100", "5": "000000000001"}, "5"),
        ({"t": "0100", "52": b"\x00" * 7}, "52"),
        ({"t": "0100", "55": b"\x00" * 1000}, "55"),
        ({"t": "0100", "41": "TERMINAL1"}, "41"),
        ({"t": "0100", "41": 12345678}, "41"),
    ],
)
def test_encode_rejects_values_outside_the_field_table(fields, field):
    with pytest.raises(MessageFormatError) as err:
        encode_message(fields)
    assert err.value.field == field


# --- decode: bad input always ends in MessageFormatError ----------------------------------------


def test_truncated_message_is_a_format_error_at_every_cut():
    raw = encode_message(AUTH_REQUEST)
    for cut in range(len(raw)):
        with pytest.raises(MessageFormatError):
            decode_message(raw[:cut])


def test_extra_bytes_after_the_last_field_are_a_format_error():
    with pytest.raises(MessageFormatError):
        decode_message(encode_message(AUTH_REQUEST) + b"0")


def test_oversized_message_is_refused():
    with pytest.raises(MessageFormatError) as err:
        decode_message(b"0100" + bytes(MAX_MESSAGE_LEN))
    assert err.value.field == "frame"


def test_oversized_variable_field_length_is_a_format_error():
    raw = bytearray(encode_message({"t": "0100", "11": "000001", "2": "6250940000000019"}))
    # DE 2's LL says 16; make it 99 (> max 19)
    idx = raw.index(b"16")
    raw[idx : idx + 2] = b"99"
    with pytest.raises(MessageFormatError) as err:
        decode_message(bytes(raw))
    assert err.value.field == "2"
    assert err.value.mti == "0100"


def test_field_outside_the_table_is_named_in_the_error():
    raw = bytearray(encode_message({"t": "0100", "11": "000007"}))
    raw[4 + 2] |= 0x01  # bit 24 (not in the table)
    with pytest.raises(MessageFormatError) as err:
        decode_message(bytes(raw))
    assert err.value.field == "24"
    assert (err.value.mti, err.value.stan) == ("0100", "000007")


def test_non_digits_in_a_numeric_field_are_a_format_error_with_mti_and_stan():
    raw = encode_message({"t": "0200", "4": "000000001234", "11": "000123"})
    bad = raw.replace(b"000000001234", b"00000000I234")
    with pytest.raises(MessageFormatError) as err:
        decode_message(bad)
    assert err.value.field == "4"
    assert (err.value.mti, err.value.stan) == ("0200", "000123")


@pytest.mark.parametrize("prefix", [b"+9", b" 9", b"9 "])
def test_length_prefix_with_sign_or_space_is_a_format_error(prefix):
    raw = encode_message({"t": "0100", "2": "625094000"})
    assert raw.endswith(b"09625094000")
    with pytest.raises(MessageFormatError) as err:
        decode_message(raw[: -len(b"09625094000")] + prefix + b"625094000")
    assert err.value.field == "2"


def test_unknown_mti_is_readable_but_not_handled():
    raw = b"0300" + bytes(8)
    with pytest.raises(MessageFormatError) as err:
        decode_message(raw)
    assert err.value.field == "t" and err.value.mti == "0300"


def test_binary_mti_is_unreadable():
    with pytest.raises(MessageFormatError) as err:
        decode_message(b"\xff\x01\x00\x00" + bytes(8))
    assert err.value.mti is None


def test_random_bytes_only_ever_raise_message_format_error():
    rnd = random.Random(8583)
    valid = encode_message(AUTH_REQUEST)
    for i in range(5000):
        kind = i % 3
        if kind == 0:
            raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(120)))
        elif kind == 1:
            raw = rnd.choice([b"0100", b"0200", b"0800"]) + bytes(
                rnd.randrange(256) for _ in range(rnd.randrange(200))
            )
        else:
            mutated = bytearray(valid)
            for _ in range(rnd.randint(1, 6)):
                mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
            raw = bytes(mutated)
        try:
            decode_message(raw)
        except MessageFormatError as exc:
            assert exc.field and exc.reason


# --- framing ---------------------------------------------------------------------------------


def test_frame_is_a_two_byte_big_endian_length():
    msg = encode_message({"t": "0800", "11": "000001", "70": "301"})
    assert frame(msg) == struct.pack(">H", len(msg)) + msg


def test_unframe_waits_for_a_whole_frame_and_keeps_the_rest():
    a, b = b"0800" + bytes(8), b"0810" + bytes(8)
    stream = frame(a) + frame(b)
    assert unframe(stream[:5]) == (None, stream[:5])
    first, rest = unframe(stream)
    assert first == a and unframe(rest) == (b, b"")


def test_oversized_frame_is_refused_from_its_length_alone():
    with pytest.raises(MessageFormatError) as err:
        unframe(struct.pack(">H", MAX_MESSAGE_LEN + 1))
    assert err.value.field == "frame"
    with pytest.raises(MessageFormatError):
        frame(bytes(MAX_MESSAGE_LEN + 1))


# --- DE 48 token data ------------------------------------------------------------------------


def test_token_data_round_trips_with_every_sub_element():
    data = TokenData(
        token_requestor_id="50012345678",
        token_status="S",
        par="U0010000000000000000000000001",
        device_type="03",
        channel="A",
        assurance_level="25",
        device_verified=True,
        other={"99": "future"},
    )
    text = encode_token_data(data)
    assert text.startswith("011150012345678020" + "1S")
    assert decode_token_data(text) == data
    assert data.encode() == text


@pytest.mark.parametrize(
    "text",
    [
        "0111500123",  # truncated value
        "01",  # truncated header
        "0A01X",  # non-digit header
        "02011",  # status not A/S/D... "1"
        "0111500123456780111500123456789",  # repeated
        "0101X",  # TRID not 11 digits
        "0402" + "07",  # unknown device type code
        "0701" + "2",  # device verification not 0/1
    ],
)
def test_malformed_token_data_is_a_de48_format_error(text):
    with pytest.raises(MessageFormatError) as err:
        decode_token_data(text)
    assert err.value.field == "48"


def test_encode_token_data_checks_values():
    with pytest.raises(MessageFormatError):
        encode_token_data(TokenData(token_requestor_id="123"))


def test_random_token_data_only_ever_raises_message_format_error():
    rnd = random.Random(48)
    alphabet = "0123456789ASDPX "
    for _ in range(3000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(40)))
        try:
            decode_token_data(text)
        except MessageFormatError as exc:
            assert exc.field == "48"


# --- redaction -------------------------------------------------------------------------------


def test_redacted_masks_pan_track2_and_drops_pin_block():
    out = redacted(AUTH_REQUEST)
    assert out["2"] == "625094******0019"
    assert "6250940000000019" not in str(out)
    assert out["52"] == "<PIN block>"
    assert out["55"].startswith("9F26=AABBCCDDEEFF0011")


# --- the synchronous client --------------------------------------------------------------------


def _one_shot_server(behaviour):
    """A listener on 127.0.0.1 that handles one connection with ``behaviour(conn)``."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            behaviour(conn)
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_exchange_sends_one_framed_request_and_decodes_the_answer():
    from emvtap.iso8583 import exchange, read_frame

    def echo(conn):
        request = decode_message(read_frame(conn))
        conn.sendall(frame(encode_message({"t": "0810", "11": request["11"], "39": "00"})))

    port = _one_shot_server(echo)
    assert exchange("127.0.0.1", port, {"t": "0800", "11": "000009", "70": "301"}) == {
        "t": "0810",
        "11": "000009",
        "39": "00",
    }


def test_exchange_times_out_when_no_answer_comes():
    import time

    from emvtap.iso8583 import exchange

    port = _one_shot_server(lambda conn: time.sleep(1.0))
    with pytest.raises(TimeoutError):
        exchange("127.0.0.1", port, {"t": "0800", "11": "000001", "70": "301"}, timeout=0.2)


def test_exchange_reports_a_closed_connection():
    from emvtap.iso8583 import exchange

    port = _one_shot_server(lambda conn: conn.recv(100))
    with pytest.raises(ConnectionError):
        exchange("127.0.0.1", port, {"t": "0800", "11": "000001", "70": "301"})
