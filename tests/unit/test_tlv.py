"""BER-TLV as EMV uses it (EMV 4.4 Book 3, Annex B), against the spec's rules and real card
answers from the recorded traces in tests/data/traces."""

from __future__ import annotations

import json
import random

import pytest
from data_files import trace_path

from emvtap.tlv import (
    BadLength,
    BadTag,
    LengthPastEnd,
    NestingTooDeep,
    Tlv,
    TlvError,
    TruncatedLength,
    TruncatedTag,
    decode,
    encode,
    encode_length,
    find,
    find_all,
    flatten,
    tag_bytes,
    tag_hex,
)

h = bytes.fromhex


TRACE_FILES = [
    "01_applepay_visa_qvsdc_fdda_pm3sniff.json",
    "04_mastercard_paypass_testcard_cda_genac.json",
    "05_unionpay_pboc_testcard_contact_full.json",
]


def _responses() -> list[tuple[str, bytes]]:
    """(label, response data without SW) of every card answer in the traces that has data."""
    out: list[tuple[str, bytes]] = []
    for name in TRACE_FILES:
        for i, apdu in enumerate(json.loads(trace_path(name).read_text())["apdus"]):
            data = h(apdu["r"])[:-2]
            if data:
                out.append((f"{name[:2]}#{i}", data))
    return out


RESPONSES = _responses()


# --- order and repeated tags ---------------------------------------------------------------


def _entry(aid: str, label: bytes, priority: int) -> Tlv:
    return Tlv.template(0x61, [
        Tlv.primitive(0x4F, h(aid)), Tlv.primitive(0x50, label),
        Tlv.primitive(0x87, bytes([priority])),
    ])


def test_ppse_answer_with_three_directory_entries_keeps_all_three_in_order() -> None:
    # 6F { 84 "2PAY.SYS.DDF01", A5 { BF0C { 61 61 61 } } } - Book 3 Annex B: a parser must keep
    # every 61 (the entries are those of the UnionPay PSE records in trace 05).
    raw = (
        "6F6D840E325041592E5359532E4444463031A55BBF0C58"
        "611A4F08A000000333010102500B5549434320435245444954870101"
        "61194F08A000000333010101500A55494343204445424954870102"
        "611F4F08A000000333010103501055494343205155415349435245444954870103"
    )
    [fci] = decode(h(raw))
    entries = fci.find_all(0x61)
    assert [e.find(0x4F).value.hex().upper() for e in entries] == [
        "A000000333010102", "A000000333010101", "A000000333010103",
    ]
    assert [e.find(0x87).value for e in entries] == [b"\x01", b"\x02", b"\x03"]
    assert [e.find(0x50).value for e in entries] == [b"UICC CREDIT", b"UICC DEBIT",
                                                      b"UICC QUASICREDIT"]
    assert fci.encode() == h(raw)


def test_ppse_answer_built_from_templates_decodes_to_the_same_objects() -> None:
    entries = [_entry("A000000333010101", b"DEBIT", 1), _entry("A000000333010102", b"CREDIT", 2),
               _entry("A000000333010106", b"EC", 3)]
    fci = Tlv.template(0x6F, [
        Tlv.primitive(0x84, b"2PAY.SYS.DDF01"),
        Tlv.template(0xA5, [Tlv.template(0xBF0C, entries)]),
    ])
    assert decode(fci.encode()) == [fci]
    assert find_all([fci], 0x61) == entries


def test_script_template_71_keeps_every_86_command_in_order() -> None:
    # Book 3 10.10: one 71 template, a 9F18 script ID and three 86 commands.
    commands = [h("841E000004A1B2C3D4"), h("8418000004E5F60718"), h("8424000004DEADBEEF")]
    script = Tlv.template(0x71, [Tlv.primitive(0x9F18, h("00000001")),
                                 *(Tlv.primitive(0x86, c) for c in commands)])
    raw = script.encode()
    assert raw[:2] == h("7128")  # 7 + 3 x 11 bytes
    [decoded] = decode(raw)
    assert [t.tag for t in decoded.children] == [0x9F18, 0x86, 0x86, 0x86]
    assert [t.value for t in decoded.find_all(0x86)] == commands


