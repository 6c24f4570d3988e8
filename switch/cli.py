"""``emvtap switch ...``: run the mock network and manage its store.

The root ``emvtap`` CLI adds :data:`switch_group` as its ``switch`` sub-group. The management
commands work on the store directly (the same functions the admin API calls), so they work with
or without a running server (SQLite WAL: the server keeps serving while they write).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from emvtap.device_types import DEVICE_TYPE_NAMES
from emvtap.masking import mask_pan
from emvtap.private_files import write_private_text
from switch.enroll import EnrollError, enroll_profile, load_profile
from switch.lifecycle import CHANNELS, LIFECYCLE, LifecycleError, Policy, apply_event
from switch.store import Store, StoreError
from switch.tsp import (
    SCHEME_NAMES,
    ProvisioningError,
    TspConfig,
    provision,
    replenish_limited_use_keys,
)

__all__ = ["main", "switch_group"]

ADMIN_TOKEN_ENV = "EMVTAP_SWITCH_ADMIN_TOKEN"


def parse_amount(text: str) -> int:
    """``"1000.00"`` → 100000 minor units (2-decimal currencies such as CNY)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not an amount") from None
    minor = value * 100
    if minor != minor.to_integral_value():
        raise click.BadParameter(f"{text!r} has more than 2 decimals")
    return int(minor)


class _Amount(click.ParamType):
    name = "amount"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        return value if isinstance(value, int) else parse_amount(str(value))


AMOUNT = _Amount()
DB = click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=1, default=str))


@click.group("switch")
def switch_group() -> None:
    """The mock payment network: ISO 8583 host, token service provider, issuer."""


# --- serve --------------------------------------------------------------------------------------


@switch_group.command("serve")
@DB
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", default=8583, show_default=True, type=int)
@click.option(
    "--synchronous",
    type=click.Choice(["FULL", "NORMAL"]),
    default="FULL",
    show_default=True,
    help="SQLite durability: FULL survives power loss, NORMAL a process crash",
)
@click.option("--idle-timeout", default=30.0, show_default=True, type=float)
@click.option(
    "--admin-port", default=8584, show_default=True, type=int, help="admin API port; -1: none"
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"bearer token file (default DB.admin-token; ${ADMIN_TOKEN_ENV} overrides)",
)
@click.option(
    "--passcode-policy",
    type=click.Choice(["suspend", "delete"]),
    default="suspend",
    show_default=True,
    help="what removing the device passcode does to its device cards",
)
@click.option(
    "--zpk", default=None, help="zone PIN key for DE 52, 32 hex digits (default: the lab key)"
)
@click.option("-v", "--verbose", is_flag=True, help="log every message (PANs masked)")
def serve(
    db_path: str,
    host: str,
    port: int,
    synchronous: str,
    idle_timeout: float,
    admin_port: int,
    admin_token_file: str | None,
    passcode_policy: str,
    zpk: str | None,
    verbose: bool,
) -> None:
    """Serve ISO 8583 (0100/0200/0400/0800) over TCP with 2-byte length framing, and the
    admin API (HTTP JSON) on 127.0.0.1."""
    from switch.admin import AdminServer, load_or_create_token
    from switch.authorize import HostConfig
    from switch.server import run

    config = HostConfig()
    if zpk is not None:
        try:
            key = bytes.fromhex(zpk)
        except ValueError:
            raise click.BadParameter("--zpk is 32 hex digits") from None
        if len(key) != 16:
            raise click.BadParameter("--zpk is 32 hex digits")
        config = HostConfig(zpk=key)

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"warning: binding {host}, reachable from other hosts", err=True)
    admin: AdminServer | None = None
    if admin_port >= 0:
        Store(db_path).close()  # create the schema before two connections race for it
        token_file = admin_token_file or f"{db_path}.admin-token"
        token = os.environ.get(ADMIN_TOKEN_ENV) or load_or_create_token(token_file)
        if os.environ.get(ADMIN_TOKEN_ENV):
            token_file = f"${ADMIN_TOKEN_ENV}"
        try:
            admin = AdminServer(
                db_path, token, port=admin_port, policy=Policy(passcode_removed=passcode_policy)
            )
        except OSError as exc:  # e.g. the default port taken: keep serving ISO 8583
            click.echo(f"warning: admin API not started on port {admin_port}: {exc}", err=True)
        else:
            admin.start()

    def started(bound: int) -> None:
        click.echo(f"switch: serving {host}:{bound}, store {db_path}")
        if admin is not None:
            click.echo(f"switch: admin API http://127.0.0.1:{admin.port}/ (token in {token_file})")

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                run(
                    db_path,
                    host=host,
                    port=port,
                    on_started=started,
                    synchronous=synchronous,
                    idle_timeout=idle_timeout,
                    config=config,
                )
            )
    finally:
        if admin is not None:
            admin.stop()


