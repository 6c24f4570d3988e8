"""``emvtap bench``: the card emulator as a test bench that attacks terminals."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["bench"]


@click.group("bench")
def bench() -> None:
    """Attack a terminal with the lying card and judge its verdicts."""


@bench.command("attack", epilog="""\b
Examples:
  emvtap bench attack --list
  emvtap bench attack --terminal vpcd --json bench.json --junit bench.xml
  emvtap bench attack --assertions tests/assertions/contactless.yaml --attack EP.PR
  emvtap bench attack --terminal prompt --card-link nfc:usb:054c:06c3 --attack ctq-cdcvm-offline""")
@click.option("--terminal", "kind", type=click.Choice(["loopback", "vpcd", "nfc-udp", "prompt"]),
              default="loopback", show_default=True,
              help="loopback: our terminal in-process; vpcd / nfc-udp: our terminal over "
                   "pcscd or nfcpy udp; prompt: any terminal, a person taps the card.")
@click.option("--card-link", default="", metavar="LINK",
              help="prompt mode: where the card is served (nfc:usb:VID:PID on a second "
                   "reader, vpcd:HOST:PORT for a PC/SC terminal application).")
@click.option("--attack", "names", default="all", show_default=True, metavar="NAME[,NAME…]",
              help="Catalogue attacks to run (with --assertions: assertion ids or id "
                   "prefixes such as EP.PR).")
@click.option("--attack-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML attack file (replaces --attack).")
@click.option("--assertions", "assertions_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Run a test-assertion table (YAML) instead of attacks.")
@click.option("--list", "list_only", is_flag=True, help="List the catalogue and exit.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the JSON report here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write a JUnit XML report here.")
@click.option("--apdu-timeout", type=float, default=10.0, show_default=True,
              help="vpcd: seconds one command may take before the card counts as gone.")
@click.option("--seed", type=int, default=1, show_default=True, help="Card profiles' seed.")
def attack(kind: str, card_link: str, names: str, attack_file: str | None,
           assertions_path: str | None, list_only: bool, json_path: Path | None,
           junit_path: Path | None, apdu_timeout: float, seed: int) -> None:
    """Run the attack catalogue (or a test-assertion table) against a terminal; exit 0 when
    every verdict is the expected one, 1 otherwise."""
    from rich.console import Console

    from hce_card.attacks import AttackError, catalogue, load_attack_file, resolve
    from lab.assertions import load_assertions
    from lab.attack_bench import bench_terminal, render_table, run_bench, write_reports

    console = Console(width=160) if not sys.stdout.isatty() else Console()
    if list_only:
        for a in catalogue():
            console.print(f"[bold]{a.id}[/] ({a.family}, rule {a.kernel_rule}): {a.title} - "
                          f"expected {a.expected.text}; source {a.source}")
        return
    try:
        if assertions_path:
            attacks, row_kind = load_assertions(assertions_path), "assertion"
            if names != "all":  # --attack picks assertion ids (or id prefixes) here
                wanted = [n.strip() for n in names.split(",")]
                attacks = [a for a in attacks if any(a.id == w or a.id.startswith(w + ".")
                                                     for w in wanted)]
                if not attacks:
                    raise AttackError(f"no assertion id matches {names!r}")
        else:
            attacks = load_attack_file(attack_file) if attack_file else resolve(names)
            row_kind = "attack"
    except AttackError as exc:
        raise click.UsageError(str(exc)) from exc

    def progress(row):  # type: ignore[no-untyped-def]
        mark = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]",
                "not run": "[yellow]not run[/]"}[row.status]
        console.print(f"{row.attack.id}: {mark}" + ("" if row.passed else f" {row.why}"))

    try:
        with bench_terminal(kind, card_link=card_link, apdu_timeout=apdu_timeout) as terminal:
            rows = run_bench(terminal, attacks, seed=seed, kind=row_kind, progress=progress)
    except (ValueError, RuntimeError) as exc:
        raise click.UsageError(str(exc)) from exc
    render_table(rows, console)
    write_reports(rows, kind, json_path, junit_path)
    failed = [r for r in rows if r.status == "fail"]
    skipped = sum(r.status == "not run" for r in rows)
    console.print(f"{len(rows) - len(failed) - skipped} of {len(rows)} as expected"
                  + (f", {skipped} not run on this terminal" if skipped else ""))
    sys.exit(1 if failed else 0)
