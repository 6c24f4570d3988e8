"""``emvtap merchant``: the merchant server's side of an in-app payment (lab/merchant/shop.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from switch.cli import AMOUNT

__all__ = ["merchant_group"]

MERCHANT = click.option("--merchant", "merchant_dir", type=click.Path(file_okay=False,
                        path_type=Path), default=Path("merchant"), show_default=True,
                        help="The merchant directory.")


def _open(merchant_dir: Path):  # type: ignore[no-untyped-def]
    from lab.merchant.shop import Merchant, MerchantError

    try:
        return Merchant(merchant_dir)
    except MerchantError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("merchant")
def merchant_group() -> None:
    """A merchant taking in-app payments: orders, payment tokens, the 0100 to the acquirer."""


@merchant_group.command("init", epilog="""\b
Example:
  emvtap merchant init --merchant shop --id SHOP0001""")
@MERCHANT
@click.option("--id", "merchant_id", required=True, help="Card acceptor id (DE 42).")
@click.option("--name", default="", help="The merchant's name, as shoppers see it.")
def init(merchant_dir: Path, merchant_id: str, name: str) -> None:
    """Create a merchant and its P-256 key pair."""
    from lab.merchant.shop import MerchantError, init_merchant

    try:
        init_merchant(merchant_dir, merchant_id, name)
    except MerchantError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"merchant {merchant_id} in {merchant_dir}")


@merchant_group.command("checkout", epilog="""\b
Example:
  emvtap merchant checkout --merchant shop --amount 50.00 --out order1.json""")
@MERCHANT
@click.option("--amount", type=AMOUNT, required=True, help="The order's amount, e.g. 50.00.")
@click.option("--currency", default="156", show_default=True,
              help="ISO 4217 numeric currency code.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the order for the wallet.")
def checkout(merchant_dir: Path, amount: int, currency: str, out: Path) -> None:
    """Write an order for the wallet to pay (with the merchant's unpredictable number)."""
    from lab.merchant.shop import MerchantError

    try:
        order = _open(merchant_dir).new_order(amount, currency)
    except MerchantError as exc:
        raise click.ClickException(str(exc)) from None
    out.write_text(json.dumps(order, indent=1) + "\n")
    click.echo(f"order {order['order_id']}: {amount / 100:.2f} → {out}")


@merchant_group.command("charge", epilog="""\b
Example:
  emvtap merchant charge --merchant shop --token token1.json --switch 127.0.0.1:8583""")
@MERCHANT
@click.option("--token", "token_file", type=click.Path(exists=True, dir_okay=False),
              required=True, help="The wallet's payment token.")
@click.option("--switch", required=True, help="HOST:PORT of the switch (the acquirer link).")
def charge(merchant_dir: Path, token_file: str, switch: str) -> None:
    """Decrypt the payment token and send the 0100 (in-app, DE 22 812) to the switch.
    Exit code 0 approved, 1 declined."""
    from lab.merchant.shop import MerchantError

    merchant = _open(merchant_dir)
    try:
        token = json.loads(Path(token_file).read_text())
        result = merchant.charge(token, switch)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{token_file} is not a payment token: {exc}") from None
    except (MerchantError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    verdict = "APPROVED" if result.approved else "DECLINED"
    click.echo(f"{verdict} {result.response_code} ({result.reason}): order {result.order_id}, "
               f"{result.amount / 100:.2f}, card {result.pan}, "
               f"device verified {'yes' if result.device_verified else 'no'}")
    raise SystemExit(0 if result.approved else 1)
