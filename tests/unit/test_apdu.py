"""Command and response APDUs (ISO/IEC 7816-4 short cases; EMV 4.4 Book 1, 9 and Book 3, 6)
and status words with their meanings."""

from __future__ import annotations

import random

import pytest

from emvtap.apdu import SW, ApduError, CommandApdu, ResponseApdu, status_meaning

h = bytes.fromhex


# --- the four short cases ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        # case 1: header only (APPLICATION UNBLOCK without its MAC, Book 3 6.5.10)
        ("84180000", (0x84, 0x18, 0x00, 0x00, b"", None)),
        # case 2: Le only - READ RECORD SFI 3 record 1, GET DATA ATC
        ("00B2011C00", (0x00, 0xB2, 0x01, 0x1C, b"", 0)),
        ("80CA9F3600", (0x80, 0xCA, 0x9F, 0x36, b"", 0)),
        ("00B2011C1A", (0x00, 0xB2, 0x01, 0x1C, b"", 0x1A)),
        # case 3: Lc and data - EXTERNAL AUTHENTICATE from the PBOC trace
        ("00820000081122334455667788", (0x00, 0x82, 0x00, 0x00, h("1122334455667788"), None)),
        # case 4: Lc, data and Le - SELECT PPSE, INTERNAL AUTHENTICATE
        ("00A404000E325041592E5359532E444446303100",
         (0x00, 0xA4, 0x04, 0x00, b"2PAY.SYS.DDF01", 0)),
        ("00880000047863AFC600", (0x00, 0x88, 0x00, 0x00, h("7863AFC6"), 0)),
    ],
)
def test_short_cases_decode_and_encode_back(raw: str, fields: tuple) -> None:
    cmd = CommandApdu.decode(h(raw))
    assert (cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, cmd.le) == fields
    assert cmd.encode() == h(raw)
    assert cmd.header == h(raw)[:4]


def test_visa_gpo_command_from_the_trace() -> None:
    raw = h("80A8000037833533804000000000000100000000000000082600000000000826211014000EB0F6160"
            "00000000000000000000000000000000000000000")
    cmd = CommandApdu.decode(raw)
    assert (cmd.cla, cmd.ins) == (0x80, 0xA8)
    assert len(cmd.data) == 0x37 and cmd.data[:2] == h("8335")
    assert cmd.le == 0
    assert cmd.encode() == raw


def test_gpo_built_by_a_terminal_encodes_as_case_4() -> None:
    cmd = CommandApdu(0x80, 0xA8, 0x00, 0x00, h("8300"), 0)
    assert cmd.encode() == h("80A80000028300" "00")


def test_le_256_and_le_0_are_both_coded_00() -> None:
    assert CommandApdu(0x00, 0xB2, 0x01, 0x0C, le=256).encode() == h("00B2010C00")
    assert CommandApdu(0x00, 0xB2, 0x01, 0x0C, le=0).encode() == h("00B2010C00")


def test_255_data_bytes_is_the_short_maximum() -> None:
    cmd = CommandApdu(0x80, 0xAE, 0x80, 0x00, bytes(255), 0)
    assert cmd.encode()[4] == 0xFF
    assert CommandApdu.decode(cmd.encode()) == cmd


# --- malformed commands --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "command APDU of 0 bytes"),
        ("00A404", "command APDU of 3 bytes"),
        ("00A4040000000E", "Lc of 0"),  # extended length
        ("00A40400000000", "Lc of 0"),
        ("00A404000E3250", "Lc says 14 data bytes, the body has 2"),  # data cut short
        ("00A4040002AABBCCDD", "Lc says 2 data bytes, the body has 4"),  # two bytes too many
    ],
)
def test_malformed_command_raises_apdu_error(raw: str, message: str) -> None:
    with pytest.raises(ApduError, match=message):
        CommandApdu.decode(h(raw))


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        (CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes(256)), "at most 255 data bytes"),
        (CommandApdu(0x00, 0xB2, 0x01, 0x0C, le=257), "Le 257"),
        (CommandApdu(0x00, 0xB2, 0x01, 0x0C, le=-1), "Le -1"),
        (CommandApdu(0x100, 0xB2, 0x01, 0x0C), "CLA 256 is not one byte"),
        (CommandApdu(0x00, 0xB2, -1, 0x0C), "P1 -1 is not one byte"),
    ],
)
def test_unencodable_command_raises_apdu_error(cmd: CommandApdu, message: str) -> None:
    with pytest.raises(ApduError, match=message):
        cmd.encode()


