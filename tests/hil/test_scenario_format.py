"""The scenario format (docs/hil.md): the shipped suite loads, and a scenario that says
something the runner cannot do is refused with the file and the place in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.hil.loader import (
    FORMAT,
    ScenarioError,
    find_scenarios,
    load_scenario,
    load_scenarios,
    parse_amount,
)
from lab.hil.model import (
    CardForm,
    CardRef,
    EventStep,
    PersoSource,
    ProvisionSource,
    RemoveStep,
    ReplenishStep,
    TapStep,
)

SUITE = Path(__file__).resolve().parents[2] / "scenarios"

#: The HIL mission (docs/hil.md), scenario by scenario (the shipped suite must cover each).
MISSION = {
    "quick-path-online", "offline-fdda", "cvm-limit-cdcvm", "cvm-limit-online-pin",
    "token-suspend-resume", "device-lost", "card-cancelled", "issuer-script-block",
    "hce-limited-use-keys", "card-pulled-mid-tap", "real-card-capk",
}

MINIMAL = f"""
format: {FORMAT}
title: t
cards:
  phone: {{form: hce, perso: {{seed: 1}}}}
steps:
  - tap: {{amount: 1.00}}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_suite_loads_and_covers_the_mission() -> None:
    scenarios = load_scenarios([SUITE])
    assert {s.id for s in scenarios} >= MISSION
    assert all(s.steps for s in scenarios)


def test_only_the_real_card_scenario_needs_hardware() -> None:
    hardware = {s.id for s in load_scenarios([SUITE]) if s.hardware_only}
    assert hardware == {"real-card-capk"}


def test_a_minimal_scenario_reads_into_the_model(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, MINIMAL))
    assert s.id == "s" and s.title == "t" and s.switch
    assert s.cards["phone"].form is CardForm.HCE
    assert s.cards["phone"].source == PersoSource(seed=1)
    (tap,) = s.steps
    assert isinstance(tap, TapStep)
    assert (tap.card, tap.amount, tap.amount_text, tap.repeat) == ("phone", 100, "1.00", 1)
    assert tap.issuer_update and tap.pull_after is None


def test_every_step_kind_reads(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, f"""
format: {FORMAT}
title: all kinds
cards:
  a: {{form: hce, provision: {{device: d1, device_type: hce}}, cdcvm: true}}
  b: {{form: hce, provision: {{device: d1, span: shared}}}}
steps:
  - tap: {{card: a, amount: "350.00", pin: "1234", repeat: 2, pull_after: 3}}
    expect: {{final_outcome: [APPROVED, DECLINED], cvm: cdcvm, response_code: "00"}}
    budget: {{tap_ms: 400}}
  - event: {{name: device.lost, subject: b.device, channel: device, via: cli}}
    expect: {{affected: 2}}
  - event: {{name: token.suspend, subject: "6250940000000000", channel: bank}}
  - replenish: {{card: a, count: 5}}
  - remove: a
  - present: b
"""))
    tap, lost, suspend, replenish, remove, _present = s.steps
    assert isinstance(tap, TapStep) and tap.pin == "1234" and tap.budget
    assert tap.expect.checks["final_outcome"] == ("APPROVED", "DECLINED")
    assert tap.expect.checks["cvm"] == "CONFIRMATION CODE VERIFIED"
    assert isinstance(lost, EventStep) and lost.subject == CardRef("b", "device")
    assert lost.via == "cli" and lost.affected == 2
    assert isinstance(suspend, EventStep) and suspend.subject == "6250940000000000"
    assert replenish == ReplenishStep("a", 5)
    assert remove == RemoveStep("a")
    assert s.cards["b"].source == ProvisionSource(device="d1", span="shared")


@pytest.mark.parametrize(("fragment", "replacement", "message"), [
    ("tap: {amount: 1.00}", "tap: {amout: 1.00}", "steps[0].tap: unknown key(s) ['amout']"),
    ("tap: {amount: 1.00}", "tap: {amount: 1.001}", "steps[0].tap.amount: 1.001"),
    ("tap: {amount: 1.00}", "tap: {amount: 1.00, card: watch}", "no card 'watch'"),
    ("tap: {amount: 1.00}", "tap: {amount: 1.00}\n    expect: {final: APPROVED}",
     "steps[0].expect: unknown key(s) ['final']"),
    ("tap: {amount: 1.00}", "tap: {amount: 1.00}\n    expect: {outcome: OK}",
     "'OK' is not a outcome"),
    ("tap: {amount: 1.00}", "tap: {amount: 1.00}\n    expect: {tvr_set: [bad_bit]}",
     "unknown TVR bits ['bad_bit']"),
    ("tap: {amount: 1.00}", "tap: {amount: 1.00}\n    expect: {response_code: 123}",
     "two characters"),
    ("tap: {amount: 1.00}", "tap: {amount: 1.00, pin: 12}", "a PIN is 4 to 12 digits"),
    ("tap: {amount: 1.00}", "replenish: phone", "not an HCE wallet card"),
    ("tap: {amount: 1.00}", "event: {name: x, subject: phone.pan, channel: bank}",
     "a card reference ends in one of"),
    ("tap: {amount: 1.00}", "event: {name: x, subject: phone.mpan, channel: wallet}",
     "'wallet' is not one of"),
    ("tap: {amount: 1.00}", "present: phone\n    expect: {outcome: APPROVED}",
     "a present step has no expectations"),
    ("{form: hce, perso: {seed: 1}}", "{form: real, perso: {seed: 1}}",
     "a real card has no profile"),
    ("{form: hce, perso: {seed: 1}}", "{form: hce}", "needs exactly one of"),
    ("{form: hce, perso: {seed: 1}}", "{form: nfc, perso: {seed: 1}}", "'nfc' is not one of"),
    (f"format: {FORMAT}", "format: emvtap-hil-scenario/9", "this runner reads"),
    ("title: t", "title: t\nterminal: {config: {floor: 1}}", "unknown key(s) ['floor']"),
])
def test_a_wrong_scenario_is_refused_with_its_place(tmp_path: Path, fragment: str,
                                                     replacement: str, message: str) -> None:
    assert fragment in MINIMAL
    path = write(tmp_path, MINIMAL.replace(fragment, replacement, 1))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_two_scenarios_with_one_id_are_refused(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "id: same\n", "a.yaml")
    write(tmp_path, MINIMAL + "id: same\n", "b.yaml")
    with pytest.raises(ScenarioError, match="id 'same' is also used"):
        load_scenarios([tmp_path])


def test_a_directory_is_searched_for_yaml_in_order(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL, "b.yaml")
    write(tmp_path, MINIMAL, "a.yml")
    write(tmp_path, "not a scenario", "notes.txt")
    assert [p.name for p in find_scenarios([tmp_path])] == ["a.yml", "b.yaml"]
    with pytest.raises(ScenarioError, match="no such scenario"):
        find_scenarios([tmp_path / "missing.yaml"])


@pytest.mark.parametrize(("value", "minor", "text"), [
    (150, 15000, "150.00"), (150.0, 15000, "150.00"), ("0.01", 1, "0.01"), (12.34, 1234, "12.34"),
])
def test_amounts_are_major_units(value: object, minor: int, text: str) -> None:
    assert parse_amount(value) == (minor, text)


@pytest.mark.parametrize("value", ["-1", "1.234", "abc", True, None])
def test_bad_amounts_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_amount(value)
