"""``emvtap terminal``: the POS side on a reader."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from terminal.config import ConfigError, TerminalConfig
from terminal.outcome import Outcome

if TYPE_CHECKING:
    from rich.console import Console

    from terminal.transport.base import BaseTransport

__all__ = ["parse_amount", "terminal_group"]

EXIT_CODES = {Outcome.APPROVED: 0, Outcome.DECLINED: 1}


def parse_amount(text: str, exponent: int) -> int:
    """``"12.34"`` → 1234 minor units; refuses negatives and more decimals than the currency."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not an amount") from None
    minor = value.scaleb(exponent)
    if value < 0 or minor != minor.to_integral_value():
        raise click.BadParameter(f"{text!r}: negative or more than {exponent} decimals")
    return int(minor)


@click.group("terminal")
def terminal_group() -> None:
    """The POS terminal: contactless kernel on a reader."""


@terminal_group.command()
@click.option("--reader", default="pcsc:0", show_default=True,
              help="pcsc:INDEX|NAME, nfc:usb[:...], nfc:udp:HOST:PORT")
@click.option("--amount", required=True, help="Amount in major units, e.g. 12.34")
@click.option("--switch", "switch", default=None,
              help="HOST:PORT of the switch ('none' for no online link); default from config")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Terminal configuration JSON (overrides the defaults).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the redacted JSON record of the tap here ('-': stdout).")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for a card.")
@click.option("--clear-pan", is_flag=True, help="Show PANs and track data unmasked.")
@click.option("--quiet", is_flag=True, help="No APDU trace, only the outcome.")
@click.option("--pin", default=None, metavar="DIGITS",
              help="The cardholder's online PIN, used when the card asks for online PIN "
                   "(without it such a tap ends declined: PIN not entered).")
@click.option("--force-online", is_flag=True,
              help="Merchant forces the transaction online (TVR byte 4 b4).")
@click.option("--tap-again/--no-tap-again", default=True, show_default=True,
              help="When the host sends issuer authentication or scripts, ask for the card "
                   "again and deliver them (issuer update).")
def pay(reader: str, amount: str, switch: str | None, config_path: str | None,
        json_path: Path | None, timeout: float, clear_pan: bool, quiet: bool,
        pin: str | None, force_online: bool, tap_again: bool) -> None:
    """Run one contactless purchase and print the trace and the outcome."""
    from rich.console import Console

    from terminal.pay import perform_issuer_update, perform_transaction
    from terminal.render import render_result
    from terminal.transport import open_transport

    try:
        config = TerminalConfig.load(config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    minor = parse_amount(amount, config.transaction_currency_exponent)
    if pin is not None and (not pin.isdigit() or not 4 <= len(pin) <= 12):
        raise click.BadParameter("a PIN is 4 to 12 digits", param_hint="--pin")
    try:
        transport = open_transport(reader)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    console = Console(stderr=json_path == Path("-"))
    if not quiet:
        console.print(f"[dim]present a card to {reader} …[/]")
    try:
        result = perform_transaction(transport, config, minor, switch=switch,
                                     clear_pan=clear_pan, card_timeout=timeout,
                                     pin_entry=(lambda: pin) if pin else None,
                                     merchant_forced_online=force_online)
        transport.disconnect()
        if tap_again and result.issuer_update.get("pending"):
            console.print(f"[bold]{result.outcome_after_online}[/]: {result.reason}")
            console.print("[bold yellow]issuer update: present the card again …[/]")
            perform_issuer_update(transport, config, result, card_timeout=timeout,
                                  clear_pan=clear_pan)
    finally:
        transport.close()
    render_result(result, console, trace=not quiet)
    if json_path:
        text = json.dumps(result.to_json(), indent=1)
        if json_path == Path("-"):
            click.echo(text)
        else:
            json_path.write_text(text + "\n")
    sys.exit(EXIT_CODES.get(result.outcome_after_online, 2))


# --- card tools: read and raw APDUs --------------------------------------------------------

#: Exit codes of the card tools (the same table as every emvtap command: docs/exit-codes.md):
#: 0 done, 2 bad command line or input (click's usage errors), 3 no card or the card left
#: the field (present it again), 4 the machine is not ready (no such reader, no pcscd,
#: output path not writable).
EXIT_OK, EXIT_TRY_AGAIN, EXIT_ENVIRONMENT = 0, 3, 4


class EnvironmentProblem(click.ClickException):
    """The machine is not ready: no such reader, no pcscd, an output path not writable."""

    exit_code = EXIT_ENVIRONMENT


def _check_json_target(path: Path | None) -> None:
    """Before the card is touched: ``--json FILE`` must be writable (``-`` is stdout)."""
    if path is None or path == Path("-"):
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise EnvironmentProblem(f"--json {path}: is a directory")
    if not parent.is_dir():
        raise EnvironmentProblem(f"--json {path}: directory {parent} does not exist")
    import os

    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                     and not os.access(path, os.W_OK)):
        raise EnvironmentProblem(f"--json {path}: not writable")