def test_two_script_templates_71_and_72_side_by_side_stay_separate() -> None:
    raw = h("710B9F1804000000018602AABB" "72079F180400000002" "71048602CCDD")
    tlvs = decode(raw)
    assert [t.tag for t in tlvs] == [0x71, 0x72, 0x71]
    assert [t.value for t in find_all(tlvs, 0x86)] == [h("AABB"), h("CCDD")]
    assert encode(tlvs) == raw


# --- tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("5A021234", 0x5A),  # one-byte tag
        ("9F02020100", 0x9F02),  # two bytes: low 5 bits of the first are 11111
        ("5F2A020978", 0x5F2A),
        ("BF0C00", 0xBF0C),  # constructed two-byte tag
        ("DF812901FF", 0xDF8129),  # three bytes: b8 of the second says "another follows"
        ("9F7F0100", 0x9F7F),
    ],
)
def test_multi_byte_tags_decode_to_their_integer_value(raw: str, tag: int) -> None:
    [t] = decode(h(raw))
    assert t.tag == tag
    assert t.encode() == h(raw)


@pytest.mark.parametrize(("tag", "wire"), [(0x5A, "5A"), (0x9F02, "9F02"), (0xDF8129, "DF8129")])
def test_tag_bytes_and_tag_hex_are_the_wire_form(tag: int, wire: str) -> None:
    assert tag_bytes(tag) == h(wire)
    assert tag_hex(tag) == wire


def test_negative_tag_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative tag"):
        tag_bytes(-1)


# --- lengths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "wire"),
    [
        (0, "00"),
        (0x7F, "7F"),  # largest short form
        (0x80, "8180"),  # smallest 81 form
        (0xFF, "81FF"),
        (0x100, "820100"),  # smallest 82 form
        (0xFFFF, "82FFFF"),
        (0x10000, "83010000"),  # smallest 83 form
    ],
)
def test_length_forms_short_81_82_83(length: int, wire: str) -> None:
    assert encode_length(length) == h(wire)
    value = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    raw = h("9F10") + h(wire) + value
    [t] = decode(raw)
    assert t.value == value
    assert t.encode() == raw


def test_length_beyond_three_bytes_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="too large"):
        encode_length(0x1000000)


def test_long_form_that_could_be_short_is_accepted_and_re_encoded_minimally() -> None:
    # X.690 allows a non-minimal long form; EMV cards send 81 xx for lengths below 128.
    [t] = decode(h("5A8102AB12"))
    assert t.value == h("AB12")
    assert t.encode() == h("5A02AB12")


# --- padding -------------------------------------------------------------------------------


def test_00_and_ff_between_objects_are_padding_and_skipped() -> None:
    # Book 3 Annex B: 00 and FF may appear before, between and after data objects.
    raw = h("00" "5A021234" "FFFF" "9F020100" "0000")
    tlvs = decode(raw)
    assert [(t.tag, t.value) for t in tlvs] == [(0x5A, h("1234")), (0x9F02, h("00"))]


def test_padding_inside_a_template_is_skipped_and_kept_in_its_value() -> None:
    raw = h("700A" "00" "5A021234" "FF" "9F0201AA")
    [rec] = decode(raw)
    assert [t.tag for t in rec.children] == [0x5A, 0x9F02]
    assert rec.value == raw[2:]
    assert rec.encode() == raw  # the template's bytes are served as they came


def test_only_padding_decodes_to_nothing() -> None:
    assert decode(h("0000FF00")) == []
    assert decode(b"") == []


# --- constructed and primitive -------------------------------------------------------------


def test_constructed_tags_have_children_primitive_tags_do_not() -> None:
    [rec] = decode(h("7009" "5F24031412319C0100"))
    assert rec.constructed
    assert [t.tag for t in rec.children] == [0x5F24, 0x9C]
    assert not rec.children[0].constructed
    assert rec.children[0].children is None


