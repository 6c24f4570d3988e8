"""Value decoding of the EMV data elements a card dump shows (Book 3 Annex A and C; ISO 7813;
ISO 3166-1 / 4217 names from emvtap/data/iso_codes.tsv)."""

from __future__ import annotations

from emvtap.bits import AUC, CID, cvm_condition, cvm_method, is_set
from emvtap.describe import describe, describe_amount, parse_track2
from emvtap.iso_codes import country, currency, currency_exponent
from emvtap.tags import tag_name


def test_cvm_list_rules_are_in_words_with_amounts_x_and_y() -> None:
    # UnionPay test card: X=0, Y=0, 5E03 (enciphered PIN online... b7 set), 4203, 1F00
    d = describe(0x8E, bytes.fromhex("00000000000000005E0342031F00"))
    assert d is not None
    assert d.summary.startswith("X=0, Y=0")
    assert d.details[0] == ("signature (paper), if the terminal supports the CVM; "
                            "if it fails, apply the next rule")
    assert d.details[1].startswith("enciphered PIN verified online, if the terminal supports")
    assert d.details[2] == "no CVM required, always; if it fails, cardholder verification fails"


def test_cvm_codes_reserved_ranges_are_named() -> None:
    assert cvm_method(0x25) == "method 25 reserved for use by the individual payment systems"
    assert cvm_method(0x31).endswith("reserved for use by the issuer")
    assert cvm_condition(0x0A) == "condition 0A reserved for future use"


def test_auc_bits_book3_annex_c2() -> None:
    d = describe(0x9F07, bytes.fromhex("FF00"))
    assert d is not None and len(d.details) == 8
    assert "valid at ATMs" in d.details
    assert is_set(bytes.fromhex("0080"), AUC.DOMESTIC_CASHBACK)


def test_issuer_action_codes_decode_as_tvr_bits() -> None:
    d = describe(0x9F0E, bytes.fromhex("0010000000"))
    assert d is not None
    assert d.details == ["requested service not allowed for card product"]


def test_terminal_action_codes_decode_as_tvr_bits_too() -> None:
    d = describe(0xDF8121, bytes.fromhex("0010000000"))
    assert d is not None and d.details == ["requested service not allowed for card product"]
    assert tag_name(0xDF8120) == "Terminal Action Code - Default"
    assert tag_name(0x9F7F).startswith("Card Production Life Cycle")
    assert tag_name(0x9F57) == "Issuer Country Code"


def test_cid_type_advice_and_reason() -> None:
    d = describe(0x9F27, bytes([CID.ARQC]))
    assert d is not None and d.summary == "cryptogram type ARQC"
    d = describe(0x9F27, bytes([0x0A]))
    assert d is not None
    assert d.details == ["cryptogram type AAC", "advice required",
                         "reason: PIN try limit exceeded"]


def test_ctq_and_ttq_bits() -> None:
    ctq = describe(0x9F6C, bytes.fromhex("0000"))
    assert ctq is not None and ctq.summary == "no bit set"
    ttq = describe(0x9F66, bytes.fromhex("33804000"))
    assert ttq is not None
    assert "qPBOC / qVSDC supported" in ttq.details
    assert "online cryptogram required" in ttq.details


def test_issuer_application_data_known_cvn() -> None:
    visa = describe(0x9F10, bytes.fromhex("06010A03A00000"))
    assert visa is not None and visa.summary == "Visa CVN 10"
    assert "card verification results 03A00000" in visa.details
    pboc = describe(0x9F10, bytes.fromhex("07010103A0A000010A0100000000008F5EB4F7"))
    assert pboc is not None and pboc.summary == "PBOC/UICS CVN 01"
    mchip = describe(0x9F10, bytes.fromhex("0110A00003240000000000000000000000FF"))
    assert mchip is not None and mchip.summary == "Mastercard M/Chip CVN 10"
    assert mchip.details[1].endswith("Mastercard SKD, counters not in the AC data")
    assert mchip.details[2] == "card verification results A00003240000"
    unknown = describe(0x9F10, bytes.fromhex("1F4A6360A000"))
    assert unknown is not None and unknown.summary.startswith("layout not known")


def test_track2_is_split_and_masked_unless_clear() -> None:
    value = bytes.fromhex("4642352851503640D23122010000035399995F")
    t = parse_track2(value)
    assert t is not None
    assert (t.pan, t.expiry_yymm, t.service_code) == ("4642352851503640", "2312", "201")
    masked = describe(0x57, value)
    assert masked is not None
    assert "464235******3640" in masked.summary and "4642352851503640" not in str(masked)
    clear = describe(0x57, value, clear=True)
    assert clear is not None and "PAN 4642352851503640" in clear.details
    assert "international interchange, use IC" in clear.details[2]


def test_country_currency_names_and_exponents() -> None:
    assert country(bytes.fromhex("0826")).alpha == "GBR"  # type: ignore[union-attr]
    assert currency(bytes.fromhex("0978")).alpha == "EUR"  # type: ignore[union-attr]
    assert currency_exponent(392) == 0 and currency_exponent(978) == 2
    assert describe_amount(bytes.fromhex("000000001234"), bytes.fromhex("0392")).startswith(
        "1234 Yen")
    assert describe_amount(bytes.fromhex("000000001234"), bytes.fromhex("0978")).startswith(
        "12.34 Euro")
    d = describe(0x5F28, bytes.fromhex("0156"))
    assert d is not None and d.summary == "China (CHN, 156)"


def test_dates_log_entry_and_cplc() -> None:
    assert describe(0x5F24, bytes.fromhex("301031")).summary == "2030-10-31"  # type: ignore[union-attr]
    assert "not a YYMMDD" in describe(0x5F24, bytes.fromhex("301399")).summary  # type: ignore[union-attr]
    log = describe(0x9F4D, bytes.fromhex("0B0A"))
    assert log is not None and log.summary == "transaction log in SFI 11, up to 10 records"
    cplc = describe(0x9F7F, bytes(range(42)))
    assert cplc is not None and cplc.details[0] == "IC fabricator: 0001"
    assert cplc.details[-1] == "IC personalisation equipment identifier: 26272829"
    short = describe(0x9F7F, b"\x01")
    assert short is not None and short.summary.startswith("CPLC is 42 bytes")


def test_garbage_values_are_described_not_raised() -> None:
    for tag in (0x8E, 0x94, 0x9F38, 0x9F27, 0x57, 0x5F2D, 0x9F4D, 0x82):
        d = describe(tag, b"\xff\x01\x02")
        assert d is not None and d.summary
