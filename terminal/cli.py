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
from typing import TypeVar

import click

from emvtap.cli_support import STDOUT, EnvironmentProblem, document, emit_json, json_option
from emvtap.exit_codes import ExitCode
from terminal.config import ConfigError, TerminalConfig
from terminal.outcome import Outcome

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