def test_primitive_value_that_looks_like_tlv_is_not_parsed() -> None:
    # 9F10 is primitive (b6 of 9F is 0): its value stays opaque bytes even when TLV-shaped.
    [iad] = decode(h("9F1004" "5A021234"))
    assert iad.children is None
    assert iad.value == h("5A021234")


def test_empty_template_is_constructed_with_no_children() -> None:
    [t] = decode(h("7000"))
    assert t.constructed
    assert t.children == ()


def test_constructed_bit_of_a_two_byte_tag_is_in_its_first_byte() -> None:
    [fci] = decode(h("BF0C045F2D0165"))
    assert fci.constructed
    assert fci.children == (Tlv.primitive(0x5F2D, b"e"),)


def test_template_value_is_the_encoding_of_its_children() -> None:
    t = Tlv.template(0x77, [Tlv.primitive(0x82, h("3C00")), Tlv.primitive(0x94, h("08010100"))])
    assert t.value == h("82023C00940408010100")
    assert t.encode() == h("770A82023C00940408010100")


# --- look-ups ------------------------------------------------------------------------------


def test_find_is_depth_first_in_order_and_flatten_keeps_the_first() -> None:
    tlvs = decode(h("70075A01119F0201AA" "5A0122" "77035A0133"))
    assert find(tlvs, 0x5A).value == h("11")
    assert [t.value for t in find_all(tlvs, 0x5A)] == [h("11"), h("22"), h("33")]
    assert find(tlvs, 0x9F37) is None
    assert flatten(tlvs) == {0x5A: h("11"), 0x9F02: h("AA")}
    assert tlvs[2].find(0x5A).value == h("33")


# --- round trips on real card answers ------------------------------------------------------


@pytest.mark.parametrize(("label", "data"), RESPONSES, ids=[r[0] for r in RESPONSES])
def test_every_card_answer_in_the_traces_round_trips(label: str, data: bytes) -> None:
    tlvs = decode(data)
    assert tlvs, label
    assert encode(tlvs) == data


def test_visa_gpo_answer_keeps_its_objects_in_card_order() -> None:
    gpo = next(d for label, d in RESPONSES if label == "01#2")
    [tmpl] = decode(gpo)
    assert tmpl.tag == 0x77
    assert len(tmpl.value) == 0xE6  # 77 81 E6: a two-byte length
    assert [t.tag for t in tmpl.children] == [
        0x82, 0x94, 0x9F36, 0x9F26, 0x9F10, 0x9F4B, 0x9F6C, 0x57, 0x9F6E, 0x9F27,
    ]
    assert tmpl.find(0x94).value == h("18010300")
    assert len(tmpl.find(0x9F4B).value) == 0x80


# --- malformed input: one error class per fault --------------------------------------------


@pytest.mark.parametrize(
    ("raw", "error", "offset"),
    [
        ("9F", TruncatedTag, 0),  # ends after a first byte announcing more
        ("5A0211229F", TruncatedTag, 4),
        ("DF81", TruncatedTag, 0),  # ends inside a three-byte tag
        ("70029F8101", TruncatedTag, 2),  # the tag runs past the end of its template
        ("5A", TruncatedLength, 1),  # no length at all
        ("9F02", TruncatedLength, 2),
        ("5A81", TruncatedLength, 1),  # 81 with no length byte
        ("5A8201", TruncatedLength, 1),  # 82 with one of two
        ("5A830100", TruncatedLength, 1),  # 83 with two of three
        ("5A0811223344", LengthPastEnd, 0),
        ("5A8180" + "00" * 0x7F, LengthPastEnd, 0),
        ("70055A081122334455", LengthPastEnd, 2),  # inner object past its template's end
        ("7003" "5A0211" "22", LengthPastEnd, 2),
        ("9F800100", BadTag, 1),  # first subsequent byte 80: leading zero bits
        ("1F8181810100", BadTag, 0),  # a five-byte tag
        ("7080" "5A0211220000", BadLength, 1),  # indefinite length form
        ("5A84000000011122", BadLength, 1),  # four length bytes
        ("5A8F", BadLength, 1),
    ],
)
def test_malformed_input_raises_its_specific_error(raw: str, error: type[TlvError],
                                                   offset: int) -> None:
    with pytest.raises(error) as info:
        decode(h(raw))
    assert info.value.offset == offset
    assert f"at offset {offset}" in str(info.value)


