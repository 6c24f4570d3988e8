"""The report of a run, three ways: a console table (rich), JUnit XML for CI, and JSON with every
tap's outcome and per-APDU timings (``format``: ``emvtap.hil.report`` version 1,
docs/json-formats.md).

Timing budgets show up as flags (a ``⚠`` in the table, ``over_budget`` in JSON, a line in the
JUnit test's output); they change the status only when the run asked for ``--strict-timing``.
In JUnit, ``unsupported`` and ``not-run`` scenarios are ``<skipped>`` whose message says which
("not supported by this build: …").
"""

from __future__ import annotations

import json
import platform
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lab.hil.results import ScenarioResult, Status, StepResult

__all__ = ["REPORT_FORMAT", "console_report", "counts", "json_report", "junit_xml",
           "tap_table", "write_reports"]

#: The JSON report's format (docs/json-formats.md).
REPORT_FORMAT = {"name": "emvtap.hil.report", "version": 1}

STYLES: dict[Status, str] = {
    Status.PASSED: "green",
    Status.FAILED: "bold red",
    Status.ERROR: "bold magenta",
    Status.UNSUPPORTED: "yellow",
    Status.NOT_RUN: "dim",
}


def counts(results: list[ScenarioResult]) -> dict[str, int]:
    """Scenarios per status (every status present, zero or not)."""
    c = Counter(r.status for r in results)
    return {str(s): c.get(s, 0) for s in Status}


def _tap_ms(result: ScenarioResult) -> str:
    taps = [s.timing.in_field_ms for s in result.taps if s.timing]
    if not taps:
        return "-"
    return f"{min(taps):.0f}-{max(taps):.0f}" if len(taps) > 1 else f"{taps[0]:.0f}"


def console_report(results: list[ScenarioResult], console: Console) -> None:
    """One row per scenario, then what went wrong where."""
    table = Table(title="emvtap hil", show_lines=False)
    for column, justify in (("scenario", "left"), ("rig", "left"), ("status", "left"),
                            ("taps", "right"), ("in field ms", "right"),
                            ("budget", "left"), ("s", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        flags = r.over_budget
        table.add_row(
            r.id, r.rig, f"[{STYLES[r.status]}]{r.status}[/]", str(len(r.taps)),
            _tap_ms(r), f"[yellow]⚠ {len(flags)}[/]" if flags else "ok", f"{r.seconds:.1f}",
        )
    console.print(table)
    for r in results:
        if r.status is not Status.PASSED:
            console.print(f"[{STYLES[r.status]}]{r.id}[/] ({r.rig}): {r.status_text}"
                          if r.status is Status.UNSUPPORTED else
                          f"[{STYLES[r.status]}]{r.id}[/] ({r.rig}, {r.status}): {r.message}")
        if r.workdir and r.status in (Status.FAILED, Status.ERROR):
            console.print(f"  [dim]logs and tap records: {r.workdir}[/]")
        for flag in r.over_budget:
            console.print(f"[yellow]⚠ {r.id}[/] {flag}")
    total = counts(results)
    console.print(", ".join(f"{n} {s}" for s, n in total.items() if n) or "no scenarios")


def tap_table(result: ScenarioResult) -> Table:
    """Every step of one scenario: taps with outcome, CVM, RC and timing."""
    table = Table(title=f"{result.id} ({result.rig})")
    for column in ("#", "step", "status", "final outcome", "cvm", "rc", "in field ms",
                   "slowest APDU"):
        table.add_column(column)
    for s in result.steps:
        tap = s.tap or {}
        slowest = s.timing.slowest if s.timing else None
        table.add_row(
            str(s.index + 1), s.title, f"[{STYLES[s.status]}]{s.status}[/]",
            str(tap.get("final_outcome") or ""), str(tap.get("cvm") or ""),
            str(tap.get("response_code") or ""),
            f"{s.timing.in_field_ms:.1f}" if s.timing else "",
            f"{slowest['name']} {slowest['ms']:.1f}" if slowest else "",
        )
    return table


def json_report(results: list[ScenarioResult], started: datetime) -> dict[str, Any]:
    return {
        "format": dict(REPORT_FORMAT),
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "rigs": list(dict.fromkeys(r.rig for r in results)),
        "started": started.isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "summary": counts(results),
        "scenarios": [r.to_json() for r in results],
    }


def _step_line(s: StepResult) -> str:
    line = f"step {s.index + 1} [{s.status}] {s.title}"
    if s.tap:
        line += (f": {s.tap.get('outcome')} → {s.tap.get('final_outcome')}, CVM "
                 f"{s.tap.get('cvm')}, RC {s.tap.get('response_code')}")
    if s.timing:
        line += f"; in field {s.timing.in_field_ms:.1f} ms, {len(s.timing.apdus)} APDUs"
    if s.message:
        line += f"; {s.message}"
    return line + "".join(f"\n  over budget: {m}" for m in s.over_budget)


def _suite(results: list[ScenarioResult], rig: str) -> ET.Element:
    total = counts(results)
    suite = ET.Element("testsuite", {
        "name": f"emvtap-hil.{rig}",
        "tests": str(len(results)),
        "failures": str(total[str(Status.FAILED)]),
        "errors": str(total[str(Status.ERROR)]),
        "skipped": str(total[str(Status.UNSUPPORTED)] + total[str(Status.NOT_RUN)]),
        "time": f"{sum(r.seconds for r in results):.3f}",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    for r in results:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"hil.{r.rig}", "name": r.id, "time": f"{r.seconds:.3f}",
            "file": r.path,
        })
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", {"name": "status", "value": str(r.status)})
        ET.SubElement(props, "property", {"name": "over_budget",
                                          "value": str(len(r.over_budget))})
        if r.status is Status.FAILED:
            ET.SubElement(case, "failure", {"message": r.message}).text = r.message
        elif r.status is Status.ERROR:
            ET.SubElement(case, "error", {"message": r.message}).text = r.message
        elif r.status in (Status.UNSUPPORTED, Status.NOT_RUN):
            ET.SubElement(case, "skipped", {"message": r.message})
        ET.SubElement(case, "system-out").text = "\n".join(_step_line(s) for s in r.steps)
    return suite


def junit_xml(results: list[ScenarioResult]) -> str:
    """JUnit XML: a testsuite per rig, a testcase per scenario."""
    root = ET.Element("testsuites")
    for rig in dict.fromkeys(r.rig for r in results):
        root.append(_suite([r for r in results if r.rig == rig], rig))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_reports(results: list[ScenarioResult], started: datetime, *,
                  junit: Path | None = None, json_path: Path | None = None) -> None:
    """The JUnit XML and JSON files a run was asked for."""
    if junit is not None:
        junit.write_text(junit_xml(results) + "\n")
    if json_path is not None and str(json_path) == "-":
        print(json.dumps(json_report(results, started), indent=1))
    elif json_path is not None:
        json_path.write_text(json.dumps(json_report(results, started), indent=1) + "\n")
