"""``emvtap hil``: hardware-in-the-loop scenarios (docs/hil.md).

``emvtap hil run scenarios/ --terminal pcsc:ACR122U --emulator nfc:usb:04e6:5591`` runs them on
real readers, asking the person at the desk for what only a person can do; ``--virtual`` runs
the same scenarios on pcscd + vpcd and on nfcpy's udp radio, with nobody there.

Exit codes (emvtap.exit_codes): 0 every scenario that ran passed (unsupported and not-run
ones are listed, not failed); 1 a scenario failed or the rig broke; 2 a scenario file or the
options are wrong.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from emvtap.cli_support import check_writable, document, emit_json, human, json_option
from emvtap.exit_codes import ExitCode
from lab.hil.loader import ScenarioError, load_scenarios
from lab.hil.model import Scenario
from lab.hil.results import RigError, ScenarioResult, Status, StepResult

__all__ = ["hil"]

EXIT_FAILED, EXIT_BAD_INPUT = int(ExitCode.DECLINED), int(ExitCode.USAGE)
VIRTUAL_RIGS = ("pcsc", "nfc", "sim")
#: What --virtual runs without --via (sim, nfcpy's drivers on simulated chips, on request).
DEFAULT_VIRTUAL_RIGS = ("pcsc", "nfc")
MARKS = {Status.PASSED: "[green]✓[/]", Status.FAILED: "[red]✗[/]", Status.ERROR: "[magenta]![/]",
         Status.UNSUPPORTED: "[yellow]–[/]", Status.NOT_RUN: "[dim]·[/]"}


@click.group("hil", epilog="""\b
Examples:
  emvtap hil list scenarios/
  emvtap hil run scenarios/ --virtual
  emvtap hil run scenarios/ --terminal pcsc:ACR122U --emulator nfc:usb:04e6:5591""")
def hil() -> None:
    """Hardware-in-the-loop scenarios on real readers (or virtual ones)."""


def _load(paths: tuple[str, ...], select: tuple[str, ...]) -> list[Scenario]:
    try:
        scenarios = load_scenarios(paths)
    except ScenarioError as exc:
        click.echo(f"emvtap hil: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if select:
        scenarios = [s for s in scenarios if any(k in s.id for k in select)]
    return scenarios


def _vpcd_slot(text: str | None):  # type: ignore[no-untyped-def]
    from lab.hil.rigs import VpcdSlot

    if text is None:
        return None
    reader, sep, port = text.rpartition("=")
    if not sep or not port.isdigit():
        raise click.BadParameter("READER=PORT, e.g. 'Virtual PCD 00 01=35964'",
                                 param_hint="--vpcd")
    return VpcdSlot(reader, int(port))


def _progress(console):  # type: ignore[no-untyped-def]
    def on_step(scenario: ScenarioResult, step: StepResult) -> None:
        line = f"  {MARKS[step.status]} {step.index + 1}. {step.title}"
        if step.tap:
            line += (f": {step.tap.get('final_outcome')} (CVM {step.tap.get('cvm')}, RC "
                     f"{step.tap.get('response_code') or '-'})")
        if step.timing:
            line += f" [dim]{step.timing.in_field_ms:.0f} ms in field[/]"
        if step.over_budget:
            line += f" [yellow]⚠ {'; '.join(step.over_budget)}[/]"
        console.print(line)
        if step.message:
            console.print(f"     [dim]{step.message}[/]")

    return on_step


@hil.command(epilog="""\b
Example:
  emvtap hil record --reader pcsc:ACR122U --out my-card.json --card "a Visa debit test card"
Exit codes: 0 recorded, 2 a bad option (docs/exit-codes.md).""")
@click.option("--reader", required=True, help="The terminal reader (pcsc:…, nfc:usb:…, nfc:sim:…).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the trace (JSON, the format of tests/data/traces).")
@click.option("--card", "card_text", default="a card or phone recorded on a bench",
              help="What the card is (scheme, form, test or live) for the trace's 'card' field.")
@click.option("--amount", default="1.00", show_default=True, help="Amount in major units.")
@click.option("--switch", default="none", show_default=True,
              help="HOST:PORT of the switch, or 'none' (the tap stays offline).")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the card.")
def record(reader: str, out: Path, card_text: str, amount: str, switch: str,
           timeout: float) -> None:
    """Tap a card once and save the session as a redacted trace (PAN, tracks, name)."""
    import json

    from lab.hil.record import trace_of
    from terminal.cli import parse_amount
    from terminal.config import TerminalConfig
    from terminal.pay import perform_transaction
    from terminal.transport import open_transport

    config = TerminalConfig.load(None)
    try:
        minor = parse_amount(amount, config.transaction_currency_exponent)
        transport = open_transport(reader)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"present a card to {reader} …", err=True)
    try:
        result = perform_transaction(transport, config, minor, switch=switch,
                                     card_timeout=timeout)
        exchanges = [(e.command, e.response) for e in transport.exchanges]
    finally:
        transport.close()
    if not exchanges:
        raise click.ClickException(f"nothing recorded: {result.reason}")
    outcome = str(getattr(result.final_outcome, "value", result.final_outcome))
    trace = trace_of(exchanges, reader=reader, card=card_text, outcome=outcome,
                     reason=result.reason)
    out.write_text(json.dumps(trace, indent=1) + "\n")
    click.echo(f"{len(exchanges)} APDUs recorded ({outcome}); redacted: "
               f"{trace['notes'][1].split(';')[0].removeprefix('redacted before writing: ')}"
               f"; written to {out}")


@hil.command(epilog="""\b
Examples:
  emvtap hil run scenarios/ --virtual
  emvtap hil run scenarios/ --virtual --via nfc -k offline --json report.json
  emvtap hil run scenarios/ --terminal pcsc:ACR122U --emulator nfc:usb:04e6:5591 --details
