"""The EMV data dictionary (Book 3 Annex A, Contactless C-3/C-7, JR/T 0025) and the
pretty-printer of decoded TLV."""

from __future__ import annotations

import json

import pytest
from data_files import traces_dir

from emvtap.masking import mask_tag_value
from emvtap.tags import SENSITIVE_TAGS, TAGS, pretty, tag_name
from emvtap.tlv import Tlv, decode, is_constructed, tag_hex

h = bytes.fromhex


#: the data elements the kernel, the card and the switch exchange, with the name the spec
#: gives and its format (b binary, n numeric, cn compressed numeric, an/ans text, t template).
KERNEL_TAGS = [
    (0x4F, "Application Identifier (AID)", "b"),
    (0x50, "Application Label", "ans"),
    (0x57, "Track 2 Equivalent Data", "b"),
    (0x5A, "Application PAN", "cn"),
    (0x5F20, "Cardholder Name", "ans"),
    (0x5F24, "Application Expiration Date", "n"),
    (0x5F25, "Application Effective Date", "n"),
    (0x5F28, "Issuer Country Code", "n"),
    (0x5F2A, "Transaction Currency Code", "n"),
    (0x5F34, "Application PAN Sequence Number", "n"),
    (0x61, "Application Template", "t"),
    (0x6F, "File Control Information (FCI) Template", "t"),
    (0x70, "READ RECORD Response Message Template", "t"),
    (0x71, "Issuer Script Template 1", "t"),
    (0x72, "Issuer Script Template 2", "t"),
    (0x77, "Response Message Template Format 2", "t"),
    (0x80, "Response Message Template Format 1", "b"),
    (0x82, "Application Interchange Profile", "b"),
    (0x84, "Dedicated File (DF) Name", "b"),
    (0x86, "Issuer Script Command", "b"),
    (0x87, "Application Priority Indicator", "b"),
    (0x8A, "Authorisation Response Code", "an"),
    (0x8C, "CDOL1", "b"),
    (0x8D, "CDOL2", "b"),
    (0x8E, "CVM List", "b"),
    (0x8F, "Certification Authority Public Key Index", "b"),
    (0x90, "Issuer Public Key Certificate", "b"),
    (0x91, "Issuer Authentication Data", "b"),
    (0x92, "Issuer Public Key Remainder", "b"),
    (0x93, "Signed Static Application Data", "b"),
    (0x94, "Application File Locator (AFL)", "b"),
    (0x95, "Terminal Verification Results", "b"),
    (0x9A, "Transaction Date", "n"),
    (0x9B, "Transaction Status Information", "b"),
    (0x9C, "Transaction Type", "n"),
    (0xA5, "FCI Proprietary Template", "t"),
    (0xBF0C, "FCI Issuer Discretionary Data", "t"),
    (0x9F02, "Amount, Authorised (Numeric)", "n"),
    (0x9F03, "Amount, Other (Numeric)", "n"),
    (0x9F10, "Issuer Application Data", "b"),
    (0x9F18, "Issuer Script Identifier", "b"),
    (0x9F1A, "Terminal Country Code", "n"),
    (0x9F26, "Application Cryptogram", "b"),
    (0x9F27, "Cryptogram Information Data", "b"),
    (0x9F2A, "Kernel Identifier", "b"),
    (0x9F32, "Issuer Public Key Exponent", "b"),
    (0x9F33, "Terminal Capabilities", "b"),
    (0x9F34, "Cardholder Verification Method (CVM) Results", "b"),
    (0x9F35, "Terminal Type", "n"),
    (0x9F36, "Application Transaction Counter (ATC)", "b"),
    (0x9F37, "Unpredictable Number", "b"),
    (0x9F38, "Processing Options Data Object List (PDOL)", "b"),
    (0x9F46, "ICC Public Key Certificate", "b"),
    (0x9F47, "ICC Public Key Exponent", "b"),
    (0x9F48, "ICC Public Key Remainder", "b"),
    (0x9F49, "Dynamic Data Authentication Data Object List (DDOL)", "b"),
    (0x9F4A, "Static Data Authentication Tag List", "b"),
    (0x9F4B, "Signed Dynamic Application Data", "b"),
    (0x9F4C, "ICC Dynamic Number", "b"),
    (0x9F5B, "Issuer Script Results", "b"),
    (0x9F66, "Terminal Transaction Qualifiers (TTQ)", "b"),
    (0x9F69, "Card Authentication Related Data", "b"),
    (0x9F6C, "Card Transaction Qualifiers (CTQ)", "b"),
]


@pytest.mark.parametrize(("tag", "name", "fmt"), KERNEL_TAGS,
                         ids=[tag_hex(t) for t, _, _ in KERNEL_TAGS])
def test_kernel_tags_have_their_spec_name_and_format(tag: int, name: str, fmt: str) -> None:
    assert TAGS[tag].name == name
    assert TAGS[tag].fmt == fmt
    assert tag_name(tag) == name


def test_unknown_tag_is_named_unknown() -> None:
    assert 0xDF7F not in TAGS
    assert tag_name(0xDF7F) == "unknown"


