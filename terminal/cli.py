"""``emvtap terminal``: the POS side on a reader.

Every check that can fail is made before the card is asked for (reader, switch address, the
``--json`` file): a payment is never approved and then left without its record.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from emvtap.cli_support import (
    STDOUT,
    EnvironmentProblem,
    check_writable,
    document,
    emit_json,
    json_option,
)
from emvtap.exit_codes import ExitCode
from terminal.config import ConfigError, TerminalConfig
from terminal.outcome import Outcome

if TYPE_CHECKING:
    from rich.console import Console

    from terminal.transport.base import BaseTransport

__all__ = ["parse_amount", "parse_switch", "terminal_group"]

#: Final outcome → exit code (emvtap.exit_codes); every other outcome: TRY_AGAIN.
EXIT_CODES = {Outcome.APPROVED: ExitCode.OK, Outcome.DECLINED: ExitCode.DECLINED}
#: The tap record's JSON format (docs/json-formats.md).
TAP_FORMAT = ("emvtap.tap", 1)
_AMOUNT = re.compile(r"\d+(\.\d+)?")
T = TypeVar("T")


def parse_amount(text: str, exponent: int) -> int:
    """``"12.34"`` → 1234 minor units: digits with at most *exponent* decimals; no sign, no
    exponent notation (``1e3`` is refused, not read as 1000)."""
    if not _AMOUNT.fullmatch(text.strip()):
        raise click.BadParameter(f"{text!r} is not an amount (digits, e.g. 12.34)")
    minor = Decimal(text.strip()).scaleb(exponent)
    if minor != minor.to_integral_value():
        raise click.BadParameter(f"{text!r} has more than {exponent} decimals")
    if minor >= 10**12:
        raise click.BadParameter(f"{text!r} is more than 12 digits in minor units")
    return int(minor)


def parse_switch(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT``; empty host: 127.0.0.1) with a port of 1-65535."""
    from emvtap.endpoints import parse_host_port

    try:
        host, port = parse_host_port(text, default_host="127.0.0.1")
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (or 'none' for no online link)",
                                 param_hint="--switch") from None
    return host, port


def check_switch(host: str, port: int, timeout: float) -> None:
    """A TCP connect to the switch: refused or unreachable → :class:`EnvironmentProblem`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise EnvironmentProblem(
            f"switch {host}:{port} is not reachable ({exc.strerror or exc}); start it "
            "(emvtap switch serve) or pay with --switch none") from None


def open_reader(spec: str):  # type: ignore[no-untyped-def]
    """The transport for *spec*, with the reader checked: a bad spec is a usage error, a
    missing reader an environment problem."""
    from terminal.transport import TransportError, open_transport

    if spec.partition(":")[0] == "loopback":
        raise click.BadParameter("loopback: is an in-process link for tests; on the command "
                                 "line run the card with `emvtap card run --link vpcd` and read "
                                 "it with pcsc:, or use nfc:udp", param_hint="--reader")
    try:
        transport = open_transport(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--reader") from None
    try:
        transport.probe()
    except TransportError as exc:
        transport.close()
        raise EnvironmentProblem(str(exc)) from None
    return transport


def interruptible(work: Callable[[], T], cancel: Callable[[], None]) -> T:
    """Run *work* in a worker thread so that Ctrl-C ends the wait at once on every transport
    (a PC/SC wait is a blocking C call, nfcpy swallows KeyboardInterrupt): on SIGINT the wait
    is cancelled and :class:`KeyboardInterrupt` raised here (exit 130)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="emvtap-tap", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        cancel()
        worker.join(2.0)
        raise
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


_READER_HELP = ("Reader: pcsc:INDEX|NAME (PC/SC, e.g. pcsc:0 or 'pcsc:ACR122U'), "
                "nfc:usb[:VID:PID] (nfcpy), nfc:udp[:HOST:PORT] (nfcpy's virtual radio).")


