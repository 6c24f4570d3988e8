"""Whole taps through nfcpy's own PN533 driver on both sides, each on a simulated PN533
(emvtap/chipsim) joined by a simulated field (docs/hardware.md, Simulated readers): the
terminal's kernel on ``nfc:sim:pn533`` against the HCE card on ``nfc:sim:pn533``, in-process
where a fault is injected into the card, and as the ``emvtap`` processes a user starts."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_procs import EMVTAP, free_port, stop, wait_port

from emvtap.perso import generate_profile
from hce_card.card import HceCard
from hce_card.link.nfc_target import NfcTargetLink
from terminal.config import TerminalConfig
from terminal.outcome import Outcome
from terminal.pay import perform_transaction
from terminal.transport.nfc import NfcTransport

pytestmark = pytest.mark.timeout(120)

INS_READ_RECORD, INS_GENERATE_AC = 0xB2, 0xAE


def full_pboc_config() -> TerminalConfig:
    """Full PBOC only (TTQ 46 00 C0 80, no qPBOC): the card takes the EMV full path, with a
    GENERATE AC (EMV 4.4 Book 3, 9.2)."""
    comb = {"aid": "A000000333010101", "kernel_id": 7, "ttq": "4600C080",
            "transaction_limit": 100000, "cvm_required_limit": 30000, "floor_limit": 10000,
            "application_version": "0030"}
    return TerminalConfig.from_dict(TerminalConfig.defaults_dict() | {"combinations": [comb]})


class FaultyCard:
    """The HCE card, with a fault on one instruction: ``slow`` seconds of computing before
    answering it, or leaving the field (the link's ``remove_card``) when it arrives."""

    def __init__(self, card: HceCard, ins: int, *, slow: float = 0.0, pull: bool = False) -> None:
        self.card, self.ins, self.slow, self.pull = card, ins, slow, pull
        self.atr = card.atr
        self.link: NfcTargetLink | None = None
        self.seen: list[int] = []

    def reset(self) -> None:
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        self.seen.append(apdu[1])
        if apdu[1] == self.ins:
            if self.pull:
                self.pull = False
                assert self.link is not None
                self.link.remove_card()
                return b"\x6f\x00"  # never reaches the reader: the card is gone
            time.sleep(self.slow)  # an RSA signature on a slow secure element, not a sync
        return self.card.process(apdu)


#: (terminal's reader, card emulator's reader): each of nfcpy's drivers on both ends.
CHIP_PAIRS = [("pn533", "pn533"), ("acr122", "rcs380"), ("rcs380", "pn533")]


@pytest.fixture(params=CHIP_PAIRS, ids=lambda pair: f"{pair[0]}-reads-{pair[1]}")
def specs(request: pytest.FixtureRequest) -> tuple[str, str]:
    reader_chip, card_chip = request.param
    port = free_port()
    return f"sim:{reader_chip}:127.0.0.1:{port}", f"sim:{card_chip}:127.0.0.1:{port}"


def serve(card: FaultyCard, spec: str) -> NfcTargetLink:
    link = NfcTargetLink(card, spec)
    card.link = link
    link.start()
    assert link.listening.wait(5)
    return link


def test_wtx_keeps_the_reader_waiting_through_a_slow_generate_ac(
    specs: tuple[str, str],
) -> None:
    """FWT of the card's ATS is 38.7 ms; a GENERATE AC of 1.2 s needs S(WTX) from the card
    (ISO/IEC 14443-4, 7.3), relayed by both simulated chips and granted by nfcpy's reader."""
    card = FaultyCard(HceCard(generate_profile(5)), INS_GENERATE_AC, slow=1.2)
    reader_spec, card_spec = specs
    link = serve(card, card_spec)
    try:
        with NfcTransport(reader_spec) as reader:
            result = perform_transaction(reader, full_pboc_config(), 1234, switch="none",
                                         card_timeout=10)
    finally:
        link.close()
    assert result.path == "EMV full path"
    assert result.final_outcome == Outcome.APPROVED, result.reason
    assert INS_GENERATE_AC in card.seen
    assert link.isodep.wtx_sent >= 2


def test_card_pulled_mid_tap_is_try_again_and_the_next_tap_is_approved(
    specs: tuple[str, str],
) -> None:
    """The card leaves the field at its first READ RECORD: the reader chip gets no answer
    (status 01), nfcpy's ISO-DEP gives up after its R(NAK)s, the kernel ends in TRY AGAIN
    (EMV Book A, 9.4: present card again). Presented again, the card is approved."""
    card = FaultyCard(HceCard(generate_profile(5)), INS_READ_RECORD, pull=True)
    reader_spec, card_spec = specs
    link = serve(card, card_spec)
    try:
        with NfcTransport(reader_spec) as reader:
            pulled = perform_transaction(reader, full_pboc_config(), 1234, switch="none",
                                         card_timeout=10)
            link.insert_card()
            again = perform_transaction(reader, full_pboc_config(), 1234, switch="none",
                                        card_timeout=10)
    finally:
        link.close()
    assert pulled.outcome == Outcome.TRY_AGAIN, pulled.reason
    assert pulled.final_outcome == Outcome.TRY_AGAIN
    assert "card removed" in pulled.reason
    assert again.final_outcome == Outcome.APPROVED, again.reason


# --- the processes a user starts ------------------------------------------------------------


@pytest.fixture(params=[("pn533", "pn533"), ("acr122", "rcs380")],
                ids=lambda pair: f"{pair[0]}-reads-{pair[1]}")
def actors(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``emvtap card run --link nfc:sim:CHIP:…`` and ``emvtap switch serve`` that knows the
    card's token, each in its own process; the terminal reads with ``nfc:sim:CHIP:…``."""
    reader_chip, card_chip = request.param
    profile, db = tmp_path / "card.json", tmp_path / "switch.db"
    subprocess.run([*EMVTAP, "perso", "--seed", "102", "--out", str(profile)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run([*EMVTAP, "switch", "enroll", "--db", str(db), "--balance", "200.00",
                    str(profile)], check=True, capture_output=True, timeout=60)
    switch_port, field_port = free_port(), free_port()
    spec = f"nfc:sim:{card_chip}:127.0.0.1:{field_port}"
    switch = subprocess.Popen([*EMVTAP, "switch", "serve", "--db", str(db), "--port",
                               str(switch_port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    card = subprocess.Popen([*EMVTAP, "card", "run", "--profile", str(profile), "--state",
                             str(tmp_path / "card.state.json"), "--link", spec],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(switch_port, switch)
        wait_port(field_port, card)
        yield {"spec": f"nfc:sim:{reader_chip}:127.0.0.1:{field_port}",
               "switch": f"127.0.0.1:{switch_port}", "tmp": tmp_path,
               "pan": json.loads(profile.read_text())["pan"]}
    finally:
        stop(card)
        stop(switch)


def _pay(env: dict[str, Any], amount: str, name: str) -> tuple[int, dict[str, Any], str]:
    out = env["tmp"] / f"{name}.json"
    proc = subprocess.run([*EMVTAP, "terminal", "pay", "--reader", env["spec"], "--amount",
                           amount, "--switch", env["switch"], "--json", str(out),
                           "--timeout", "20"], capture_output=True, text=True, timeout=90)
    assert out.exists(), f"no JSON record; stdout={proc.stdout} stderr={proc.stderr}"
    return proc.returncode, json.loads(out.read_text()), out.read_text()


def test_emvtap_terminal_pay_against_emvtap_card_run_online_and_offline(
    actors: dict[str, Any],
) -> None:
    rc, online, text = _pay(actors, "150.00", "online")
    assert online["outcome"] == "ONLINE REQUEST"
    assert online["final_outcome"] == "APPROVED", online["reason"]
    assert online["online"]["response_code"] == "00"
    assert rc == 0
    assert actors["pan"] not in text  # masked in the record
    rc, offline, _ = _pay(actors, "12.34", "offline")
    assert offline["final_outcome"] == "APPROVED", offline["reason"]
    assert offline["cryptogram"]["type"] == "TC"
    assert offline.get("online") in (None, {})
    assert rc == 0
