"""A whole tap over the real PC/SC stack, each actor in its own process (docs/architecture.md):

emvtap card run --link vpcd:…   →  vpcd  →  pcscd  →  emvtap terminal pay --reader pcsc:…
                                                           ↓ ISO 8583 over TCP
                                                 emvtap switch serve (SQLite file)
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_procs import EMVTAP, free_port, stop, wait_port

pytestmark = pytest.mark.pcsc


@pytest.fixture
def card_and_switch(tmp_path: Path, vpcd_slot) -> Iterator[dict]:
    """A personalised device card served on vpcd, and a switch that knows its token with a
    balance of 200.00 (so 150.00 is approved once, then declined for funds)."""
    reader, vpcd_port = vpcd_slot
    profile = tmp_path / "card.json"
    db = tmp_path / "switch.db"
    subprocess.run(
        [*EMVTAP, "perso", "--seed", "7", "--out", str(profile)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [*EMVTAP, "switch", "enroll", "--db", str(db), "--balance", "200.00", str(profile)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    switch = subprocess.Popen(
        [*EMVTAP, "switch", "serve", "--db", str(db), "--port", str(port),
         "--admin-port", "-1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    card = subprocess.Popen(
        [
            *EMVTAP,
            "card",
            "run",
            "--profile",
            str(profile),
            "--state",
            str(tmp_path / "card.state.json"),
            "--link",
            f"vpcd:127.0.0.1:{vpcd_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_port(port, switch)
        yield {
            "reader": reader,
            "switch": f"127.0.0.1:{port}",
            "db": db,
            "profile": json.loads(profile.read_text()),
            "tmp": tmp_path,
            "card": card,
        }
    finally:
        stop(card)
        stop(switch)


def _pay(env: dict, amount: str, name: str) -> tuple[int, dict, str]:
    out = env["tmp"] / f"{name}.json"
    proc = subprocess.run(
        [
            *EMVTAP,
            "terminal",
            "pay",
            "--reader",
            f"pcsc:{env['reader']}",
            "--amount",
            amount,
            "--switch",
            env["switch"],
            "--json",
            str(out),
            "--timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.exists(), f"no JSON record; stdout={proc.stdout} stderr={proc.stderr}"
    return proc.returncode, json.loads(out.read_text()), out.read_text()


def test_online_tap_over_pcscd_is_approved_with_a_verified_arqc(card_and_switch: dict) -> None:
    env = card_and_switch
    rc, record, text = _pay(env, "150.00", "approved")
    assert record["outcome"] == "ONLINE REQUEST"
    assert record["cryptogram"]["type"] == "ARQC"
    assert record["final_outcome"] == "APPROVED", record["reason"]
    assert rc == 0
    assert record["online"]["response_code"] == "00"
    assert len(bytes.fromhex(record["online"]["arpc"])) == 10  # ARPC ‖ ARC, method 1
    assert record["kernel"] == 7 and record["aid"] == "A000000333010101"
    # every APDU of the tap is in the record, with its timing, through the real reader
    names = [a["name"] for a in record["apdus"]]
    assert names[:3] == ["SELECT PPSE", "SELECT A000000333010101", "GET PROCESSING OPTIONS"]
    assert all(a["ms"] >= 0 for a in record["apdus"])
    # the PAN never appears in clear in the record
    mpan = env["profile"]["pan"]
    assert mpan not in text and record["pan"].startswith(mpan[:6]) and "*" in record["pan"]
    # the switch verified the cryptogram: it keeps the ATC only for a verified ARQC
    with sqlite3.connect(env["db"]) as db:
        atc, code = db.execute(
            "SELECT atc, response_code FROM authorizations ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert code == "00"
    assert atc == int(record["cryptogram"]["atc"], 16)


def test_second_tap_beyond_the_balance_is_declined_by_the_switch(card_and_switch: dict) -> None:
    env = card_and_switch
    rc1, first, _ = _pay(env, "150.00", "first")
    assert first["final_outcome"] == "APPROVED", first["reason"]
    assert rc1 == 0
    rc2, second, _ = _pay(env, "150.00", "second")
    assert second["outcome"] == "ONLINE REQUEST"
    assert second["final_outcome"] == "DECLINED"
    assert rc2 == 1
    assert second["online"]["response_code"] == "51"  # insufficient funds
    # a new ATC: the card never reuses one
    assert int(second["cryptogram"]["atc"], 16) == int(first["cryptogram"]["atc"], 16) + 1