def test_apdu_error_is_a_value_error() -> None:
    assert issubclass(ApduError, ValueError)


def test_random_commands_decode_and_re_encode_or_raise_apdu_error() -> None:
    rng = random.Random(7816)
    decoded = 0
    for _ in range(500):
        n = rng.choice([0, 1, 3, 4, 5, 6, 7, rng.randrange(8, 40)])
        raw = bytes(rng.randrange(256) for _ in range(n))
        if n > 5 and rng.random() < 0.5:  # make Lc agree with the body now and then
            raw = raw[:4] + bytes([n - 5 - rng.randrange(2)]) + raw[5:]
        try:
            cmd = CommandApdu.decode(raw)
        except ApduError:
            continue
        decoded += 1
        assert cmd.encode() == raw
    assert decoded > 100


# --- responses -----------------------------------------------------------------------------


def test_response_splits_data_and_status_word() -> None:
    resp = ResponseApdu.decode(h("9F360200069000"))
    assert resp.data == h("9F36020006")
    assert resp.sw == SW.OK == 0x9000
    assert resp.ok
    assert (resp.sw1, resp.sw2) == (0x90, 0x00)
    assert resp.encode() == h("9F360200069000")


def test_status_word_only_response() -> None:
    resp = ResponseApdu.decode(h("6A83"))
    assert resp.data == b""
    assert resp.sw == SW.RECORD_NOT_FOUND
    assert not resp.ok
    assert str(resp) == " 6A83 (record not found)"


@pytest.mark.parametrize("raw", ["", "90"])
def test_response_without_status_word_raises(raw: str) -> None:
    with pytest.raises(ApduError, match="has no status word"):
        ResponseApdu.decode(h(raw))


def test_response_str_shows_data_sw_and_meaning() -> None:
    assert str(ResponseApdu(h("9F1301"), 0x9000)) == "9F1301 9000 (success)"


# --- status words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sw", "meaning"),
    [
        (0x9000, "success"),
        (0x6283, "selected file invalidated (application blocked)"),
        (0x6300, "authentication failed"),
        (0x6700, "wrong length"),
        (0x6982, "security status not satisfied"),
        (0x6983, "authentication method blocked"),
        (0x6984, "referenced data invalidated"),
        (0x6985, "conditions of use not satisfied"),
        (0x6986, "command not allowed"),
        (0x6988, "secure messaging data objects incorrect"),
        (0x6A80, "incorrect data field"),
        (0x6A81, "function not supported"),
        (0x6A82, "file or application not found"),
        (0x6A83, "record not found"),
        (0x6A86, "incorrect P1/P2"),
        (0x6A88, "referenced data not found"),
        (0x6B00, "wrong P1/P2"),
        (0x6D00, "instruction not supported"),
        (0x6E00, "class not supported"),
        (0x6F00, "no precise diagnosis"),
    ],
)
def test_status_word_table(sw: int, meaning: str) -> None:
    assert status_meaning(sw) == meaning


@pytest.mark.parametrize(
    ("sw", "meaning"),
    [
        (0x6110, "16 response bytes still available (GET RESPONSE)"),
        (0x61FF, "255 response bytes still available (GET RESPONSE)"),
        (0x6100, "256 response bytes still available (GET RESPONSE)"),  # SW2 00 = 256
        (0x6C1A, "wrong Le: resend with Le=26"),
        (0x6C00, "wrong Le: resend with Le=256"),
        (0x63C2, "verification failed, 2 tries left"),
        (0x63C0, "verification failed, 0 tries left"),
        (0x63CF, "verification failed, 15 tries left"),
    ],
)
def test_status_word_families_61xx_6cxx_63cx(sw: int, meaning: str) -> None:
    assert status_meaning(sw) == meaning


@pytest.mark.parametrize("sw", [0x6390, 0x1234, 0x9001, 0x6A00])
def test_other_status_words_are_unknown(sw: int) -> None:
    assert status_meaning(sw) == "unknown status"


def test_every_named_status_word_has_a_meaning() -> None:
    named = {k: v for k, v in vars(SW).items() if k.isupper()}
    assert len(named) >= 20
    for name, sw in named.items():
        assert status_meaning(sw) != "unknown status", name