def _emit_json(doc: dict[str, object], path: Path | None) -> None:
    if path is None:
        return
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    if path == Path("-"):
        click.echo(text)
    else:
        path.write_text(text + "\n", encoding="utf-8")


def _connect(reader: str, timeout: float, console: Console) -> tuple[BaseTransport, bytes]:
    """Open the reader and wait for a card: usage error for a bad spec, exit 4 when the
    reader cannot be used, exit 3 when no card comes."""
    from terminal.transport import NoCardError, TransportError, open_transport

    try:
        transport = open_transport(reader)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--reader") from exc
    console.print(f"[dim]present a card to {reader} …[/]")
    try:
        atr = transport.connect(timeout)
    except NoCardError as exc:
        transport.close()
        click.echo(f"emvtap: {exc}", err=True)
        sys.exit(EXIT_TRY_AGAIN)
    except TransportError as exc:
        transport.close()
        raise EnvironmentProblem(str(exc)) from exc
    return transport, atr


_READER_HELP = "pcsc:INDEX|NAME, nfc:usb[:...], nfc:udp:HOST:PORT (emvtap readers lists them)"


@terminal_group.command()
@click.option("--reader", default="pcsc:0", show_default=True, help=_READER_HELP)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE|-",
              help="Write the card dump as JSON to FILE ('-': stdout, the tree goes to "
                   "stderr); schema in docs/json/terminal-read.md.")
@click.option("--clear-pan", is_flag=True, help="Show PANs, track data and names unmasked.")
@click.option("--gpo/--no-gpo", default=True, show_default=True,
              help="Send GET PROCESSING OPTIONS and read the records. GPO advances a "
                   "contactless card's ATC; --no-gpo stops after SELECT (and GET DATA).")
@click.option("--apdus", "show_apdus", is_flag=True, help="Also list every APDU exchanged.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Terminal configuration JSON (country, currency and "
                                 "capabilities of the PDOL data).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for a card.")
def read(reader: str, json_path: Path | None, clear_pan: bool, gpo: bool, show_apdus: bool,
         config_path: str | None, timeout: float) -> None:
    """Read everything a card or phone presents, without a purchase: every application
    (PPSE, PSE or the AID list), its records, counters, transaction log and CPLC, each tag
    decoded, the certificate chain checked with the shipped CA keys.

    \b
    Examples:
      emvtap terminal read --reader pcsc:0
      emvtap terminal read --reader nfc:usb --json card.json
      emvtap terminal read --reader pcsc:ACR122 --no-gpo --json - | jq .applications

    Exit codes: 0 read to the end, 3 no card or the card left the field (the partial read is
    still shown and written), 4 reader not usable or --json not writable.
    """
    from rich.console import Console

    from emvtap.capk import CapkStore
    from terminal.read import read_card
    from terminal.read.render import render_report

    _check_json_target(json_path)
    try:
        config = TerminalConfig.load(config_path)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from exc
    console = Console(stderr=json_path == Path("-"))
    transport, atr = _connect(reader, timeout, console)
    try:
        report = read_card(transport, atr, reader=reader, config=config,
                           capks=CapkStore.default(production=config.production),
                           gpo=gpo, clear=clear_pan)
    finally:
        transport.close()
    render_report(report, console, apdus=show_apdus)
    _emit_json(report.to_json(), json_path)
    sys.exit(EXIT_OK if report.complete else EXIT_TRY_AGAIN)


