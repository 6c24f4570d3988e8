"""Data Object Lists (EMV 4.4 Book 3, 5.4) and the Application File Locator (Book 3, 10.2),
against the PDOL/CDOL/DDOL values and the command data of real transactions."""

from __future__ import annotations

import json
import random

import pytest
from data_files import trace_path

from emvtap.apdu import CommandApdu
from emvtap.dol import (
    AflEntry,
    AflError,
    DolEntry,
    build_dol_data,
    encode_dol,
    parse_afl,
    parse_dol,
    split_dol_data,
)
from emvtap.tlv import (
    BadLength,
    BadTag,
    TlvError,
    TruncatedLength,
    TruncatedTag,
    decode,
    flatten,
)

h = bytes.fromhex


class Trace:
    """One recorded transaction: its commands and the card's answers (data without SW)."""

    def __init__(self, name: str) -> None:
        apdus = json.loads(trace_path(name).read_text())["apdus"]
        self.commands = [CommandApdu.decode(h(a["c"])) for a in apdus]
        self.answers = [h(a["r"])[:-2] for a in apdus]
        self.card: dict[int, bytes] = {}
        for data in self.answers:
            try:
                objects = flatten(decode(data))
            except TlvError:
                continue
            for tag, value in objects.items():
                self.card.setdefault(tag, value)

    def command(self, ins: int, p1: int | None = None) -> CommandApdu:
        return next(c for c in self.commands if c.ins == ins and (p1 is None or c.p1 == p1))


VISA = Trace("01_applepay_visa_qvsdc_fdda_pm3sniff.json")
MASTERCARD = Trace("04_mastercard_paypass_testcard_cda_genac.json")
UNIONPAY = Trace("05_unionpay_pboc_testcard_contact_full.json")


# --- PDOL: Visa qVSDC (Apple Pay) ----------------------------------------------------------


def test_visa_pdol_from_the_select_answer_parses_into_its_ten_entries() -> None:
    pdol = VISA.card[0x9F38]
    assert pdol == h("9F66049F02069F03069F1A0295055F2A029A039C019F37049F4E14")
    assert parse_dol(pdol) == [
        DolEntry(0x9F66, 4), DolEntry(0x9F02, 6), DolEntry(0x9F03, 6), DolEntry(0x9F1A, 2),
        DolEntry(0x95, 5), DolEntry(0x5F2A, 2), DolEntry(0x9A, 3), DolEntry(0x9C, 1),
        DolEntry(0x9F37, 4), DolEntry(0x9F4E, 20),
    ]
    assert encode_dol(parse_dol(pdol)) == pdol


def test_visa_gpo_data_splits_into_the_terminal_values() -> None:
    [template_83] = decode(VISA.command(0xA8).data)
    assert template_83.tag == 0x83
    values = split_dol_data(VISA.card[0x9F38], template_83.value)
    assert values == {
        0x9F66: h("33804000"), 0x9F02: h("000000000100"), 0x9F03: h("000000000000"),
        0x9F1A: h("0826"), 0x95: h("0000000000"), 0x5F2A: h("0826"), 0x9A: h("211014"),
        0x9C: h("00"), 0x9F37: h("0EB0F616"), 0x9F4E: bytes(20),
    }


def test_visa_gpo_data_is_rebuilt_byte_for_byte_from_the_terminal_values() -> None:
    [template_83] = decode(VISA.command(0xA8).data)
    values = {  # as a terminal holds them; 9F4E is absent and gets zero-filled
        0x9F66: h("33804000"), 0x9F02: h("000000000100"), 0x9F03: h("000000000000"),
        0x9F1A: h("0826"), 0x95: h("0000000000"), 0x5F2A: h("0826"), 0x9A: h("211014"),
        0x9C: h("00"), 0x9F37: h("0EB0F616"),
    }
    assert build_dol_data(VISA.card[0x9F38], values) == template_83.value


# --- CDOL1 / CDOL2: Mastercard M/Chip (CDA) and UnionPay PBOC contact -----------------------


def test_mastercard_cdol1_and_cdol2_from_the_record_parse() -> None:
    assert [(e.tag, e.length) for e in parse_dol(MASTERCARD.card[0x8C])] == [
        (0x9F02, 6), (0x9F03, 6), (0x9F09, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1),
        (0x9F37, 4), (0x9F35, 1), (0x9F45, 2), (0x9F4C, 8), (0x9F34, 3),
    ]
    assert [(e.tag, e.length) for e in parse_dol(MASTERCARD.card[0x8D])] == [
        (0x91, 10), (0x8A, 2), (0x95, 5), (0x9F37, 4), (0x9F4C, 8),
    ]


def test_mastercard_generate_ac_data_is_the_cdol1_values() -> None:
    genac = MASTERCARD.command(0xAE)
    assert genac.p1 == 0x50  # TC with CDA
    values = split_dol_data(MASTERCARD.card[0x8C], genac.data)
    assert values[0x9F02] == h("000000010001")
    assert values[0x9F37] == h("000EEC85")
    assert values[0x9F34] == h("5E0300")
    assert build_dol_data(MASTERCARD.card[0x8C], values) == genac.data


