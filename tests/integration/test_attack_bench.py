"""The attack catalogue against our own terminal over the real stacks: pcscd + vpcd (the whole
catalogue, through ``emvtap bench attack``, with its JSON and JUnit reports) and nfcpy's udp
radio (the attacks that need ISO-DEP, and a sample of the others).

Every attack must end in the verdict a correct terminal reaches (docs/attacks.md)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from hce_card.attacks import attacks_by_id, catalogue

pytestmark = pytest.mark.timeout(900)

def _params(ids: list[str]) -> list[object]:
    return [pytest.param(i, id=i) for i in ids]


def _bench(tmp: Path, terminal: str, attacks: str) -> tuple[dict, ET.Element, int]:
    report, junit = tmp / "bench.json", tmp / "bench.xml"
    done = subprocess.run(
        [sys.executable, "-m", "lab.cli", "bench", "attack", "--terminal", terminal,
         "--attack", attacks, "--json", str(report), "--junit", str(junit)],
        capture_output=True, text=True, timeout=900, check=False)
    assert report.exists(), done.stdout + done.stderr
    return json.loads(report.read_text()), ET.parse(junit).getroot(), done.returncode


@pytest.fixture(scope="module")
def vpcd_run(pcscd: None, tmp_path_factory: pytest.TempPathFactory) -> dict:
    doc, junit, code = _bench(tmp_path_factory.mktemp("vpcd"), "vpcd", "all")
    return {"doc": doc, "junit": junit, "code": code,
            "rows": {r["id"]: r for r in doc["rows"]}}


@pytest.mark.pcsc
def test_the_vpcd_report_has_its_format_every_attack_and_the_baselines(vpcd_run: dict) -> None:
    doc = vpcd_run["doc"]
    assert doc["format"] == "emvtap-attack-bench/1"
    assert doc["terminal"] == "vpcd"
    assert {a.id for a in catalogue()} <= set(vpcd_run["rows"])
    assert doc["summary"]["baseline_ok"] is True
    cases = {c.get("name"): c for c in vpcd_run["junit"].iter("testcase")}
    assert set(cases) == set(vpcd_run["rows"])
    failing = {i for i, r in vpcd_run["rows"].items() if r["result"] == "fail"}
    assert {c for c, e in cases.items() if e.find("failure") is not None} == failing
    assert vpcd_run["code"] == (1 if failing else 0)


@pytest.mark.pcsc
def test_every_attack_that_ran_shows_its_apdu_exchange(vpcd_run: dict) -> None:
    for attack_id, row in vpcd_run["rows"].items():
        if row["result"] != "not run":
            assert row["observed"]["apdus"], attack_id


@pytest.mark.pcsc
@pytest.mark.parametrize("attack_id", _params([a.id for a in catalogue()
                                               if "nfc" not in a.scenario.links
                                               or "vpcd" in a.scenario.links]))
def test_attack_over_pcscd_and_vpcd(vpcd_run: dict, attack_id: str) -> None:
    row = vpcd_run["rows"][attack_id]
    assert row["result"] == "pass", f"{attack_id}: {row['why']}"


NFC_SAMPLE = ["wtx-storm", "loop-61xx", "removal-during-gen-ac", "cda-unsigned-gen-ac",
              "expired-issuer-certificate", "brand-mixup-kernel-id", "malformed-tlv-length",
              "track2-pan-mismatch"]


@pytest.fixture(scope="module")
def nfc_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    doc, _, _ = _bench(tmp_path_factory.mktemp("nfc"), "nfc-udp", ",".join(NFC_SAMPLE))
    return {r["id"]: r for r in doc["rows"]}


@pytest.mark.parametrize("attack_id", _params(NFC_SAMPLE))
def test_attack_over_nfc_udp(nfc_run: dict, attack_id: str) -> None:
    row = nfc_run[attack_id]
    assert row["result"] == "pass", f"{attack_id}: {row['why']}"


@pytest.mark.pcsc
def test_prompt_mode_attacks_a_terminal_it_does_not_drive(vpcd_slot) -> None:  # type: ignore[no-untyped-def]
    """'Any terminal': the bench only serves the lying card (here on vpcd) and asks what the
    terminal showed; the terminal is a separate PC/SC client the bench knows nothing about."""
    from lab.attack_bench import open_terminal, run_bench
    from lab.hil.pcsc_watch import wait_for_reader
    from terminal.config import TerminalConfig
    from terminal.pay import perform_transaction
    from terminal.transport.pcsc import PcscTransport

    told: list[str] = []

    def person_at_the_terminal(prompt: str) -> str:
        wait_for_reader(vpcd_slot.reader, present=True, timeout=10.0)
        transport = PcscTransport(vpcd_slot.reader)
        try:
            amount = round(float(told[-1].split("purchase of ")[1].split()[0]) * 100)
            result = perform_transaction(transport, TerminalConfig.default(), amount,
                                         switch="none", card_timeout=10.0,
                                         rng=random.Random(0))  # no random online selection
        finally:
            transport.close()
        return str(result.outcome)

    bench = open_terminal("prompt", card_link=vpcd_slot.link_spec, ask=person_at_the_terminal,
                          tell=told.append)
    rows = run_bench(bench, [attacks_by_id()["wrong-sdad-cda"], attacks_by_id()["loop-6cxx"]])
    why = [(r.attack.id, r.why, r.observed.reason if r.observed else "") for r in rows]
    assert [(r.attack.id, r.status) for r in rows] == [
        ("baseline-mastercard", "pass"), ("baseline-quickpass", "pass"),
        ("wrong-sdad-cda", "pass"), ("loop-6cxx", "pass")], "\n".join(map(str, why))
    assert all(r.observed and r.observed.apdus for r in rows)
    assert "tap the card on vpcd:127.0.0.1:" in told[0]


@pytest.mark.pcsc
@pytest.mark.parametrize(("attack", "outcome", "exit_code"), [
    # fDDA failed, the CTQ says go online; no host: declined (exit 1)
    ("wrong-sdad-fdda", "ONLINE REQUEST", 1),
    ("removal-during-gen-ac", "TRY AGAIN", 3),
])
def test_card_run_with_an_attack_and_terminal_pay_in_separate_processes(
        vpcd_slot, tmp_path: Path, attack: str, outcome: str,  # type: ignore[no-untyped-def]
        exit_code: int) -> None:
    """The bench's other road: `emvtap card run --attack` as its own process on vpcd, and
    `emvtap terminal pay` reading it through pcscd."""
    from lab.attack_bench import scenario_profile
    from lab.hil.pcsc_watch import wait_for_reader

    card = attacks_by_id()[attack].scenario.card
    profile = tmp_path / "card.json"
    scenario_profile(card).save(profile)
    runner = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "card", "run", "--profile", str(profile), "--link",
         vpcd_slot.link_spec, "--attack", attack], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for_reader(vpcd_slot.reader, present=True, timeout=20.0)
        record = tmp_path / "tap.json"
        pay = subprocess.run(
            [sys.executable, "-m", "lab.cli", "terminal", "pay", "--reader",
             vpcd_slot.reader_spec, "--amount", "10.00", "--switch", "none", "--quiet",
             "--json", str(record), "--timeout", "10"],
            capture_output=True, text=True, timeout=120, check=False)
        tap = json.loads(record.read_text())
    finally:
        runner.terminate()
        out, err = runner.communicate(timeout=30)
    assert tap["outcome"] == outcome, tap["reason"]
    assert pay.returncode == exit_code
    assert f"attacks armed: {attack}" in err
    wait_for_reader(vpcd_slot.reader, present=False, timeout=20.0)
