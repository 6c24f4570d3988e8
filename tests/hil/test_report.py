"""The three reports: JUnit XML that CI tools read, JSON with per-APDU timings, and the
console table."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from rich.console import Console

from lab.hil.report import REPORT_FORMAT, console_report, counts, json_report, junit_xml
from lab.hil.results import ScenarioResult, Status, StepResult, TapTiming


def results() -> list[ScenarioResult]:
    timing = TapTiming(connect_ms=120.0, in_field_ms=612.5, online_ms=3.2, apdus=[
        {"name": "SELECT PPSE", "sw": "9000", "ms": 1.5, "presentation": 1},
        {"name": "GET PROCESSING OPTIONS", "sw": "9000", "ms": 180.0, "presentation": 1},
    ])
    tap = StepResult(0, "tap", "tap phone 150.00", tap={"final_outcome": "APPROVED",
                                                         "cvm": "NO CVM", "response_code": "00"},
                     timing=timing, over_budget=["card in field 612.5 ms > 500 ms"])
    return [
        ScenarioResult("ok", "passes", "scenarios/ok.yaml", "virtual-pcsc", steps=[tap],
                       seconds=1.5),
        ScenarioResult("bad", "fails", "scenarios/bad.yaml", "virtual-pcsc", Status.FAILED,
                       "step 1: final_outcome: expected 'APPROVED', got 'DECLINED'"),
        ScenarioResult("new", "needs more", "scenarios/new.yaml", "virtual-nfc",
                       Status.UNSUPPORTED, "not supported by this build: module x"),
        ScenarioResult("real", "real card", "scenarios/real.yaml", "virtual-nfc",
                       Status.NOT_RUN, "not run on virtual-nfc: needs real readers"),
        ScenarioResult("broke", "rig", "scenarios/broke.yaml", "virtual-nfc", Status.ERROR,
                       "RigError: the switch exited"),
    ]


def test_counts_name_every_status() -> None:
    assert counts(results()) == {"passed": 1, "failed": 1, "error": 1, "unsupported": 1,
                                 "not-run": 1}


def test_junit_has_a_suite_per_rig_and_says_why_a_scenario_was_skipped() -> None:
    root = ET.fromstring(junit_xml(results()))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"emvtap-hil.virtual-pcsc", "emvtap-hil.virtual-nfc"}
    pcsc, nfc = suites["emvtap-hil.virtual-pcsc"], suites["emvtap-hil.virtual-nfc"]
    assert (pcsc.get("tests"), pcsc.get("failures"), pcsc.get("skipped")) == ("2", "1", "0")
    assert (nfc.get("tests"), nfc.get("errors"), nfc.get("skipped")) == ("3", "1", "2")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["bad"].find("failure") is not None
    assert cases["broke"].find("error") is not None
    skipped = cases["new"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not supported by this build: module x"
    out = cases["ok"].findtext("system-out") or ""
    assert "in field 612.5 ms" in out and "over budget: card in field" in out


def test_json_keeps_every_apdu_timing_and_the_budget_flags() -> None:
    report = json_report(results(), datetime(2026, 11, 26, tzinfo=UTC))
    assert report["format"] == REPORT_FORMAT
    assert report["rigs"] == ["virtual-pcsc", "virtual-nfc"]
    ok = report["scenarios"][0]
    (step,) = ok["steps"]
    assert [a["ms"] for a in step["timing"]["apdus"]] == [1.5, 180.0]
    assert step["timing"]["in_field_ms"] == 612.5
    assert ok["over_budget"] == ["step 1: card in field 612.5 ms > 500 ms"]
    json.dumps(report)  # all of it serialises


def test_the_console_table_lists_each_scenario_and_what_is_missing() -> None:
    out = io.StringIO()
    console_report(results(), Console(file=out, width=200))
    text = out.getvalue()
    for scenario_id in ("ok", "bad", "new", "real", "broke"):
        assert scenario_id in text
    assert "not supported by this build: module x" in text
    assert "⚠ ok" in text
    assert "1 passed, 1 failed, 1 error, 1 unsupported, 1 not-run" in text
