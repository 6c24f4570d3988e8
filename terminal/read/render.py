"""The human view of a card read: a tree per application - summary, FCI, GPO, records, GET
DATA, transaction log, certificate chain - each data element with its name and meaning."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from .report import CardReport

__all__ = ["add_nodes", "render_report"]


def add_nodes(tree: Tree, items: list[dict[str, Any]]) -> None:
    for n in items:
        head = f"[bold]{n['tag']}[/] {escape(n['name'])} [dim]\\[{n['length']}][/]"
        if "children" in n:
            add_nodes(tree.add(head), n["children"])
            continue
        decoded = n.get("decoded")
        line = f"{head} {n['value']}"
        if decoded:
            line += f" [green]{escape(decoded['summary'])}[/]"
        branch = tree.add(line)
        for detail in (decoded or {}).get("details", []):
            if detail != decoded["summary"]:
                branch.add(f"[green]{escape(detail)}[/]")


def _sw(item: dict[str, Any]) -> str:
    style = "green" if item.get("sw") == "9000" else "yellow"
    return f"[{style}]{item.get('sw')} {escape(item.get('meaning', ''))}[/]"


def _certificates(tree: Tree, cert: dict[str, Any] | None) -> None:
    if cert is None:
        return
    node = tree.add("[bold]certificate chain[/]"
                    + (f" (CAPK {cert['capk']}, {'known' if cert.get('capk_known') else 'unknown'})"
                       if "capk" in cert else ""))
    for part in ("issuer", "icc"):
        info = cert.get(part)
        if not info:
            continue
        if info.get("recovered"):
            text = (f"{part} key recovered: {info['key']['bits']} bits, expires {info['expiry']}"
                    + (" [red](expired)[/]" if info.get("expired") else "")
                    + (", PAN matches" if info.get("pan_matches") else ""))
            if part == "issuer":
                text += f", issuer identifier {info['issuer_identifier']}"
            node.add(f"[green]{text}[/]")
        else:
            node.add(f"[red]{part} certificate not recovered: {escape(info.get('error', ''))}[/]")
    ssad = cert.get("ssad")
    if ssad is not None:
        node.add(f"[green]SSAD (SDA) verified, data authentication code "
                 f"{ssad['data_authentication_code']}[/]" if ssad["verified"]
                 else f"[red]SSAD (SDA) not verified: {escape(ssad['error'])}[/]")
    for why in cert.get("not_verified", []):
        node.add(f"[yellow]not verified: {escape(why)}[/]")


def render_report(report: CardReport, console: Console | None = None, *,
                  apdus: bool = False) -> None:
    console = console or Console()
    doc = report.to_json()
    root = Tree(f"[bold]{escape(report.reader)}[/] ATR {doc['atr']} ({doc['interface']})")
    d = doc["directory"]
    dir_node = root.add(f"[bold]directory[/]: {d['source'] or 'none found'}")
    for attempt in d["attempts"]:
        dir_node.add(f"SELECT {attempt['name']}: {_sw(attempt)}"
                     + (f" [red]{escape(attempt['error'])}[/]" if attempt.get("error") else ""))
    for entry in d["entries"]:
        dir_node.add(f"{entry['aid']} {escape(entry['label'])} "
                     f"[dim]{escape(entry['scheme'])}"
                     + (f", priority {entry['priority']}" if entry["priority"] else "") + "[/]")
    for app in doc["applications"]:
        node = root.add(f"[bold cyan]{app['aid']}[/] {escape(app['label'] or '')} "
                        f"[dim]{escape(app['scheme'])}[/]")
        node.add(f"SELECT: {_sw(app['select'])}" if app["select"] else "SELECT: not sent")
        keys = [k for k in ("pan", "expiry", "preferred_name", "aip", "afl", "atc")
                if app.get(k) is not None]
        summary = node.add("[bold]summary[/]") if keys else node
        for key in keys:
            decoded = app.get(f"{key}_decoded", {})
            extra = (", ".join(decoded["details"]) if key == "aip" and decoded.get("details")
                     else decoded.get("summary", ""))
            summary.add(f"{key}: {escape(str(app[key]))}"
                        + (f" [green]{escape(extra)}[/]" if extra else ""))
        if app["fci"]:
            add_nodes(node.add("[bold]FCI[/]"), app["fci"])
        if app["gpo"]:
            gpo = node.add(f"[bold]GET PROCESSING OPTIONS[/] {_sw(app['gpo'])} "
                           f"[dim](format {app['gpo'].get('format', '-')})[/]")
            gpo.add(f"[yellow]{escape(app['gpo']['note'])}[/]")
            add_nodes(gpo, app["gpo"].get("response", []))
        if app["records"]:
            recs = node.add(f"[bold]records[/] ({len(app['records'])})")
            for r in app["records"]:
                branch = recs.add(f"SFI {r['sfi']} record {r['record']}"
                                  + (" [dim](ODA)[/]" if r["oda"] else "") + f" {_sw(r)}")
                add_nodes(branch, r.get("tlv", []))
        if app["get_data"]:
            gd = node.add("[bold]GET DATA[/]")
            for item in app["get_data"]:
                branch = gd.add(f"{item['tag']}: {_sw(item)}")
                add_nodes(branch, item.get("tlv", []))
        if app["transaction_log"]:
            log = node.add(f"[bold]transaction log[/] ({len(app['transaction_log'])})")
            for e in app["transaction_log"]:
                log.add(", ".join(f"{k} {escape(str(v))}" for k, v in e.items() if k != "raw"))
        _certificates(node, app["certificates"])
        for err in app["errors"]:
            node.add(f"[red]{escape(err)}[/]")
    for err in doc["errors"]:
        root.add(f"[bold red]{escape(err)}[/]")
    if apdus:
        log_node = root.add(f"[bold]APDUs[/] ({len(doc['apdus'])})")
        for a in doc["apdus"]:
            log_node.add(f"{escape(a['label'])}: → {a['c']} ← {a['r']} {_sw(a)}")
    console.print(root, highlight=False)
    for note in doc["notes"]:
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False)