@pytest.mark.parametrize(
    "error", [TruncatedTag, BadTag, TruncatedLength, BadLength, LengthPastEnd, NestingTooDeep]
)
def test_every_tlv_error_is_a_tlverror_and_a_valueerror(error: type[TlvError]) -> None:
    assert issubclass(error, TlvError)
    assert issubclass(error, ValueError)


def _nested(depth: int) -> bytes:
    raw = h("5A0111")
    for _ in range(depth):
        raw = bytes([0x70]) + encode_length(len(raw)) + raw
    return raw


def test_sixteen_nested_templates_decode() -> None:
    [outer] = decode(_nested(16))
    assert outer.find(0x5A).value == h("11")


def test_templates_nested_too_deep_are_rejected() -> None:
    with pytest.raises(NestingTooDeep, match="nested deeper"):
        decode(_nested(17))
    with pytest.raises(NestingTooDeep):
        decode(_nested(300))  # hostile input, far deeper than any EMV object


def test_truncated_length_message_says_what_was_wrong() -> None:
    with pytest.raises(LengthPastEnd, match="tag 5A says 8 bytes, only 2 remain"):
        decode(h("5A081122"))


# --- robustness: random, truncated and oversized input -------------------------------------


def _decode_or_error(data: bytes) -> list[Tlv] | None:
    """Decode, or return None on a TlvError with a sane offset; anything else propagates."""
    try:
        tlvs = decode(data)
    except TlvError as exc:
        assert 0 <= exc.offset <= len(data), (data.hex(), exc)
        return None
    # whatever decodes must re-encode to something that decodes to the same objects
    assert decode(encode(tlvs)) == tlvs, data.hex()
    return tlvs


def test_500_seeded_random_inputs_raise_only_tlv_errors() -> None:
    rng = random.Random(20240601)
    decoded = failed = 0
    for _ in range(500):
        n = rng.randrange(0, 48)
        # bias towards EMV-looking bytes so that deeper paths are exercised
        alphabet = [0x00, 0x1F, 0x5A, 0x70, 0x77, 0x80, 0x81, 0x82, 0x83, 0x9F, 0xBF, 0xFF]
        data = bytes(rng.choice(alphabet) if rng.random() < 0.4 else rng.randrange(256)
                     for _ in range(n))
        if _decode_or_error(data) is None:
            failed += 1
        else:
            decoded += 1
    assert failed > 100 and decoded > 5  # both outcomes are actually exercised


def test_every_truncation_of_a_card_answer_raises_a_tlv_error() -> None:
    # A READ RECORD answer is one 70 template: any strict prefix cuts it short.
    count = 0
    for _label, data in RESPONSES:
        [_] = decode(data)
        for cut in range(1, len(data)):
            with pytest.raises(TlvError):
                decode(data[:cut])
            count += 1
    assert count > 500


def test_oversized_lengths_in_card_answers_raise_length_past_end() -> None:
    for label, data in RESPONSES:
        [outer] = decode(data)
        for extra in (1, 0x80, 0xFFFF):  # one more byte, and lengths in the 81/82/83 forms
            bad = tag_bytes(outer.tag) + encode_length(len(outer.value) + extra) + outer.value
            with pytest.raises(LengthPastEnd) as info:
                decode(bad)
            assert info.value.offset == 0, label


def test_seeded_mutations_of_card_answers_raise_only_tlv_errors() -> None:
    rng = random.Random(7)
    for _ in range(500):
        _label, data = rng.choice(RESPONSES)
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if rng.random() < 0.3:
            mutated += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        _decode_or_error(bytes(mutated))
