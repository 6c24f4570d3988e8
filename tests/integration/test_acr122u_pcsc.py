"""The terminal's ACR122U-aware PC/SC code (UID, LED and buzzer on the outcome, removal)
against a card that presents itself as an ACR122U with the card in its field, on pcscd's
virtual reader (hce_card/link/acr122u.py; ACR122U API manual, PC/SC Part 3)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from virtual_hw import VpcdSlot, serve_card_on_vpcd, wait_for_reader

from emvtap.perso import generate_profile
from hce_card.card import HceCard
from hce_card.link.acr122u import Acr122uPersonality
from terminal.config import TerminalConfig
from terminal.outcome import Outcome
from terminal.pay import perform_transaction
from terminal.transport import CardRemovedError
from terminal.transport.pcsc import ACR122U_FEEDBACK, PcscTransport

pytestmark = [pytest.mark.pcsc, pytest.mark.timeout(120)]

UID = bytes.fromhex("08123456")
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def test_the_reader_is_recognised_and_reports_the_uid_and_the_part_3_atr(
    vpcd_slot: VpcdSlot,
) -> None:
    card = HceCard(generate_profile(5))
    personality = Acr122uPersonality(card, uid=UID)
    with serve_card_on_vpcd(personality, vpcd_slot), PcscTransport(vpcd_slot.reader) as reader:
        atr = reader.connect(10)
        assert atr == card.atr and atr[:4] == bytes.fromhex("3B868001")  # PC/SC Part 3
        assert reader.is_acr122u
        assert reader.uid() == UID
        assert reader.transmit(SELECT_PPSE)[-2:] == b"\x90\x00"  # the card answers the rest
        assert personality.pseudo_apdus == [bytes.fromhex("FF00480000"),
                                            bytes.fromhex("FFCA000000")]


def test_the_outcome_lights_the_leds_and_sounds_the_buzzer(vpcd_slot: VpcdSlot) -> None:
    personality = Acr122uPersonality(HceCard(generate_profile(5)), uid=UID)
    with serve_card_on_vpcd(personality, vpcd_slot), PcscTransport(vpcd_slot.reader) as reader:
        comb = {"aid": "A000000333010101", "kernel_id": 7, "ttq": "4600C080",
                "transaction_limit": 100000, "cvm_required_limit": 30000,
                "floor_limit": 10000, "application_version": "0030"}
        config = TerminalConfig.from_dict(TerminalConfig.defaults_dict()
                                          | {"combinations": [comb]})
        result = perform_transaction(reader, config, 1234, switch="none", card_timeout=10)
        assert result.final_outcome == Outcome.APPROVED, result.reason
        assert reader.feedback(result.final_outcome.value) is True
        assert reader.feedback("DECLINED") is True
    led = personality.reader
    approved, declined = ACR122U_FEEDBACK["APPROVED"], ACR122U_FEEDBACK["DECLINED"]
    assert led.led_commands == [approved[3:4] + approved[5:], declined[3:4] + declined[5:]]
    assert led.buzzes == 1 + 2  # one beep, then two
    assert led.leds == 0x00  # both end with the LEDs off (P2 final state bits 0)


def test_a_removed_card_is_card_removed_and_the_leds_need_the_reader_again(
    vpcd_slot: VpcdSlot,
) -> None:
    personality = Acr122uPersonality(HceCard(generate_profile(5)), uid=UID)
    with serve_card_on_vpcd(personality, vpcd_slot) as link, \
            PcscTransport(vpcd_slot.reader) as reader:
        reader.connect(10)
        link.remove_card()
        wait_for_reader(vpcd_slot.reader, present=False, timeout=10)
        with pytest.raises(CardRemovedError):
            reader.transmit(SELECT_PPSE)
        # no card: the pseudo-APDU needs a direct connection and SCardControl, which pcscd's
        # vpcd driver does not offer: the terminal reports it as not taken, never raises
        assert reader.feedback("OTHER") is False
        link.insert_card()
        reader.connect(10)
        assert reader.uid() == UID


def test_emvtap_card_run_with_the_acr122u_personality(vpcd_slot: VpcdSlot,
                                                      tmp_path: Path) -> None:
    profile = tmp_path / "card.json"
    emvtap = [sys.executable, "-m", "lab.cli"]
    subprocess.run([*emvtap, "perso", "--seed", "5", "--out", str(profile)], check=True,
                   capture_output=True, timeout=60)
    card = subprocess.Popen([*emvtap, "card", "run", "--profile", str(profile), "--link",
                             f"vpcd:127.0.0.1:{vpcd_slot.port}", "--personality", "acr122u"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_reader(vpcd_slot.reader, present=True, timeout=30)
        with PcscTransport(vpcd_slot.reader) as reader:
            reader.connect(10)
            assert reader.is_acr122u
            uid = reader.uid()
            assert uid is not None and len(uid) == 4 and uid[0] == 0x08  # a random UID
    finally:
        card.terminate()
        card.wait(10)
    wait_for_reader(vpcd_slot.reader, present=False, timeout=10)


def test_the_personality_is_for_pc_sc_links_only(tmp_path: Path) -> None:
    profile = tmp_path / "card.json"
    emvtap = [sys.executable, "-m", "lab.cli"]
    subprocess.run([*emvtap, "perso", "--seed", "5", "--out", str(profile)], check=True,
                   capture_output=True, timeout=60)
    started = time.monotonic()
    proc = subprocess.run([*emvtap, "card", "run", "--profile", str(profile), "--link",
                           "nfc:sim:pn533:127.0.0.1:1", "--personality", "acr122u"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "use it with --link vpcd" in proc.stderr
    assert "Traceback" not in proc.stderr and time.monotonic() - started < 60
