"""``emvtap wallet``: the wallet on a device and the wallet server (docs/domain.md: over-the-air
issuance, the device channel's lifecycle, the network's pushes, in-app payment)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from emvtap.masking import mask_pan
from switch.cli import AMOUNT
from switch.tsp import SCHEME_NAMES

__all__ = ["wallet_group"]

WALLET = click.option("--wallet", "wallet_dir", type=click.Path(file_okay=False, path_type=Path),
                      default=Path("wallet"), show_default=True, help="The wallet directory.")
CARD = click.option("--card", "card", default=None,
                    help="The card: its MPAN or last digits (default: the default card).")


def _open(wallet_dir: Path):  # type: ignore[no-untyped-def]
    from lab.wallet.device import Wallet, WalletError

    try:
        return Wallet.open(wallet_dir)
    except WalletError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("wallet")
def wallet_group() -> None:
    """The wallet on a device, and the wallet server between it and the token service."""


@wallet_group.command("server", epilog="""\b
Example:
  emvtap wallet server --switch-admin 127.0.0.1:8584 --admin-token-file switch.db.admin-token""")
@click.option("--port", type=click.IntRange(1, 65535), default=8590, show_default=True,
              help="The wallet server's HTTP port (on 127.0.0.1).")
@click.option("--switch-admin", default="127.0.0.1:8584", show_default=True,
              help="HOST:PORT of the switch's admin API (the token service).")
@click.option("--admin-token-file", type=click.Path(dir_okay=False), default=None,
              help="The admin API's bearer token file (DB.admin-token; waited for up to 10 s "
                   "while the switch starts).")
def server(port: int, switch_admin: str, admin_token_file: str | None) -> None:
    """Run the wallet server (HTTP on 127.0.0.1) until Ctrl-C."""
    from emvtap.endpoints import parse_host_port
    from lab.wallet.server import WalletServer

    token = os.environ.get("EMVTAP_SWITCH_ADMIN_TOKEN")
    if admin_token_file:
        token_path = Path(admin_token_file)
        deadline = time.monotonic() + 10
        while not token_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # `emvtap switch serve` writes it when it starts
        if not token_path.exists():
            raise click.UsageError(f"no admin token file {admin_token_file}")
        token = token_path.read_text().strip()
    if not token:
        raise click.UsageError("the admin API needs a token: --admin-token-file or "
                               "$EMVTAP_SWITCH_ADMIN_TOKEN")
    try:
        host, admin_port = parse_host_port(switch_admin, default_host="127.0.0.1")
        wallet_server = WalletServer(f"http://{host}:{admin_port}", token, port=port)
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"cannot start the wallet server: {exc}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo(f"wallet server: serving http://127.0.0.1:{wallet_server.port}/ "
               f"(token service {host}:{admin_port})", err=True)
    try:
        wallet_server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        wallet_server.httpd.server_close()


@wallet_group.command("init", epilog="""\b
Example:
  emvtap wallet init --wallet phone --device-id phone-1 --form hce --passcode 2468""")
@WALLET
@click.option("--device-id", required=True, help="The device's id at the wallet server.")
@click.option("--form", "device_type", type=click.Choice(["handset-se", "wearable-se", "hce"]),
              required=True, help="Where the device cards' secrets live (docs/domain.md).")
@click.option("--passcode", required=True, help="The device passcode (4-12 digits).")
@click.option("--server", "server_url", default="http://127.0.0.1:8590", show_default=True,
              help="The wallet server's URL.")
@click.option("--se-reader", default="", help="SE forms: the secure element's reader "
                                              "(pcsc:NAME).")
def init(wallet_dir: Path, device_id: str, device_type: str, passcode: str, server_url: str,
         se_reader: str) -> None:
    """Set up the wallet of a device."""
    from lab.wallet.device import Wallet, WalletError

    try:
        Wallet.create(wallet_dir, device_id, device_type, passcode, server_url, se_reader)
    except WalletError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wallet {wallet_dir}: device {device_id} ({device_type})")


@wallet_group.command("add-card", epilog="""\b
Example:
  emvtap wallet add-card --wallet phone --span 6228480000000015 --device phone-1 --form hce""")
@WALLET
@click.option("--span", required=True, help="The physical card's number.")
@click.option("--scheme", type=click.Choice(SCHEME_NAMES), default="quickpass",
              show_default=True, help="The device card's scheme.")
@click.option("--purpose", type=click.Choice(["any", "contactless", "in-app"]), default="any",
              show_default=True, help="The token's domain: contactless, in-app, or both.")
@click.option("--se-reader", default=None, help="SE forms: the secure element's reader.")
@click.option("--device", "device_id", default=None,
              help="The device id (checked against the wallet's).")
@click.option("--form", "device_type", default=None,
              type=click.Choice(["handset-se", "wearable-se", "hce"]),
              help="The device form (checked against the wallet's).")
def add_card(wallet_dir: Path, span: str, scheme: str, purpose: str, se_reader: str | None,
             device_id: str | None, device_type: str | None) -> None:
    """Add a card to the device: over-the-air issuance through the wallet server."""
    from lab.wallet.device import WalletError

    wallet = _open(wallet_dir)
    if device_id and device_id != wallet.device_id:
        raise click.UsageError(f"this wallet is on device {wallet.device_id}, not {device_id}")
    if device_type and device_type != wallet.device_type:
        raise click.UsageError(f"this wallet's device is {wallet.device_type}, not {device_type}")
    try:
        entry = wallet.add_card(span, scheme, purpose, se_reader=se_reader)
    except WalletError as exc:
        raise click.ClickException(str(exc)) from None
    where = (f"secure element on {entry['reader']} ({entry['script_apdus']} STORE DATA "
             "commands)" if "reader" in entry else f"HCE app ({wallet_dir}/cards)")
    click.echo(f"added {scheme} card {mask_pan(entry['mpan'])} for {mask_pan(span)} to "
               f"{wallet.device_id}: {where}{', default' if entry['default'] else ''}")


@wallet_group.command("import", epilog="""\b
Example:
  emvtap wallet import --wallet phone --profile card.json""")
@WALLET
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), required=True, help="The HCE device card's profile.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Its state file (default: next to the profile).")
def import_card(wallet_dir: Path, profile_path: Path, state_path: Path | None) -> None:
    """Take an HCE device card already issued to this device into the wallet."""
    from lab.wallet.device import WalletError

    wallet = _open(wallet_dir)
    try:
        entry = wallet.import_card(profile_path,
                                   state_path or profile_path.with_suffix(".state.json"))
    except WalletError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"imported {mask_pan(entry['mpan'])} into {wallet_dir}")


@wallet_group.command("cards", epilog="""\b
Example:
  emvtap wallet cards --wallet phone""")
@WALLET
def cards(wallet_dir: Path) -> None:
    """List the device cards in the wallet."""
    wallet = _open(wallet_dir)
    for c in wallet.cards():
        click.echo(f"{mask_pan(c['mpan'])} {c['scheme']} {c['form']} {c['status']}"
                   f"{' default' if c.get('default') else ''} no-password limit "
                   f"{int(c.get('no_password_limit') or 0) / 100:.2f}")


def _lifecycle(action: str):  # type: ignore[no-untyped-def]
    @WALLET
    @CARD
    def command(wallet_dir: Path, card: str | None) -> None:
        from lab.wallet.device import WalletError

        wallet = _open(wallet_dir)
        try:
            answer = wallet.lifecycle(action, card)
        except WalletError as exc:
            raise click.ClickException(str(exc)) from None
        for change in answer.get("changes", []):
            click.echo(f"{action}: {mask_pan(change['mpan'])} {change['from_state']} → "
                       f"{change['to_state']}")

    command.__doc__ = f"{action.capitalize()} a card through the device channel."
    epilog = f"\b\nExample:\n  emvtap wallet {action} --wallet phone --card 0018"
    return wallet_group.command(action, epilog=epilog)(command)


for _action in ("suspend", "resume", "delete", "set-default"):
    _lifecycle(_action)


@wallet_group.command("sync", epilog="""\b
Example:
  emvtap wallet sync --wallet phone""")
@WALLET
def sync(wallet_dir: Path) -> None:
    """Fetch the network's pushes (limit, suspension, deletion) and apply them to the cards."""
    from lab.wallet.device import WalletError

    wallet = _open(wallet_dir)
    try:
        changes = wallet.sync()
    except WalletError as exc:
        raise click.ClickException(str(exc)) from None
    for line in changes or ["nothing new"]:
        click.echo(line)


