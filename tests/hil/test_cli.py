"""``emvtap hil`` from the command line, where no reader is needed to tell the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.hil.loader import load_scenarios
from lab.hil_cli import hil

SUITE = Path(__file__).resolve().parents[2] / "scenarios"
NO_READERS = {"EMVTAP_TERMINAL_READER": None, "EMVTAP_EMULATOR_READER": None}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_list_checks_and_names_every_shipped_scenario(runner: CliRunner) -> None:
    done = runner.invoke(hil, ["list", str(SUITE)], env=NO_READERS)
    assert done.exit_code == 0, done.output
    for s in load_scenarios([SUITE]):
        assert f"{s.id}: {s.title}" in done.output
    assert "real-card-capk" in done.output and "real readers only" in done.output


def test_run_needs_readers_or_virtual(runner: CliRunner) -> None:
    done = runner.invoke(hil, ["run", str(SUITE)], env=NO_READERS)
    assert done.exit_code == 2
    assert "--terminal" in done.output and "--virtual" in done.output


def test_a_broken_scenario_file_exits_2_with_its_place(runner: CliRunner,
                                                       tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: emvtap-hil-scenario/1\ntitle: x\ncards: {}\nsteps: []\n")
    done = runner.invoke(hil, ["run", str(bad), "--virtual"], env=NO_READERS)
    assert done.exit_code == 2
    assert f"{bad}: cards: declare at least one card" in done.output


def test_the_real_card_scenario_is_not_run_virtually_and_says_so(runner: CliRunner,
                                                                  tmp_path: Path) -> None:
    report = tmp_path / "hil.json"
    done = runner.invoke(hil, ["run", str(SUITE / "real-card-capk.yaml"), "--virtual",
                               "--via", "nfc", "--json", str(report)], env=NO_READERS)
    assert done.exit_code == 0, done.output
    (scenario,) = json.loads(report.read_text())["scenarios"]
    assert (scenario["id"], scenario["rig"], scenario["status"]) == (
        "real-card-capk", "virtual-nfc", "not-run")
    assert "needs real readers and a person" in scenario["message"]


def test_emulated_cards_on_real_readers_need_the_emulator(runner: CliRunner,
                                                          tmp_path: Path) -> None:
    report = tmp_path / "hil.xml"
    done = runner.invoke(hil, ["run", str(SUITE / "offline-fdda.yaml"), "--terminal",
                               "pcsc:ACR122U", "--junit", str(report)], env=NO_READERS)
    assert done.exit_code == 0, done.output
    text = report.read_text()
    assert 'name="offline-fdda"' in text and "--emulator nfc:usb" in text


def test_list_json_names_every_scenario_with_its_format(runner: CliRunner) -> None:
    done = runner.invoke(hil, ["list", str(SUITE), "--json", "-"], env=NO_READERS)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["format"] == {"name": "emvtap.hil.list", "version": 1}
    assert [s["id"] for s in doc["scenarios"]] == [s.id for s in load_scenarios([SUITE])]
    assert "real-card-capk" in done.stderr  # the human lines went to stderr
