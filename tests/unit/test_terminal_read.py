"""``terminal read`` over the recorded real cards (tests/data/cards, loopback link): every
application the card presents is read - directory (Book B 3.3.2; Book 1 12.3), SELECT, GPO,
the AFL's records, GET DATA - and the JSON document carries each one's AID, label, masked PAN,
expiry, AIP, AFL and decoded records; the certificate chain is checked with the shipped
CAPKs (Book 2, 5.3 / 6.4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emvtap.capk import CapkStore
from hce_card.recorded import RecordedCard
from terminal.config import TerminalConfig
from terminal.read import FORMAT_NAME, read_card
from terminal.transport.loopback import LoopbackTransport

CARDS = Path(__file__).resolve().parents[1] / "data" / "cards"
NOW = datetime(2021, 10, 14, 12, 0, tzinfo=UTC)  # the certificates of the recordings are valid


def read(name: str, **options: Any) -> tuple[dict[str, Any], RecordedCard, LoopbackTransport]:
    card = RecordedCard.load(CARDS / f"{name}.json")
    transport = LoopbackTransport(card)
    atr = transport.connect(1)
    report = read_card(transport, atr, reader="loopback:", config=TerminalConfig.default(),
                       capks=CapkStore.default(), now=NOW, **options)
    doc = json.loads(json.dumps(report.to_json()))  # what --json writes
    return doc, card, transport


def _all_values(nodes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    for n in nodes:
        out += _all_values(n["children"]) if "children" in n else [(n["tag"], n["value"])]
    return out


@pytest.mark.parametrize("path", sorted(CARDS.glob("*.json")), ids=lambda p: p.stem)
def test_every_recorded_card_reads_to_the_end(path: Path) -> None:
    doc, _card, _t = read(path.stem)
    assert doc["format"] == {"name": FORMAT_NAME, "version": 1}
    assert datetime.fromisoformat(doc["created"]) == NOW
    assert not any(e.startswith("card lost") for e in doc["errors"])
    for app in doc["applications"]:
        if app["select"].get("sw") != "9000":
            continue
        assert app["pan"] and "*" in app["pan"], app["aid"]
        assert app["expiry"] and app["expiry"].startswith("20")
        assert app["aip"] and app["afl"] is not None
        assert any("tlv" in r for r in app["records"])
        for r in app["records"]:
            for tag, value in _all_values(r.get("tlv", [])):
                if tag == "5A":
                    assert "*" in value


EXPECTED = {  # name: [(AID, label, masked PAN, expiry, AIP, AFL)]
    "visa_applepay": [("A0000000031010", "", "464235******3640", "2023-12-31", "2040",
                       "18010300")],
    "mastercard_paypass_test": [("A0000000041010", "PPC MCD 04  v20", "541333******0044",
                                 "2014-12-31", "5980", "08010100100101011801020020010200")],
    "unionpay_pboc_test": [("A000000333010102", "UICC CREDIT", "621094******0011", "2030-10-31",
                            "7C00", "080103001001050120010100"),
                           ("A000000333010101", "UICC DEBIT", None, None, None, None),
                           ("A000000333010103", "UICC QUASICREDIT", None, None, None, None)],
    "amex_cda_test": [("A000000025010403", "American Express", "374245*****1007", "2018-12-31",
                       "5D80", "0801010008020201080405001002030018030300")],
    "synth_multi_visa_mastercard": [
        ("A0000000031010", "", "464235******3640", "2023-12-31", "2040", "18010300"),
        ("A0000000041010", "PPC MCD 04  v20", "541333******0044", "2014-12-31", "5980",
         "08010100100101011801020020010200")],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_json_holds_each_applications_identity_pan_expiry_aip_afl(name: str) -> None:
    doc, _card, _t = read(name)
    got = [(a["aid"], a["label"], a["pan"], a["expiry"], a["aip"], a["afl"])
           for a in doc["applications"]]
    assert got == EXPECTED[name]


def test_no_ppse_falls_back_to_pse_then_the_aid_list() -> None:
    doc, _card, _t = read("mastercard_paypass_test")
    d = doc["directory"]
    assert d["source"] == "AID list"
    assert [(a["name"], a["sw"]) for a in d["attempts"][:2]] == [("PPSE", "6A82"), ("PSE", "6A82")]


def test_multi_application_pse_lists_every_application_in_the_directory() -> None:
    doc, _card, _t = read("unionpay_pboc_test")
    assert doc["directory"]["source"] == "PSE"
    assert [e["priority"] for e in doc["directory"]["entries"]] == [1, 2, 3]
    debit = doc["applications"][1]
    assert debit["select"]["sw"] == "6A82" and debit["records"] == []


def test_blocked_application_6283_is_reported_and_not_processed() -> None:
    doc, card, _t = read("synth_amex_app_blocked_6283")
    app = doc["applications"][0]
    assert app["select"]["sw"] == "6283"
    assert "blocked" in app["select"]["note"]
    assert app["gpo"] is None and app["label"] == "American Express"
    assert not any(c.startswith("80A8") for c in card.unmatched)


def test_blocked_card_6a81_gives_a_report_not_an_error() -> None:
    doc, _card, _t = read("synth_card_blocked_6a81")
    assert doc["applications"] == []
    assert ("PPSE", "6A81") in [(a["name"], a["sw"]) for a in doc["directory"]["attempts"]]
    assert any(a["sw"] == "6A81" and "American Express" in a["name"]
               for a in doc["directory"]["attempts"])
    assert doc["errors"][0].startswith("no application found")


def test_61xx_and_6cxx_are_resolved_on_the_wire() -> None:
    doc, _card, transport = read("synth_amex_t0_61xx_6cxx")
    wire = [(e.command.hex().upper(), e.response[-2:].hex().upper())
            for e in transport.exchanges]
    assert ("00C000003D", "9000") in wire  # GET RESPONSE after 613D
    assert ("00B2010C00", "6C4F") in wire and ("00B2010C4F", "9000") in wire
    plain, _c, _t = read("amex_cda_test")
    assert doc["applications"][0]["records"] == plain["applications"][0]["records"]


def test_garbage_answer_is_reported_with_what_the_card_sent() -> None:
    doc, _card, _t = read("visa_contact_test")
    record = doc["applications"][0]["records"][0]
    assert (record["sfi"], record["record"], record["sw"]) == (1, 1, "0000")
    assert record["data"] == "0000"
    assert any("answered 0000" in e for e in doc["applications"][0]["errors"])


def test_certificate_chain_recovered_with_shipped_capk() -> None:
    doc, _card, _t = read("visa_applepay")
    cert = doc["applications"][0]["certificates"]
    assert cert["capk"] == "A000000003/08" and cert["capk_known"]
    assert cert["issuer"]["issuer_identifier"] == "464235FF"
    assert cert["issuer"]["expiry"] == "2023-12" and not cert["issuer"]["expired"]
    assert cert["icc"]["recovered"] and cert["icc"]["pan_matches"]
    assert cert["icc"]["key"]["bits"] == 1024


def test_expired_certificate_is_recovered_and_reported_expired() -> None:
    card = RecordedCard.load(CARDS / "visa_applepay.json")
    t = LoopbackTransport(card)
    report = read_card(t, t.connect(1), reader="loopback:", config=TerminalConfig.default(),
                       capks=CapkStore.default(), now=datetime(2025, 1, 1, tzinfo=UTC))
    cert = report.to_json()["applications"][0]["certificates"]
    assert cert["issuer"]["recovered"] and cert["issuer"]["expired"]
    assert "issuer certificate expired 2023-12" in cert["not_verified"]


def test_unknown_capk_says_why_nothing_was_verified() -> None:
    doc, _card, _t = read("amex_cda_test")
    cert = doc["applications"][0]["certificates"]
    assert cert["capk"] == "A000000025/A1" and cert["capk_known"] is False
    assert "not in the shipped list" in cert["not_verified"][0]


def test_no_gpo_stops_after_select_and_get_data() -> None:
    doc, card, _t = read("visa_applepay", gpo=False)
    app = doc["applications"][0]
    assert app["gpo"] is None and app["records"] == []
    assert not any(c.startswith("80A8") for c in card.unmatched)
    assert all(not a["c"].startswith("80A8") for a in doc["apdus"])
    assert "--no-gpo" in doc["notes"][0]


def test_gpo_note_says_the_atc_advances() -> None:
    doc, _card, _t = read("visa_applepay")
    assert "advances" in doc["applications"][0]["gpo"]["note"]
    assert doc["applications"][0]["atc"] == 0x51


def test_pan_and_track_data_masked_unless_clear() -> None:
    masked, _c, _t = read("visa_applepay")
    text = json.dumps(masked)
    assert "4642352851503640" not in text
    clear, _c, _t = read("visa_applepay", clear=True)
    assert clear["applications"][0]["pan"] == "4642352851503640"
    assert clear["pan_masked"] is False


def test_transaction_log_is_decoded_with_the_log_format() -> None:
    """Book 3 Annex D: 9F4D names SFI 11 / 10 records, 9F4F the layout of each record."""
    doc = json.loads((CARDS / "unionpay_pboc_test.json").read_text())
    doc["apdus"] += [
        {"c": "80CA9F4F00", "r": "9F4F109A039F21039F02065F2A029F4E149C019000"},
        {"c": "00B2015C00", "r": "211014" "123456" "000000001234" "0156"
                                 + b"my shop".hex() + "00" * 13 + "00" + "9000"},
        {"c": "00B2025C00", "r": "6A83"},
    ]
    from hce_card.recorded import parse_recording

    card = RecordedCard(parse_recording(doc, "log"))
    t = LoopbackTransport(card)
    report = read_card(t, t.connect(1), reader="loopback:", config=TerminalConfig.default(),
                       capks=CapkStore.default(), now=NOW)
    log = report.to_json()["applications"][0]["transaction_log"]
    assert len(log) == 1
    entry = log[0]
    assert entry["date"] == "2021-10-14" and entry["time"] == "12:34:56"
    assert entry["amount"] == "12.34 Yuan Renminbi (CNY, 156)"
    assert entry["merchant"].startswith("'my shop")


class _PulledAfter(LoopbackTransport):
    """The card leaves the field after ``n`` commands (a tap cut short)."""

    def __init__(self, card: RecordedCard, n: int) -> None:
        super().__init__(card)
        self.left = n

    def _send(self, apdu: bytes) -> bytes:
        from terminal.transport import CardRemovedError

        if self.left == 0:
            raise CardRemovedError("loopback: card left the field")
        self.left -= 1
        return super()._send(apdu)


def test_card_pulled_mid_read_keeps_what_was_read_and_says_where() -> None:
    card = RecordedCard.load(CARDS / "visa_applepay.json")
    t = _PulledAfter(card, 4)  # PPSE, SELECT, GPO, first record
    report = read_card(t, t.connect(1), reader="loopback:", config=TerminalConfig.default(),
                       capks=CapkStore.default(), now=NOW)
    assert not report.complete
    assert report.errors == ["card lost after READ RECORD SFI 3 record 1: loopback: card "
                             "left the field"]
    doc = report.to_json()
    assert doc["applications"][0]["records"][0]["sw"] == "9000"
    assert len(doc["apdus"]) == 4


def test_schema_doc_names_every_field_the_document_has() -> None:
    """docs/json/terminal-read.md documents each field of the document, of its directory,
    applications and certificate reports (a new field without its row fails here)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "json" / "terminal-read.md"
            ).read_text()
    doc, _c, _t = read("synth_multi_visa_mastercard")
    app = doc["applications"][0]
    keys = (set(doc) | set(doc["directory"]) | set(app) | set(app["certificates"])
            | set(app["certificates"]["issuer"]))
    missing = sorted(k for k in keys if f"`{k}`" not in text and f" {k}," not in text
                     and f"{{{k}," not in text and f" {k}:" not in text)
    assert missing == []


def test_sda_signature_of_the_unionpay_card_verifies_and_a_changed_record_does_not() -> None:
    """Book 2, 5.4: the SSAD (93) under the recovered issuer key covers the ODA records."""
    doc, _c, _t = read("unionpay_pboc_test")
    cert = doc["applications"][0]["certificates"]
    assert cert["ssad"] == {"verified": True, "data_authentication_code": "DAC5"}
    recording = json.loads((CARDS / "unionpay_pboc_test.json").read_text())
    # SFI 2 record 1 is the ODA record (AFL 10010501): change one byte of the expiry date
    for item in recording["apdus"]:
        if item["c"] == "00B2011400":
            item["r"] = item["r"].replace("5F2403301031", "5F2403301030")
    from hce_card.recorded import parse_recording

    card = RecordedCard(parse_recording(recording, "tampered"))
    t = LoopbackTransport(card)
    report = read_card(t, t.connect(1), reader="loopback:", config=TerminalConfig.default(),
                       capks=CapkStore.default(), now=NOW)
    cert = report.to_json()["applications"][0]["certificates"]
    assert cert["ssad"] == {"verified": False, "error": "hash mismatch"}
    assert cert["icc"]["recovered"] is False and cert["icc"]["error"] == "hash mismatch"
