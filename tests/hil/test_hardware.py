"""The shipped suite on real readers (docs/hil.md): the terminal reader in
``EMVTAP_TERMINAL_READER`` (``pcsc:ACR122U``), the card-emulator reader in
``EMVTAP_EMULATOR_READER`` (``nfc:usb:04e6:5591``) laid on it, and a person at the desk for the
real card (prompts go to the terminal, past pytest's capture)::

    EMVTAP_TERMINAL_READER=pcsc:ACR122U EMVTAP_EMULATOR_READER=nfc:usb:04e6:5591 \\
        pytest tests/hil -m hil

Without both variables there are no real readers to run on, and these tests are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.hil.loader import load_scenarios
from lab.hil.model import Scenario
from lab.hil.person import ConsolePerson
from lab.hil.results import Status
from lab.hil.rigs import HardwareRig
from lab.hil.runner import RunOptions, run_scenario

SUITE = Path(__file__).resolve().parents[2] / "scenarios"
TERMINAL = os.environ.get("EMVTAP_TERMINAL_READER", "")
EMULATOR = os.environ.get("EMVTAP_EMULATOR_READER", "")

#: Scenarios that do not run on real readers, by design (the applet runs in jcardsim on vpcd).
NOT_ON_HARDWARE = {"applet-quick-path"}

pytestmark = [
    pytest.mark.hil,
    pytest.mark.timeout(900),  # a person presents cards
    pytest.mark.skipif(not (TERMINAL and EMULATOR),
                       reason="no real readers: set EMVTAP_TERMINAL_READER and "
                              "EMVTAP_EMULATOR_READER to run the suite on them"),
]


@pytest.fixture(scope="module")
def rig() -> Iterator[HardwareRig]:
    person = ConsolePerson()
    rig = HardwareRig(TERMINAL, EMULATOR, person=person)
    rig.open()
    yield rig
    rig.close()
    person.close()


@pytest.mark.parametrize("scenario", load_scenarios([SUITE]), ids=lambda s: s.id)
def test_scenario_on_real_readers(rig: HardwareRig, scenario: Scenario, tmp_path: Path) -> None:
    result = run_scenario(scenario, rig, RunOptions(workdir=tmp_path))
    if scenario.id in NOT_ON_HARDWARE:
        assert result.status is Status.NOT_RUN, result.message
        return
    assert result.status is Status.PASSED, f"{result.message} (logs: {result.workdir})"
    for step in result.taps:
        assert step.timing is not None and step.timing.apdus, step.title
