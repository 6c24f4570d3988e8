"""Masking of cardholder data in logs and traces (docs/architecture.md: PANs masked
unless the user asks for clear output; PCI DSS 3.4: at most the first six and last four)."""

from __future__ import annotations

import pytest

from emvtap.masking import mask_pan, mask_tag_value, mask_text, redact_hex, redact_tlv_bytes
from emvtap.tlv import decode, find

h = bytes.fromhex

#: READ RECORD SFI 1 record 1 of the Mastercard test card (trace 04): track 2 (57), PAN (5A),
#: cardholder name (5F20) among non-sensitive data.
MC_RECORD = h(
    "7081B157115413330089600044D141220101234091725A0854133300896000445F200C455445432F50415950"
    "4153535F24031412315F25030401015F280200565F3401018C219F02069F03069F090295055F2A029A039C01"
    "9F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C088E0C00000000000000005E031F039F"
    "0702FF009F080200029F0D0500000000009F0E0500000000009F0F0500000000009F420209789F4A0182DF4F"
    "03123456"
)


# --- PANs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("6250941234567890", "625094******7890"),  # 16 digits: first 6, last 4
        ("5413330089600044", "541333******0044"),
        ("6210948000000011123", "621094*********1123"),  # 19 digits
        ("6210948000000011123F", "621094*********1123"),  # F padding of an odd-length 5A
        ("4000001234562", "400000***4562"),  # 13 digits, the shortest PAN
        ("123456789012", "************"),  # too short to show anything
        ("", ""),
    ],
)
def test_mask_pan_keeps_first_six_and_last_four(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked


def test_mask_text_masks_every_pan_like_run() -> None:
    text = "tap 6250941234567890 then 5413330089600044 amount 000000001234 stan 123456"
    assert mask_text(text) == (
        "tap 625094******7890 then 541333******0044 amount 000000001234 stan 123456")


def test_mask_text_leaves_shorter_and_longer_digit_runs() -> None:
    assert mask_text("RRN 123456789012") == "RRN 123456789012"  # 12 digits
    assert mask_text("x 12345678901234567890 y") == "x 12345678901234567890 y"  # 20 digits


# --- tag values ----------------------------------------------------------------------------


def test_pan_5a_shows_only_first_six_and_last_four() -> None:
    assert mask_tag_value(0x5A, h("5413330089600044")) == "541333******0044"


def test_track_2_masks_the_pan_and_everything_after_the_separator() -> None:
    track2 = h("5413330089600044D14122010123409172")
    shown = mask_tag_value(0x57, track2)
    assert shown == "541333******0044D" + "*" * 17
    assert "1412201" not in shown  # expiry, service code and discretionary data hidden


def test_cardholder_name_is_hidden_entirely() -> None:
    assert mask_tag_value(0x5F20, b"ETEC/PAYPASS") == "*" * 24


def test_non_sensitive_values_are_plain_hex() -> None:
    assert mask_tag_value(0x9F02, h("000000001234")) == "000000001234"
    assert mask_tag_value(0x82, h("3C00")) == "3C00"


# --- TLV bytes -----------------------------------------------------------------------------


def test_redact_tlv_bytes_overwrites_sensitive_values_and_keeps_the_layout() -> None:
    out = redact_tlv_bytes(MC_RECORD)
    assert len(out) == len(MC_RECORD)
    assert h("5413330089600044") not in out
    assert b"ETEC" not in out
    [before], [after] = decode(MC_RECORD), decode(out)
    assert [(t.tag, len(t.value)) for t in after.children] == [
        (t.tag, len(t.value)) for t in before.children]
    for tag in (0x57, 0x5A, 0x5F20):
        assert set(find([after], tag).value) == {0xAA}
    for tag in (0x8C, 0x5F24, 0x9F42, 0xDF4F):
        assert find([after], tag).value == find([before], tag).value
    assert out[:3] == h("7081B1")  # the two-byte length form is kept


def test_redact_tlv_bytes_keeps_padding_and_long_form_lengths() -> None:
    # a record with 00 padding inside the template and a long-form length for a short value
    data = h("7011" "00" "5A8108" "6228480123456789" "FF" "9F3601" "07" "0000")
    out = redact_tlv_bytes(data)
    assert out == h("7011" "00" "5A8108" "AAAAAAAAAAAAAAAA" "FF" "9F3601" "07" "0000")


def test_redact_tlv_bytes_walks_nested_templates() -> None:
    gpo = h("7715" "8202" "3C00" "570F" "6228480123456789D301220100000F")
    assert redact_tlv_bytes(gpo) == h("7715" "82023C00" "570F" + "AA" * 15)


def test_redact_tlv_bytes_returns_non_tlv_unchanged() -> None:
    for junk in (h("5A08622848"), h("9F"), b""):
        assert redact_tlv_bytes(junk) == junk


# --- APDU hex ------------------------------------------------------------------------------


def test_redact_hex_masks_the_pan_wherever_it_appears() -> None:
    apdu = h("00B2010C00") + MC_RECORD
    out = redact_hex(apdu, ["5413330089600044"])
    assert "5413330089600044" not in out
    assert out.count("541333******0044") == 2  # in 57 and in 5A
    assert len(out) == 2 * len(apdu)


def test_redact_hex_keeps_the_length_with_an_f_padded_pan() -> None:
    data = h("5A0A6210948000000011123F")
    out = redact_hex(data, ["6210948000000011123F"])
    assert out == "5A0A621094*********1123F"
    assert len(out) == 2 * len(data)


def test_redact_hex_masks_several_pans_and_ignores_empty_ones() -> None:
    data = h("6250941234567890" "AA" "6228480123456789")
    assert redact_hex(data, ["", "6250941234567890", "6228480123456789"]) == (
        "625094******7890AA622848******6789")
    assert redact_hex(data, []) == data.hex().upper()
