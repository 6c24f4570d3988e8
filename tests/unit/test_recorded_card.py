"""The recorded card: answers a real card's recorded APDUs (ISO/IEC 7816-4 selection rules,
status words of a card for what the recording does not hold)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hce_card.recorded import RecordedCard, RecordingError, load_recording, parse_recording

CARDS = Path(__file__).resolve().parents[1] / "data" / "cards"
PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def card(name: str) -> RecordedCard:
    return RecordedCard.load(CARDS / f"{name}.json")


@pytest.mark.parametrize("path", sorted(CARDS.glob("*.json")), ids=lambda p: p.stem)
def test_every_recording_has_provenance_and_loads(path: Path) -> None:
    rec = load_recording(path)
    for key in ("repo", "path", "commit", "licence"):
        assert rec.provenance.get(key), f"{path.name}: provenance.{key}"
    assert rec.exchanges
    if path.stem.startswith("synth_"):
        assert rec.synthesised and rec.synthesised["how"]
        assert rec.card.startswith("SYNTHESISED")


def test_select_answers_the_recorded_fci_and_unknown_names_6a82() -> None:
    c = card("amex_cda_test")
    assert c.process(PPSE).hex().upper().endswith("9000")
    assert c.process(bytes.fromhex("00A4040007A000000003101000")) == b"\x6a\x82"


def test_partial_name_selects_the_recorded_df() -> None:
    c = card("amex_cda_test")
    fci = c.process(bytes.fromhex("00A4040006A0000000250100"))
    assert fci[-2:] == b"\x90\x00" and bytes.fromhex("A000000025010403") in fci


def test_records_are_keyed_by_the_selected_df() -> None:
    """UnionPay: READ RECORD SFI 1 record 1 is the PSE directory under the PSE and the
    track 2 record under the application."""
    c = card("unionpay_pboc_test")
    rr = bytes.fromhex("00B2010C00")
    c.process(bytes.fromhex("00A404000E315041592E5359532E444446303100"))
    directory = c.process(rr)
    c.process(bytes.fromhex("00A4040008A00000033301010200"))
    record = c.process(rr)
    assert bytes.fromhex("4F08A000000333010102") in directory
    assert record.startswith(bytes.fromhex("7056570F"))


def test_gpo_with_other_terminal_data_gets_the_recorded_answer() -> None:
    c = card("visa_applepay")
    c.process(bytes.fromhex("00A4040007A000000003101000"))
    gpo = bytes.fromhex("80A8000037833500000000") + bytes(48) + b"\x00"
    gpo = gpo[:4] + bytes([len(gpo) - 6]) + gpo[5:]
    answer = c.process(gpo)
    assert answer[:1] == b"\x77" and answer[-2:] == b"\x90\x00"


def test_unrecorded_commands_get_a_cards_status_words() -> None:
    c = card("mastercard_paypass_test")
    assert c.process(PPSE) == b"\x6a\x82"  # no PPSE on this card
    c.process(bytes.fromhex("00A4040007A000000004101000"))
    assert c.process(bytes.fromhex("00B2053C00")) == b"\x6a\x83"
    assert c.process(bytes.fromhex("80CA9F3600")) == b"\x6a\x88"
    assert c.process(bytes.fromhex("00C0000010")) == b"\x69\x85"
    assert c.process(bytes.fromhex("B0CA9F3600")) == b"\x6e\x00"
    assert c.process(bytes.fromhex("00FE000000")) == b"\x6d\x00"
    assert len(c.unmatched) == 6


def test_repeated_commands_answer_in_order_and_a_tap_starts_again() -> None:
    c = card("visa_contact_test")
    select, rr = bytes.fromhex("00A4040007A000000003101000"), bytes.fromhex("00B2010C00")
    c.process(select)
    assert c.process(rr) == bytes.fromhex("00000000")  # the card's garbage answer
    assert c.process(rr).startswith(b"\x70\x38")
    c.reset()
    c.process(select)
    assert c.process(rr) == bytes.fromhex("00000000")


def test_t0_style_recording_answers_61xx_and_6cxx() -> None:
    c = card("synth_amex_t0_61xx_6cxx")
    assert c.process(PPSE) == b"\x61\x3d"
    assert c.process(bytes.fromhex("00C000003D"))[-2:] == b"\x90\x00"
    c.process(bytes.fromhex("00A4040008A00000002501040300"))
    assert c.process(bytes.fromhex("00B2010C00")) == b"\x6c\x4f"
    assert c.process(bytes.fromhex("00B2010C4F"))[:2] == b"\x70\x4d"


def test_bad_recordings_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not a card recording"):
        parse_recording({"apdus": []}, "x.json")
    good = json.loads((CARDS / "amex_cda_test.json").read_text())
    with pytest.raises(RecordingError, match=r"apdus\[0\].c: 'zz' is not hex"):
        parse_recording(good | {"apdus": [{"c": "zz", "r": "9000"}]}, "x.json")
    with pytest.raises(RecordingError, match="provenance"):
        parse_recording({k: v for k, v in good.items() if k != "provenance"}, "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(RecordingError, match="not JSON"):
        load_recording(bad)