@click.group("terminal", epilog="Example: emvtap terminal pay --reader pcsc:0 --amount 12.34 "
             "--switch 127.0.0.1:8583")
def terminal_group() -> None:
    """The POS terminal: contactless kernel on a reader."""


@terminal_group.command(epilog="""\b
Examples:
  emvtap terminal pay --reader pcsc:0 --amount 12.34 --switch 127.0.0.1:8583
  emvtap terminal pay --reader nfc:udp:127.0.0.1:50000 --amount 1.00 --switch none --json -
Exit codes: 0 approved, 1 declined, 2 usage, 3 other outcome (try again, no card),
4 reader/switch/output not ready, 130 Ctrl-C (docs/exit-codes.md).""")
@click.option("--reader", default="pcsc:0", show_default=True, help=_READER_HELP)
@click.option("--amount", required=True, metavar="AMOUNT",
              help="Amount in major units of the configured currency, e.g. 12.34.")
@click.option("--switch", "switch", default=None, metavar="HOST:PORT|none",
              help="The switch for online authorisation ('none': no online link); default "
                   "from the configuration. Checked before the tap.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Terminal configuration JSON (docs/terminal-config.md).")
@json_option("the redacted record of the tap")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for a card.")
@click.option("--clear-pan", is_flag=True, help="Show PANs and track data unmasked.")
@click.option("--quiet", is_flag=True,
              help="No APDU trace, only the outcome (the 'present a card' prompt stays, on "
                   "stderr).")
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

    try:
        config = TerminalConfig.load(config_path)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from exc
    minor = parse_amount(amount, config.transaction_currency_exponent)
    if pin is not None and (not pin.isdigit() or not 4 <= len(pin) <= 12):
        raise click.BadParameter("a PIN is 4 to 12 digits", param_hint="--pin")
    target = config.switch if switch is None else switch
    if target and target != "none":
        host, port = parse_switch(target)
        check_switch(host, port, config.online_timeout_seconds)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    transport = open_reader(reader)
    console = Console(stderr=json_path == STDOUT)
    prompt = Console(stderr=True)  # prompts always, on stderr, even with --quiet
    prompt.print(f"[dim]present a card to {reader} …[/]")

    def tap():  # type: ignore[no-untyped-def]
        result = perform_transaction(transport, config, minor, switch=target or "none",
                                     clear_pan=clear_pan, card_timeout=timeout,
                                     pin_entry=(lambda: pin) if pin else None,
                                     merchant_forced_online=force_online)
        transport.disconnect()
        if tap_again and result.issuer_update.get("pending"):
            prompt.print(f"[bold]{result.outcome_after_online}[/]: {result.reason}")
            prompt.print("[bold yellow]issuer update: present the card again …[/]")
            perform_issuer_update(transport, config, result, card_timeout=timeout,
                                  clear_pan=clear_pan)
        return result

    try:
        result = interruptible(tap, transport.cancel)
    finally:
        transport.close()
    render_result(result, console, trace=not quiet)
    emit_json(json_path, document(*TAP_FORMAT, result.to_json()))
    sys.exit(int(EXIT_CODES.get(result.outcome_after_online, ExitCode.TRY_AGAIN)))


# --- card tools: read and raw APDUs --------------------------------------------------------

#: Exit codes of the card tools: the table of every emvtap command (docs/exit-codes.md).
EXIT_OK, EXIT_TRY_AGAIN = int(ExitCode.OK), int(ExitCode.TRY_AGAIN)


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

    if json_path is not None:
        check_writable(json_path, "--json")
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
    emit_json(json_path, report.to_json())
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
    if json_path is not None:
        check_writable(json_path, "--json")
    console = Console(stderr=json_path == Path("-"))
    transport, atr = _connect(reader, timeout, console)
    try:
        run = send_all(transport, atr, commands, reader=reader,
                       clear=clear_pan, now=datetime.now(UTC).astimezone())
    finally:
        transport.close()
    _render_apdus(run.to_json(), console)
    emit_json(json_path, run.to_json())
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
