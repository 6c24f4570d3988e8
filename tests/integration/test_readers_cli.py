"""``emvtap readers`` against pcscd with vpcd: the readers listed with their role, and
``--watch`` reporting a card's arrival (ATR decoded, PC/SC Part 3) and its removal."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from virtual_hw import VpcdSlot, serve_card_on_vpcd

from hce_card.recorded import RecordedCard

pytestmark = pytest.mark.timeout(60)

CARDS = Path(__file__).resolve().parents[1] / "data" / "cards"
EMVTAP = [sys.executable, "-m", "lab.cli"]


def test_readers_lists_the_vpcd_readers_as_terminals_with_the_card_atr(
        vpcd_slot: VpcdSlot) -> None:
    card = RecordedCard.load(CARDS / "visa_applepay.json")
    with serve_card_on_vpcd(card, vpcd_slot):
        done = subprocess.run([*EMVTAP, "readers", "--nfc-timeout", "10", "--json", "-"],
                              capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["format"] == {"name": "emvtap-readers", "version": 1}
    ours = next(r for r in doc["readers"] if r["name"] == vpcd_slot.reader)
    assert ours["spec"] == vpcd_slot.reader_spec and ours["roles"] == ["terminal"]
    assert ours["status"] == "card present"
    assert ours["card"]["atr"] == card.atr.hex().upper()
    assert ours["card"]["kind"] == "contactless ISO 14443-4 card"
    assert "nfc:udp:HOST:PORT" in done.stderr  # the human list went to stderr


def _lines(proc: subprocess.Popen[str], into: queue.Queue[dict[str, Any]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip():
            into.put(json.loads(line))


def _next_for(events: queue.Queue[dict[str, Any]], reader: str, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        if event["reader"] == reader and event["event"] == kind:
            return event
    raise AssertionError(f"no {kind!r} event for {reader}")


def test_watch_reports_insert_with_the_atr_decoded_and_remove(vpcd_slot: VpcdSlot) -> None:
    proc = subprocess.Popen([*EMVTAP, "readers", "--watch", "--json", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_lines, args=(proc, events), daemon=True).start()
    try:
        assert proc.stderr is not None
        assert "watching" in proc.stderr.readline()
        card = RecordedCard.load(CARDS / "visa_applepay.json")
        with serve_card_on_vpcd(card, vpcd_slot):
            inserted = _next_for(events, vpcd_slot.reader, "card inserted")
        removed = _next_for(events, vpcd_slot.reader, "card removed")
    finally:
        proc.terminate()
        proc.wait(10)
    assert inserted["format"]["name"] == "emvtap-readers-event"
    assert inserted["card"]["atr"] == "3B8880010000000000718100F9"
    assert inserted["card"]["protocols"] == [0, 1] and inserted["card"]["tck_ok"] is True
    assert "card" not in removed
