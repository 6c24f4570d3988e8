"""``emvtap terminal``: the POS side on a reader."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from terminal.config import ConfigError, TerminalConfig
from terminal.outcome import Outcome

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