# --- issuer: accounts and cards -------------------------------------------------------------------


@switch_group.command("enroll")
@DB
@click.option("--balance", type=AMOUNT, default="1000.00", show_default=True)
@click.option("--currency", default="156", show_default=True, help="ISO 4217 numeric")
@click.option("--kind", type=click.Choice(["debit", "credit"]), default="debit", show_default=True)
@click.option("--daily-limit", type=AMOUNT, default=None)
@click.option(
    "--no-password-limit",
    type=AMOUNT,
    default="0",
    show_default=True,
    help="in-app amount allowed without device verification",
)
@click.option("--pin", default=None, help="the account's transaction PIN (stored hashed)")
@click.argument("profile", type=click.Path(exists=True, dir_okay=False))
def enroll(
    db_path: str,
    balance: int,
    currency: str,
    kind: str,
    daily_limit: int | None,
    no_password_limit: int,
    pin: str | None,
    profile: str,
) -> None:
    """Register a personalised device card (PROFILE.json from `emvtap perso`)."""
    try:
        data = load_profile(profile)
        with Store(db_path) as store:
            mpan = enroll_profile(
                store,
                data,
                balance=balance,
                currency=currency,
                kind=kind,
                daily_limit=daily_limit,
                no_password_limit=no_password_limit,
                pin=pin,
                channel="network",
            )
            token = store.token(mpan)
    except EnrollError as exc:
        raise click.ClickException(str(exc)) from None
    assert token is not None
    click.echo(
        f"enrolled token {mask_pan(mpan)} → card {mask_pan(token.span)} on device "
        f"{token.device_id} ({token.state}{', default' if token.is_default else ''})"
    )


@switch_group.command("account")
@DB
@click.option("--holder", default="")
@click.option("--kind", type=click.Choice(["debit", "credit"]), default="debit", show_default=True)
@click.option("--balance", type=AMOUNT, default="0", show_default=True)
@click.option("--credit-limit", type=AMOUNT, default="0", show_default=True)
@click.option("--daily-limit", type=AMOUNT, default=None)
@click.option("--currency", default="156", show_default=True)
@click.option("--pin", default=None, help="transaction PIN (stored as a salted hash)")
def account(
    db_path: str,
    holder: str,
    kind: str,
    balance: int,
    credit_limit: int,
    daily_limit: int | None,
    currency: str,
    pin: str | None,
) -> None:
    """Open an account; prints its id."""
    from switch.pin import hash_pin

    with Store(db_path) as store, store.transaction():
        account_id = store.add_account(
            holder=holder,
            kind=kind,
            balance=balance,
            credit_limit=credit_limit,
            daily_limit=daily_limit,
            currency=currency,
            pin_hash=hash_pin(pin) if pin else None,
        )
    click.echo(account_id)


@switch_group.command("card")
@DB
@click.option("--account", "account_id", required=True, type=int)
@click.option("--expiry", default="3112", show_default=True, help="YYMM")
@click.option("--psn", default="00", show_default=True)
@click.option("--no-password-limit", type=AMOUNT, default="0", show_default=True)
@click.argument("span")
def card(
    db_path: str, account_id: int, expiry: str, psn: str, no_password_limit: int, span: str
) -> None:
    """Issue a physical card SPAN on an account."""
    try:
        with Store(db_path) as store, store.transaction():
            if store.account(account_id) is None:
                raise click.ClickException(f"no account {account_id}")
            store.add_card(span, account_id, expiry, psn=psn, no_password_limit=no_password_limit)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"card {mask_pan(span)} on account {account_id}")


# --- TSP ----------------------------------------------------------------------------------------