@pytest.mark.parametrize("tag", sorted(TAGS), ids=[tag_hex(t) for t in sorted(TAGS)])
def test_templates_and_only_templates_are_constructed_tags(tag: int) -> None:
    # Book 3 Annex B: b6 of the first tag byte says constructed; the dictionary's "t" format
    # must agree with it, or the decoder and the printer disagree about the same object.
    assert is_constructed(tag) == (TAGS[tag].fmt == "t"), TAGS[tag]


def test_formats_are_the_spec_letters() -> None:
    assert {info.fmt for info in TAGS.values()} <= {"a", "an", "ans", "b", "n", "cn", "t"}


def _trace_tags() -> set[int]:
    tags: set[int] = set()

    def walk(tlvs: list[Tlv]) -> None:
        for t in tlvs:
            tags.add(t.tag)
            if t.children:
                walk(list(t.children))

    for path in sorted(traces_dir().glob("*.json")):
        for apdu in json.loads(path.read_text())["apdus"]:
            data = h(apdu["r"])[:-2]
            if data:
                walk(decode(data))
    return tags


#: proprietary tags the trace cards carry that no public dictionary names.
PROPRIETARY = {0xBF63, 0xDF20, 0xDF4F}


def test_every_standard_tag_in_the_real_traces_has_a_name() -> None:
    tags = _trace_tags()
    assert len(tags) > 40
    missing = sorted(tag_hex(t) for t in tags - PROPRIETARY if t not in TAGS)
    assert missing == []


@pytest.mark.parametrize("tag", [0x5A, 0x57, 0x5F20, 0x56, 0x9F1F, 0x9F20, 0x9F6B, 0x9F61])
def test_sensitive_tags_cover_pan_track_data_and_names(tag: int) -> None:
    assert tag in SENSITIVE_TAGS


@pytest.mark.parametrize("tag", [0x82, 0x94, 0x9F02, 0x9F26, 0x9F36, 0x9F10, 0x5F34, 0x5F24])
def test_transaction_data_is_not_sensitive(tag: int) -> None:
    assert tag not in SENSITIVE_TAGS


# --- pretty --------------------------------------------------------------------------------

RECORD = h(
    "7028"
    "5A086228480123456789"
    "5F200A5A48414E47205341414E"  # "ZHANG SAAN"
    "5F2403301231"
    "9F0702FF00"
    "500455504159"  # "UPAY"
)


def test_pretty_shows_names_lengths_and_nesting() -> None:
    text = pretty(decode(RECORD))
    assert text.splitlines() == [
        "70 READ RECORD Response Message Template [40]",
        "  5A Application PAN [8] 6228480123456789",
        "  5F20 Cardholder Name [10] 5A48414E47205341414E 'ZHANG SAAN'",
        "  5F24 Application Expiration Date [3] 301231",
        "  9F07 Application Usage Control [2] FF00",
        "  50 Application Label [4] 55504159 'UPAY'",
    ]


def test_pretty_with_the_mask_function_hides_the_pan_and_the_name() -> None:
    text = pretty(decode(RECORD), mask_tag_value)
    assert "6228480123456789" not in text
    assert "ZHANG" not in text and "5A48414E47" not in text
    lines = text.splitlines()
    assert lines[1] == "  5A Application PAN [8] 622848******6789"
    assert lines[2] == "  5F20 Cardholder Name [10] " + "*" * 20
    assert lines[3] == "  5F24 Application Expiration Date [3] 301231"
    assert lines[5] == "  50 Application Label [4] 55504159 'UPAY'"  # not sensitive: text kept


def test_pretty_calls_the_mask_for_every_primitive_and_uses_what_it_returns() -> None:
    seen: list[tuple[int, bytes]] = []

    def mask(tag: int, value: bytes) -> str:
        seen.append((tag, value))
        return f"<{tag_hex(tag)}>"

    text = pretty(decode(RECORD), mask=mask)
    assert [t for t, _ in seen] == [0x5A, 0x5F20, 0x5F24, 0x9F07, 0x50]
    assert "  9F07 Application Usage Control [2] <9F07>" in text.splitlines()


def test_pretty_prints_an_empty_template_and_unknown_tags() -> None:
    text = pretty(decode(h("7700" "DF7F01AA")))
    assert text.splitlines() == [
        "77 Response Message Template Format 2 [0]",
        "DF7F unknown [1] AA",
    ]


def test_pretty_of_the_ppse_answer_from_the_visa_trace() -> None:
    fci = h("6F2A840E325041592E5359532E4444463031A518BF0C1561134F07A00000000310108701019F0A0400"
            "010101")
    lines = pretty(decode(fci)).splitlines()
    assert lines[0] == "6F File Control Information (FCI) Template [42]"
    assert lines[2] == "  A5 FCI Proprietary Template [24]"
    assert lines[3] == "    BF0C FCI Issuer Discretionary Data [21]"
    assert lines[4] == "      61 Application Template [19]"
    assert lines[5] == "        4F Application Identifier (AID) [7] A0000000031010"
