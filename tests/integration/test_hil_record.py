"""``emvtap hil record``: one tap saved as a redacted trace in the format of the vendored
traces (tests/data/README.md), here from the HCE card on the simulated readers (the terminal
through nfcpy's acr122 driver, the card through its pn533 driver)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from emvtap.perso import generate_profile
from emvtap.tlv import decode
from hce_card.card import HceCard
from hce_card.link.nfc_target import NfcTargetLink

pytestmark = pytest.mark.timeout(120)

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_recorded_tap_is_a_trace_with_the_pan_track_2_and_name_redacted(
    tmp_path: Path,
) -> None:
    card = HceCard(generate_profile(5))
    pan = card.profile.pan
    port = free_tcp_port()
    out = tmp_path / "recorded.json"
    with NfcTargetLink(card, f"sim:pn533:127.0.0.1:{port}") as link:
        assert link.listening.wait(5)
        proc = subprocess.run(
            [sys.executable, "-m", "lab.cli", "hil", "record", "--reader",
             f"nfc:sim:acr122:127.0.0.1:{port}", "--out", str(out), "--card",
             "emvtap HCE card, test keys"], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert f"written to {out}" in proc.stdout
    text = out.read_text()
    trace = json.loads(text)
    vendored = json.loads((TRACES / "04_mastercard_paypass_testcard_cda_genac.json").read_text())
    assert set(trace) == set(vendored) - {"oda_expected"}  # the vendored traces' fields
    assert all(set(entry) == {"c", "r"} for entry in trace["apdus"])
    assert trace["apdus"][0]["c"] == "00A404000E325041592E5359532E444446303100"  # PPSE
    assert len(trace["apdus"]) >= 4
    assert pan not in text and pan not in text.lower()
    masked = pan[:6] + "0" * (len(pan) - 10) + pan[-4:]
    assert masked in text  # 5A and 57 keep their lengths, with the middle digits zeroed
    assert "5A (PAN)" in trace["notes"][1] and "57 (track 2 equivalent data)" in trace["notes"][1]
    for entry in trace["apdus"]:  # every response still parses as BER-TLV
        response = bytes.fromhex(entry["r"])
        if response[-2:] == b"\x90\x00" and len(response) > 2:
            decode(response[:-2])


def test_nothing_to_record_is_a_clear_error(tmp_path: Path) -> None:
    port = free_tcp_port()  # nobody serves a card there
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "hil", "record", "--reader",
         f"nfc:sim:pn533:127.0.0.1:{port}", "--out", str(tmp_path / "t.json"), "--timeout",
         "1"], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1
    assert "nothing recorded" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "t.json").exists()
