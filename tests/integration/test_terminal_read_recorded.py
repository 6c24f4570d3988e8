"""``emvtap terminal read`` and ``emvtap terminal apdu`` (the real command line, in its own
process) against every recorded real card of tests/data/cards, served by the recorded-card
personality over pcscd+vpcd and over nfcpy's udp radio: each read ends with exit 0, no
traceback, and a JSON document that holds every selected application's AID, label, masked
PAN, expiry, AIP/AFL and decoded records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from virtual_hw import VpcdSlot, serve_card_on_vpcd

from hce_card.link.nfc_target import NfcTargetLink
from hce_card.recorded import RecordedCard

pytestmark = pytest.mark.timeout(120)

CARDS = Path(__file__).resolve().parents[1] / "data" / "cards"
RECORDINGS = sorted(CARDS.glob("*.json"))
EMVTAP = [sys.executable, "-m", "lab.cli"]


def emvtap(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("EMVTAP_DEBUG", None)
    return subprocess.run([*EMVTAP, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


@contextmanager
def on_udp(card: RecordedCard, port: int) -> Iterator[NfcTargetLink]:
    link = NfcTargetLink(card, f"udp:127.0.0.1:{port}")
    link.start()
    assert link.listening.wait(5)
    try:
        yield link
    finally:
        link.close()


def check_read(done: subprocess.CompletedProcess[str], out: Path, card: RecordedCard) -> None:
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    assert doc["format"] == {"name": "emvtap-terminal-read", "version": 1}
    assert doc["created"]
    selected = [a for a in doc["applications"] if a["select"].get("sw") == "9000"]
    if card.recording.source.endswith("synth_card_blocked_6a81.json"):
        assert not doc["applications"]
        return
    if card.recording.source.endswith("synth_amex_app_blocked_6283.json"):
        assert doc["applications"][0]["select"]["sw"] == "6283"
        return
    assert selected, doc["errors"]
    for app in selected:
        assert app["aid"] and app["label"] is not None
        assert app["pan"] and "*" in app["pan"]
        assert app["expiry"] and app["aip"] and app["afl"]
        assert any(r.get("tlv") for r in app["records"])
    # every application command the read sent was one the card had answered when recorded,
    # except GET DATA / READ RECORD / SELECT the recording does not hold (answered by SW)
    assert all(u[:4] in ("80CA", "00B2", "00A4") for u in card.unmatched), card.unmatched


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_terminal_read_over_pcscd_and_vpcd(path: Path, vpcd_slot: VpcdSlot,
                                            tmp_path: Path) -> None:
    card = RecordedCard.load(path)
    out = tmp_path / "read.json"
    with serve_card_on_vpcd(card, vpcd_slot):
        done = emvtap("terminal", "read", "--reader", vpcd_slot.reader_spec, "--timeout", "10",
                      "--json", str(out))
    check_read(done, out, card)
    assert "pcsc:Virtual PCD" in done.stdout  # the tree view


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_terminal_read_over_nfc_udp(path: Path, udp_port: int, tmp_path: Path) -> None:
    card = RecordedCard.load(path)
    out = tmp_path / "read.json"
    with on_udp(card, udp_port):
        done = emvtap("terminal", "read", "--reader", f"nfc:udp:127.0.0.1:{udp_port}",
                      "--timeout", "10", "--json", str(out))
    check_read(done, out, card)


def test_terminal_apdu_gets_response_and_resends_on_6cxx(vpcd_slot: VpcdSlot) -> None:
    card = RecordedCard.load(CARDS / "synth_amex_t0_61xx_6cxx.json")
    with serve_card_on_vpcd(card, vpcd_slot):
        done = emvtap("terminal", "apdu", "--reader", vpcd_slot.reader_spec, "--timeout", "10",
                      "00A404000E325041592E5359532E444446303100",
                      "00 A4 04 00 08 A000000025010403 00", "00B2010C00", "--json", "-")
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["format"]["name"] == "emvtap-terminal-apdu"
    ppse, select, record = doc["apdus"]
    assert [w["c"] for w in ppse["wire"]] == ["00A404000E325041592E5359532E444446303100",
                                              "00C000003D"]
    assert ppse["sw"] == "9000" and ppse["tlv"][0]["tag"] == "6F"
    assert [w["c"] for w in record["wire"]] == ["00B2010C00", "00B2010C4F"]
    assert record["wire"][0]["r"] == "6C4F"
    assert "4F" in [n["tag"] for n in ppse["tlv"][0]["children"][1]["children"][0]
                    ["children"][0]["children"]]
    # the PAN in the track 2 of the record is masked
    assert "3742450017410" not in done.stdout
    assert "wire" in done.stderr  # the tree view went to stderr with --json -


def test_card_run_recording_serves_on_vpcd(vpcd_slot: VpcdSlot, tmp_path: Path) -> None:
    card = subprocess.Popen(
        [*EMVTAP, "card", "run", "--recording", str(CARDS / "unionpay_pboc_test.json"),
         "--link", vpcd_slot.link_spec],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from virtual_hw import wait_for_reader

        wait_for_reader(vpcd_slot.reader, present=True, timeout=20)
        out = tmp_path / "read.json"
        done = emvtap("terminal", "read", "--reader", vpcd_slot.reader_spec, "--timeout", "10",
                      "--json", str(out), "--no-gpo")
        assert done.returncode == 0, done.stderr[-2000:]
        doc = json.loads(out.read_text())
        assert [e["aid"] for e in doc["directory"]["entries"]] == [
            "A000000333010102", "A000000333010101", "A000000333010103"]
        assert doc["applications"][0]["gpo"] is None
    finally:
        card.terminate()
        card.wait(10)
        from virtual_hw import wait_for_reader

        wait_for_reader(vpcd_slot.reader, present=False, timeout=10)


def test_no_card_in_the_reader_exits_3_with_the_reason(vpcd_slot: VpcdSlot,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "read.json"
    done = emvtap("terminal", "read", "--reader", vpcd_slot.reader_spec, "--timeout", "0.5",
                  "--json", str(out))
    assert done.returncode == 3
    assert "no card within 0.5 s" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_unknown_pcsc_reader_exits_4(pcscd: None) -> None:
    done = emvtap("terminal", "read", "--reader", "pcsc:no such reader", "--timeout", "1")
    assert done.returncode == 4, done.stderr
    assert "no such reader" in done.stderr and "Traceback" not in done.stderr


def test_terminal_apdu_script_over_nfc_udp(udp_port: int, tmp_path: Path) -> None:
    script = tmp_path / "read.apdu"
    script.write_text("# PPSE, then the Visa application and its first record\n"
                      "00A404000E325041592E5359532E444446303100\n"
                      "00 A4 04 00 07 A0000000031010 00\n"
                      "00B2011C00   # SFI 3 record 1\n")
    card = RecordedCard.load(CARDS / "visa_applepay.json")
    out = tmp_path / "apdu.json"
    with on_udp(card, udp_port):
        done = emvtap("terminal", "apdu", "--reader", f"nfc:udp:127.0.0.1:{udp_port}",
                      "--timeout", "10", "--script", str(script), "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [a["sw"] for a in doc["apdus"]] == ["9000", "9000", "9000"]
    record = doc["apdus"][2]["tlv"][0]
    assert record["tag"] == "70"
    assert {"5F28", "9F07"} <= {n["tag"] for n in record["children"]}
    assert "success" in done.stdout
