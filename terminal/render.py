"""Human output of a tap: the APDU trace with decoded TLV, then the outcome (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from terminal.outcome import Outcome, TransactionResult

__all__ = ["render_result"]

_STYLE = {
    Outcome.APPROVED: "bold green",
    Outcome.DECLINED: "bold red",
    Outcome.ONLINE_REQUEST: "bold yellow",
}


def render_result(result: TransactionResult, console: Console | None = None,
                  trace: bool = True) -> None:
    console = console or Console()
    if trace:
        for apdu in result.apdus:
            console.print(f"[cyan]→ {apdu['name']}[/] [dim]{apdu['c']}[/]")
            console.print(f"[magenta]← {apdu['sw']} {apdu['sw_meaning']}[/] "
                          f"[dim]({apdu['ms']} ms)[/]")
            if apdu.get("r"):
                console.print(apdu.get("decoded") or apdu["r"], highlight=False)
    table = Table(show_header=False, box=None)
    rows = [
        ("AID", f"{result.aid} {result.label}".strip()),
        ("kernel / path", f"{result.kernel_id} / {result.path}"),
        ("PAN", result.pan_masked),
        ("cryptogram", f"{result.cryptogram_type_name} {result.cryptogram} ATC {result.atc}"),
        ("CVM", f"{result.cvm} (9F34 {result.cvm_results.hex().upper()})"),
        ("ODA", f"{result.oda_method}: {result.oda_result}"),
        ("TVR / TSI", f"{result.tvr.hex().upper()} / {result.tsi.hex().upper()}"),
        ("tap", f"{result.tap_seconds * 1000:.1f} ms, {len(result.apdus)} APDUs"),
    ]
    if result.issuer_script_results:
        rows.append(("script results", result.issuer_script_results.hex().upper()))
    if result.issuer_update:
        u = result.issuer_update
        rows.append(("issuer update", str(u.get("result", ""))
                     + (f", 9F5B {u['script_results']}" if u.get("script_results") else "")))
    if result.online:
        o = result.online
        rows.append(("online", f"{o.get('switch')} → "
                     + (o.get("error") or f"DE 39 = {o.get('response_code')}, "
                        f"ARPC {o.get('arpc') or 'none'}")))
    for k, v in rows:
        table.add_row(f"[bold]{k}[/]", v)
    if trace and result.steps:
        for text in result.steps:
            console.print(f"[dim]· {text}[/]", highlight=False)
    final = result.final_outcome or result.outcome
    title = str(final) if final == result.outcome else f"{result.outcome} → {final}"
    console.print(Panel(table, title=f"[{_STYLE.get(final, 'bold')}]{title}[/]",
                        subtitle=result.reason, subtitle_align="left"))
