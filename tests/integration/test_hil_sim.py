"""The shipped HIL suite on the simulated rig (docs/hardware.md, Simulated readers): the
terminal reads through nfcpy's acr122 driver on a simulated ACR122U, the emulated cards are
served through nfcpy's pn533 driver on a simulated PN533, each scenario with a switch on a
fresh store. Every scenario passes, except the ones that need a real card in a person's hand
and the ones this build is known not to support on an nfc link - which must say exactly
that."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_hil_virtual import HARDWARE_ONLY, SCENARIOS, SUITE, run

from lab.hil.model import Scenario
from lab.hil.results import ScenarioResult, Status
from lab.hil.rigs import VirtualSimRig

pytestmark = pytest.mark.timeout(400)

#: scenario → what this build lacks for it on an nfc link.
NOT_ON_AN_NFC_LINK = {
    "applet-quick-path":
        "the Java Card applet (jcardsim bridge, emvtap card run --applet) on an nfc link",
}


def assert_as_expected(result: ScenarioResult) -> None:
    if result.id in HARDWARE_ONLY:
        assert result.status is Status.NOT_RUN, result.message
        assert "needs real readers and a person" in result.message
        return
    if result.id in NOT_ON_AN_NFC_LINK:
        assert result.status is Status.UNSUPPORTED, result.message
        assert result.message.startswith("not supported by this build: "
                                         + NOT_ON_AN_NFC_LINK[result.id])
        return
    assert result.status is Status.PASSED, f"{result.message} (logs: {result.workdir})"
    assert result.taps, "a scenario that passes has tapped"
    for step in result.taps:
        assert step.timing is not None and step.timing.apdus, step.title


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_scenario_on_the_simulated_acr122u_and_pn533(scenario: Scenario,
                                                     tmp_path: Path) -> None:
    rig = VirtualSimRig("acr122", "pn533")
    result = run(scenario, rig, tmp_path)
    assert result.rig == "virtual-sim"
    assert_as_expected(result)


def test_emvtap_hil_run_via_sim_from_the_command_line(tmp_path: Path) -> None:
    """As docs/hardware.md prints it, on two scenarios (the whole suite runs above)."""
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "hil", "run", str(SUITE), "--virtual", "--via", "sim",
         "--sim-chips", "rcs380:rcs380", "-k", "offline-fdda", "-k", "card-pulled",
         "--json", str(report)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = report.read_text()
    assert '"virtual-sim"' in text and "offline-fdda" in text and "card-pulled-mid-tap" in text


def test_an_emulator_chip_that_cannot_emulate_is_refused_with_the_reason() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "hil", "run", str(SUITE), "--virtual", "--via", "sim",
         "--sim-chips", "pn533:acr122"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "the acr122 cannot emulate a card" in proc.stderr
    assert "Traceback" not in proc.stderr