def test_unionpay_cdol1_cdol2_and_ddol_match_the_three_commands() -> None:
    cdol1, cdol2, ddol = UNIONPAY.card[0x8C], UNIONPAY.card[0x8D], UNIONPAY.card[0x9F49]
    first, second = UNIONPAY.command(0xAE, 0x80), UNIONPAY.command(0xAE, 0x40)
    internal_authenticate = UNIONPAY.command(0x88)
    v1 = split_dol_data(cdol1, first.data)
    v2 = split_dol_data(cdol2, second.data)
    assert v1[0x9F02] == v2[0x9F02] == h("000000006580")
    assert v1[0x9F37] == v2[0x9F37] == h("3510540E")  # the same transaction
    assert v1[0x95] == h("0000008000") and v2[0x95] == h("0000008040")
    assert v2[0x8A] == b"00"  # approved online: ARC in CDOL2
    assert v2[0x9B] == h("F800")
    assert split_dol_data(ddol, internal_authenticate.data) == {0x9F37: h("7863AFC6")}
    assert build_dol_data(cdol1, v1) == first.data
    assert build_dol_data(cdol2, v2) == second.data


def test_dol_may_be_given_as_entries() -> None:
    entries = parse_dol(UNIONPAY.card[0x8D])
    data = UNIONPAY.command(0xAE, 0x40).data
    assert split_dol_data(entries, data) == split_dol_data(UNIONPAY.card[0x8D], data)


# --- building: Book 3 5.4 padding and truncation -------------------------------------------


@pytest.mark.parametrize(
    ("dol", "value", "expected"),
    [
        # numeric (n): leading zeros, leftmost digits truncated
        ("9F0206", "0100", "000000000100"),
        ("9F0204", "000000012345", "00012345"),
        ("5F2A02", "09", "0009"),
        # compressed numeric (cn): trailing F, truncated on the right
        ("5A0A", "6228480123456789", "6228480123456789FFFF"),
        ("5A06", "6228480123456789", "622848012345"),
        # binary and text: trailing zeros, truncated on the right
        ("9F3706", "0EB0F616", "0EB0F6160000"),
        ("9F3702", "0EB0F616", "0EB0"),
        ("9F4E08", "53484F50", "53484F5000000000"),
        ("9F6602", "33804000", "3380"),
        # exact length: as it is
        ("9F1A02", "0156", "0156"),
        # a tag outside the dictionary is binary
        ("DF7F03", "AA", "AA0000"),
    ],
)
def test_values_are_fitted_to_the_dol_length(dol: str, value: str, expected: str) -> None:
    [entry] = parse_dol(h(dol))
    assert build_dol_data(h(dol), {entry.tag: h(value)}) == h(expected)


def test_tags_without_a_value_are_zero_filled() -> None:
    assert build_dol_data(h("9F37049F7A019F0206"), {0x9F37: h("01020304")}) == h(
        "01020304" "00" "000000000000")


def test_constructed_tags_are_zero_filled_even_with_a_value() -> None:
    # Book 3 5.4: a DOL entry for a constructed object is filled with zeros.
    assert build_dol_data(h("7003" "9F3702"), {0x70: h("5A01AA"), 0x9F37: h("BEEF")}) == h(
        "000000" "BEEF")


def test_zero_length_entries_contribute_nothing() -> None:
    assert build_dol_data(h("9F0200" "5A00" "9F3702"),
                          {0x9F02: h("000000000100"), 0x5A: h("6228"), 0x9F37: h("BEEF")}) == h(
        "BEEF")


def test_empty_dol_gives_empty_data() -> None:
    assert parse_dol(b"") == []
    assert build_dol_data(b"", {0x9F37: h("01020304")}) == b""
    assert split_dol_data(b"", b"") == {}


def test_built_data_always_has_the_length_the_dol_asks_for() -> None:
    rng = random.Random(5)
    tags = [0x9F02, 0x9F03, 0x5A, 0x9F37, 0x9F4E, 0x95, 0x9C, 0xDF7F, 0x9F66]
    for _ in range(200):
        entries = [DolEntry(rng.choice(tags), rng.randrange(0, 40)) for _ in range(4)]
        values = {t: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
                  for t in tags if rng.random() < 0.7}
        data = build_dol_data(entries, values)
        assert len(data) == sum(e.length for e in entries)
        assert build_dol_data(encode_dol(entries), values) == data


# --- splitting: the card's side ------------------------------------------------------------


@pytest.mark.parametrize("delta", [-1, +1, -53])
def test_data_of_the_wrong_length_is_rejected(delta: int) -> None:
    pdol = VISA.card[0x9F38]
    data = bytes(53 + delta)
    with pytest.raises(ValueError, match=f"DOL data is {53 + delta} bytes, the DOL asks for 53"):
        split_dol_data(pdol, data)