Exit codes: 0 every scenario that ran passed, 1 one failed, 2 a scenario file or an option is
wrong (docs/exit-codes.md).""")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--terminal", envvar="EMVTAP_TERMINAL_READER", default=None,
              help="Terminal reader (pcsc:NAME|INDEX, nfc:usb:…); $EMVTAP_TERMINAL_READER.")
@click.option("--emulator", envvar="EMVTAP_EMULATOR_READER", default=None,
              help="Card-emulator reader (nfc:usb:VID:PID); $EMVTAP_EMULATOR_READER.")
@click.option("--virtual", is_flag=True,
              help="Virtual readers, nobody at the desk (--terminal/--emulator are ignored).")
@click.option("--via", "vias", multiple=True, type=click.Choice(VIRTUAL_RIGS),
              help="With --virtual: pcsc (pcscd + vpcd), nfc (nfcpy udp) and/or sim (nfcpy's "
                   "reader drivers on simulated chips); default pcsc and nfc.")
@click.option("--sim-chips", default="acr122:pn533", show_default=True,
              metavar="READER:EMULATOR",
              help="With --via sim: the simulated terminal reader and card-emulator reader "
                   "(pn533, rcs380, acr122; the ACR122U cannot emulate).")
@click.option("--vpcd", default=None, metavar="READER=PORT",
              help="With --via pcsc: a vpcd slot the caller holds (default: lock a free one).")
@click.option("--udp-port", type=int, default=None,
              help="With --via nfc: this UDP port for every scenario (default: a free one each).")
@click.option("-k", "select", multiple=True, help="Only scenarios whose id contains this.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=lambda _c, _p, v: v if v is None else check_writable(v, "--junit"),
              help="Write a JUnit XML report here.")
@json_option("the report (every step, per-APDU timings)")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep each scenario's logs, card files and tap records under this directory.")
@click.option("--keep", is_flag=True, help="Keep the temporary work directories.")
@click.option("--strict-timing", is_flag=True,
              help="Over-budget taps fail (default: reported and flagged only).")
@click.option("--details", is_flag=True, help="A table of every step of every scenario.")
def run(paths: tuple[str, ...], terminal: str | None, emulator: str | None, virtual: bool,
        vias: tuple[str, ...], sim_chips: str, vpcd: str | None, udp_port: int | None,
        select: tuple[str, ...],
        junit: Path | None, json_path: Path | None, workdir: Path | None, keep: bool,
        strict_timing: bool, details: bool) -> None:
    """Run the scenarios in PATHS (files, or directories of *.yaml)."""
    from rich.console import Console

    from lab.hil.report import console_report, tap_table, write_reports
    from lab.hil.rigs import HardwareRig, Rig, VirtualNfcRig, VirtualPcscRig, VirtualSimRig
    from lab.hil.runner import RunOptions, run_scenarios

    if not virtual and not terminal:
        raise click.UsageError("name the terminal reader (--terminal) or run --virtual")
    scenarios = _load(paths, select)
    console = Console(stderr=True)
    rigs: list[Rig]
    if virtual:
        vias = vias or DEFAULT_VIRTUAL_RIGS
        try:
            rigs = [VirtualPcscRig(_vpcd_slot(vpcd)) if via == "pcsc" else
                    VirtualSimRig.from_chips(sim_chips) if via == "sim" else
                    VirtualNfcRig(udp_port) for via in vias]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--sim-chips") from exc
    else:
        rigs = [HardwareRig(str(terminal), emulator or "")]
    options = RunOptions(workdir=workdir, keep=keep, strict_timing=strict_timing,
                         on_step=_progress(console))
    started = datetime.now(UTC)
    results: list[ScenarioResult] = []
    for rig in rigs:
        console.rule(f"{rig.name}: {len(scenarios)} scenario(s)")
        try:
            results += run_scenarios(scenarios, rig, options, on_start=lambda s, r=rig:
                                     console.print(f"[bold]{s.id}[/] on {r.name}: {s.title}"))
        except RigError as exc:
            console.print(f"[bold magenta]{rig.name}: {exc}[/]")
            results += [ScenarioResult(s.id, s.title, str(s.path), rig.name, Status.ERROR,
                                       f"rig: {exc}") for s in scenarios]
    console_report(results, console)
    if details:
        for r in results:
            console.print(tap_table(r))
    write_reports(results, started, junit=junit, json_path=json_path)
    sys.exit(0 if all(r.status.ok for r in results) else EXIT_FAILED)


@hil.command("list", epilog="""\b
Examples:
  emvtap hil list scenarios/
  emvtap hil list scenarios/offline-fdda.yaml --json -""")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@json_option("the scenarios")
def list_scenarios(paths: tuple[str, ...], json_path: Path | None) -> None:
    """Check the scenario files and list what each one does and needs."""
    echo = human(json_path)
    listed = []
    for s in _load(paths, ()):
        forms = sorted({str(c.form) for c in s.cards.values()})
        where = "real readers only" if s.hardware_only else "real or virtual readers"
        echo(f"{s.id}: {s.title}")
        echo(f"  {len(s.steps)} steps, cards: {', '.join(forms)}; {where}")
        listed.append({"id": s.id, "title": s.title, "path": str(s.path),
                       "steps": len(s.steps), "cards": forms,
                       "hardware_only": s.hardware_only})
    emit_json(json_path, document("emvtap.hil.list", 1, {"scenarios": listed}))