@wallet_group.command("pay-in-app", epilog="""\b
Example:
  emvtap wallet pay-in-app --wallet phone --amount 50.00 --merchant order1.json --out t1.json""")
@WALLET
@CARD
@click.option("--amount", type=AMOUNT, required=True, help="e.g. 88.00")
@click.option("--merchant", "order_file", type=click.Path(exists=True, dir_okay=False),
              required=True, help="The merchant's order (emvtap merchant checkout).")
@click.option("--passcode", default=None, help="The device passcode (cardholder verification).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the payment token for the merchant.")
def pay_in_app(wallet_dir: Path, card: str | None, amount: int, order_file: str,
               passcode: str | None, out: Path) -> None:
    """Pay a merchant's order inside an app: the device card's cryptogram over the order,
    encrypted to the merchant."""
    from lab.wallet.device import WalletError

    wallet = _open(wallet_dir)
    try:
        order = json.loads(Path(order_file).read_text())
        token = wallet.pay_in_app(order, amount, passcode, card)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{order_file} is not a merchant order: {exc}") from None
    except WalletError as exc:
        raise click.ClickException(f"the device refused: {exc}") from None
    out.write_text(json.dumps(token, indent=1) + "\n")
    click.echo(f"payment token for order {order.get('order_id')} "
               f"({amount / 100:.2f}, {'passcode verified' if passcode else 'no passcode'})"
               f" → {out}")