@switch_group.command("provision")
@DB
@click.option("--span", required=True)
@click.option("--device-id", required=True)
@click.option(
    "--device-type", type=click.Choice(DEVICE_TYPE_NAMES), required=True
)
@click.option("--token-requestor-id", default="50012345678", show_default=True)
@click.option("--channel", type=click.Choice(CHANNELS), default="device", show_default=True)
@click.option(
    "--purpose",
    type=click.Choice(["contactless", "in-app", "any"]),
    default="contactless",
    show_default=True,
)
@click.option(
    "--scheme",
    type=click.Choice(SCHEME_NAMES),
    default="quickpass",
    show_default=True,
    help="the device card's scheme (docs/domain.md, Keys of the cloud-based cards)",
)
@click.option("--seed", type=int, default=None, help="MPAN choice (deterministic for tests)")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="profile JSON")
@click.option("--keys-out", type=click.Path(dir_okay=False), help="HCE: the first key batch")
def provision_cmd(
    db_path: str,
    span: str,
    device_id: str,
    device_type: str,
    token_requestor_id: str,
    channel: str,
    purpose: str,
    scheme: str,
    seed: int | None,
    out: str,
    keys_out: str | None,
) -> None:
    """Bind SPAN to a device: a new MPAN, its keys, and its personalisation profile."""
    try:
        with Store(db_path) as store:
            result = provision(
                store,
                span=span,
                device_id=device_id,
                device_type=device_type,
                token_requestor_id=token_requestor_id,
                channel=channel,
                purpose=purpose,
                rng=random.Random(seed) if seed is not None else None,
                out=out,
                config=TspConfig(),
                scheme=scheme,
            )
    except ProvisioningError as exc:
        raise click.ClickException(f"{exc} [{exc.reason}]") from None
    if keys_out and result.limited_use_keys is not None:
        write_private_text(keys_out, json.dumps(result.limited_use_keys, indent=1) + "\n")
    click.echo(
        f"provisioned {scheme} {mask_pan(result.mpan)} for card {mask_pan(span)} on {device_id}"
        f"{' (default)' if result.is_default else ''}; profile {out}"
    )


@switch_group.command("replenish")
@DB
@click.option("--count", type=int, default=None)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="key batch JSON")
@click.argument("mpan")
def replenish(db_path: str, count: int | None, out: str, mpan: str) -> None:
    """HCE: issue the next batch of limited-use keys for MPAN."""
    try:
        with Store(db_path) as store:
            batch = replenish_limited_use_keys(store, mpan, count=count)
    except ProvisioningError as exc:
        raise click.ClickException(f"{exc} [{exc.reason}]") from None
    write_private_text(out, json.dumps(batch, indent=1) + "\n")
    atcs = [k["atc"] for k in batch["keys"]]
    click.echo(f"batch {batch['batch']}: {len(atcs)} keys, ATC {atcs[0]}-{atcs[-1]} → {out}")


@switch_group.command("event")
@DB
@click.option("--channel", type=click.Choice(CHANNELS), required=True, help="who asks")
@click.option("--param", "params", multiple=True, help="KEY=VALUE (new_span, new_expiry, amount)")
@click.option("--passcode-policy", type=click.Choice(["suspend", "delete"]), default="suspend")
@click.argument("event", type=click.Choice(sorted(LIFECYCLE)))
@click.argument("subject")
def event(
    db_path: str,
    channel: str,
    params: tuple[str, ...],
    passcode_policy: str,
    event: str,
    subject: str,
) -> None:
    """Apply a lifecycle EVENT to SUBJECT (an MPAN, SPAN or device id; see LIFECYCLE.md)."""
    values: dict[str, Any] = {}
    for p in params:
        key, sep, value = p.partition("=")
        if not sep:
            raise click.BadParameter(f"{p!r} is not KEY=VALUE")
        values[key] = parse_amount(value) if key == "amount" else value
    try:
        with Store(db_path) as store:
            changes = apply_event(
                store,
                event,
                subject,
                channel=channel,
                params=values,
                policy=Policy(passcode_removed=passcode_policy),
            )
    except (LifecycleError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{event} by {channel}: {len(changes)} device card(s) affected")
    for c in changes:
        click.echo(f"  {mask_pan(c.mpan)} {c.from_state} → {c.to_state} holds={list(c.holds)}")


# --- views --------------------------------------------------------------------------------------


@switch_group.command("show")
@DB
@click.option("--mpan", default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--clear", is_flag=True, help="show PANs unmasked")
@click.argument(
    "what", type=click.Choice(["accounts", "cards", "devices", "tokens", "events", "history"])
)
def show(db_path: str, mpan: str | None, limit: int, clear: bool, what: str) -> None:
    """Print accounts, cards, devices, tokens, the event log or the authorization history."""
    from dataclasses import asdict

    from emvtap.masking import mask_text

    with Store(db_path) as store:
        if what == "accounts":
            rows: list[Any] = [
                {k: v for k, v in asdict(a).items() if k != "pin_hash"} | {"available": a.available}
                for a in store.accounts()
            ]
        elif what == "cards":
            rows = [asdict(c) for c in store.cards()]
        elif what == "devices":
            rows = [asdict(d) for d in store.devices()]
        elif what == "tokens":
            rows = [
                {k: v for k, v in asdict(t).items() if not k.startswith("key_")}
                for t in store.tokens()
            ]
        elif what == "events":
            rows = store.events(mpan=mpan)[-limit:]
        else:
            rows = store.authorizations(mpan=mpan, limit=limit)
    text = json.dumps(rows, indent=1, default=str)
    click.echo(text if clear else mask_text(text))


def main() -> None:  # pragma: no cover - for `python -m switch.cli`
    switch_group()


if __name__ == "__main__":  # pragma: no cover
    main()