@terminal_group.command()
@click.argument("apdus", nargs=-1, metavar="[APDU]...")
@click.option("--reader", default="pcsc:0", show_default=True, help=_READER_HELP)
@click.option("--script", "script", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="File of APDUs, one a line ('#' comments), sent after the "
                                 "ones on the command line.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE|-",
              help="Write the exchanges as JSON to FILE ('-': stdout); schema in "
                   "docs/json/terminal-apdu.md.")
@click.option("--clear-pan", is_flag=True, help="Show cardholder data in answers unmasked.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for a card.")
def apdu(apdus: tuple[str, ...], reader: str, script: Path | None, json_path: Path | None,
         clear_pan: bool, timeout: float) -> None:
    """Send raw APDUs (hex, spaces allowed) and show each answer decoded: the status word in
    words, the data as a TLV tree. 61xx is followed by GET RESPONSE, 6Cxx re-sent with the
    card's Le (the wire exchanges are listed).

    \b
    Examples:
      emvtap terminal apdu --reader pcsc:0 00A404000E325041592E5359532E444446303100
      emvtap terminal apdu --reader nfc:usb '00 A4 04 00 07 A0000000031010 00' 80CA9F3600
      emvtap terminal apdu --reader pcsc:0 --script select-and-read.apdu --json -
    """
    from datetime import UTC, datetime

    from rich.console import Console

    from terminal.rawapdu import parse_apdu, parse_script, send_all

    try:
        commands = [parse_apdu(a, f"APDU {i}") for i, a in enumerate(apdus, 1)]
        if script is not None:
            commands += parse_script(script.read_text(encoding="utf-8", errors="replace"),
                                     str(script))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if not commands:
        raise click.UsageError("give at least one APDU or --script FILE")
    _check_json_target(json_path)
    console = Console(stderr=json_path == Path("-"))
    transport, atr = _connect(reader, timeout, console)
    try:
        run = send_all(transport, atr, commands, reader=reader,
                       clear=clear_pan, now=datetime.now(UTC).astimezone())
    finally:
        transport.close()
    _render_apdus(run.to_json(), console)
    _emit_json(run.to_json(), json_path)
    sys.exit(EXIT_OK if run.error is None else EXIT_TRY_AGAIN)


def _render_apdus(doc: dict[str, Any], console: Console) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    from terminal.read.render import add_nodes

    print_ = console.print
    print_(f"[dim]ATR {doc['atr']}[/]")
    for item in doc["apdus"]:
        tree = Tree(f"[cyan]→ {item['command']}[/]")
        if len(item["wire"]) > 1:
            for w in item["wire"]:
                tree.add(f"[dim]wire: → {w['c']} ← {w['r']}[/]")
        ok = "green" if item["sw"] == "9000" else "yellow"
        answer = tree.add(f"[magenta]← {item['response'] or '(no data)'}[/] "
                          f"[{ok}]{item['sw']} {escape(item['meaning'])}[/]")
        if item.get("tlv"):
            add_nodes(answer, item["tlv"])
        elif item.get("not_tlv"):
            answer.add(f"[dim]not BER-TLV ({escape(item['not_tlv'])})[/]")
        print_(tree, highlight=False)
    if doc.get("error"):
        print_(f"[bold red]{escape(str(doc['error']))}[/]")