# --- malformed DOLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dol", "error"),
    [
        ("9F", TruncatedTag),  # ends inside the tag
        ("9F6604" "9F", TruncatedTag),
        ("9F02", TruncatedLength),  # a tag with no length
        ("9F0281", TruncatedLength),
        ("9F8004", BadTag),
        ("9F0280", BadLength),  # indefinite length
        ("9F028400000006", BadLength),
    ],
)
def test_malformed_dol_raises_a_tlv_error(dol: str, error: type[TlvError]) -> None:
    with pytest.raises(error):
        parse_dol(h(dol))
    with pytest.raises(error):
        build_dol_data(h(dol), {})
    with pytest.raises(error):
        split_dol_data(h(dol), b"")


def test_random_dols_parse_or_raise_only_tlv_errors() -> None:
    rng = random.Random(1505)
    parsed = 0
    for _ in range(500):
        dol = bytes(rng.choice([0x9F, 0x5F, 0x81, 0x80, 0x83, 0x02, 0x04]) if rng.random() < 0.3
                    else rng.randrange(256) for _ in range(rng.randrange(0, 16)))
        try:
            entries = parse_dol(dol)
        except TlvError:
            continue
        parsed += 1
        total = sum(e.length for e in entries)
        if total <= 4096:
            data = build_dol_data(dol, {})
            assert data == bytes(total)
            assert set(split_dol_data(dol, data)) == {e.tag for e in entries}
    assert parsed > 50


# --- AFL (Book 3, 10.2) --------------------------------------------------------------------


def test_visa_afl_from_the_gpo_answer() -> None:
    assert parse_afl(VISA.card[0x94]) == [AflEntry(3, 1, 3, 0)]


def test_mastercard_afl_has_one_oda_record() -> None:
    afl = parse_afl(MASTERCARD.card[0x94])
    assert afl == [AflEntry(1, 1, 1, 0), AflEntry(2, 1, 1, 1), AflEntry(3, 1, 2, 0),
                   AflEntry(4, 1, 2, 0)]
    assert [(e.sfi, r) for e in afl for r in e.records() if e.is_oda(r)] == [(2, 1)]


def test_unionpay_format_1_gpo_answer_carries_aip_then_afl() -> None:
    [gpo] = decode(UNIONPAY.answers[UNIONPAY.commands.index(UNIONPAY.command(0xA8))])
    assert gpo.tag == 0x80
    aip, afl = gpo.value[:2], gpo.value[2:]
    assert aip == h("7C00")
    entries = parse_afl(afl)
    assert entries == [AflEntry(1, 1, 3, 0), AflEntry(2, 1, 5, 1), AflEntry(4, 1, 1, 0)]
    assert list(entries[1].records()) == [1, 2, 3, 4, 5]
    assert entries[1].is_oda(1) and not entries[1].is_oda(2)
    # every record the AFL names was read with READ RECORD (P2 = SFI<<3 | 4)
    read = {(c.p2 >> 3, c.p1) for c in UNIONPAY.commands if c.ins == 0xB2 and c.p2 & 7 == 4}
    assert {(e.sfi, r) for e in entries for r in e.records()} <= read


def test_afl_boundaries_are_accepted() -> None:
    assert parse_afl(h("F001FFFF")) == [AflEntry(30, 1, 255, 255)]  # SFI 30, ODA = whole range
    assert parse_afl(h("08050500")) == [AflEntry(1, 5, 5, 0)]


@pytest.mark.parametrize(
    ("afl", "message"),
    [
        ("080101", "AFL length 3 is not a multiple of 4"),
        ("0801010010", "AFL length 5 is not a multiple of 4"),
        ("00010100", "AFL entry 1: bad SFI byte 00"),  # SFI 0
        ("F8010100", "AFL entry 1: bad SFI byte F8"),  # SFI 31
        ("08010100" "09010100", "AFL entry 2: bad SFI byte 09"),  # low bits not 000
        ("08000100", "AFL entry 1: bad record range 0..1"),  # first record 0
        ("08030200", "AFL entry 1: bad record range 3..2"),  # last before first
        ("08010203", "AFL entry 1: 3 ODA records in a range of 2"),
    ],
)
def test_bad_afl_raises_afl_error(afl: str, message: str) -> None:
    with pytest.raises(AflError) as info:
        parse_afl(h(afl))
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_random_afls_parse_or_raise_only_afl_errors() -> None:
    rng = random.Random(94)
    parsed = 0
    for _ in range(500):
        afl = bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 4, 4, 8, 8, 12])))
        try:
            entries = parse_afl(afl)
        except AflError:
            continue
        parsed += 1
        for e in entries:
            assert e.sfi in range(1, 31) and 1 <= e.first_record <= e.last_record
            assert 0 <= e.oda_records <= len(e.records())
    assert parsed > 5
