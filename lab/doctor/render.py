"""The report on a terminal: a rich table, a row per check, then the verdict. (The JSON form is
:meth:`~lab.doctor.results.Report.to_json`.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.doctor.results import Report, Status

STATUS_STYLE: Mapping[Status, str] = {
    "ok": "green",
    "warn": "yellow",
    "fail": "bold red",
    "skip": "dim",
}


def render_table(report: Report, console: Any) -> None:
    """Print *report* on a rich ``Console``: a row per check, then each fix on a line of its
    own (never wrapped by us, so that it can be copied whole), then the verdict."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"emvtap doctor (role: {report.role})", show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for r in report.results:
        status = Text(r.status, style=STATUS_STYLE[r.status])
        detail = r.detail + (" (fix below)" if r.fix else "")
        table.add_row(r.name, status, Text(detail))
    console.print(table)
    fixes = [r for r in report.results if r.fix]
    if fixes:
        console.print(Text("fixes (copy each line as it is):", style="bold"))
    for r in fixes:
        console.print(Text(f"# {r.name}", style=STATUS_STYLE[r.status]))
        for line in str(r.fix).splitlines():
            console.print(Text(line), soft_wrap=True, highlight=False)
    failed = [r.name for r in report.results if r.status == "fail"]
    verdict = f"not ready for {report.role}: {', '.join(failed)} failed" if failed else "ready"
    console.print(
        Text(
            verdict if failed else f"ready for {report.role}",
            style="bold red" if failed else "bold green",
        )
    )
