"""``emvtap switch ...``: run the mock network and manage its store.

The root ``emvtap`` CLI adds :data:`switch_group` as its ``switch`` sub-group. The management
commands work on the store directly (the same functions the admin API calls), so they work with
or without a running server (SQLite WAL: the server keeps serving while they write).

Only ``serve``, ``enroll`` and ``account`` create a store; every other command needs an
existing one (a mistyped ``--db`` is an error, not an empty store). Wherever a command takes an
MPAN or a SPAN it also takes its last four digits or its masked form (``625094******7890``), as
every command prints them, when exactly one number matches. Exit codes: emvtap.exit_codes
(docs/exit-codes.md); ``--json FILE|-`` documents: docs/json-formats.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import random
import re
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from emvtap.cli_support import (
    STDOUT,
    EnvironmentProblem,
    Refused,
    check_writable,
    document,
    emit_json,
    human,
    json_option,
)
from emvtap.device_types import DEVICE_TYPE_NAMES
from emvtap.luhn import luhn_valid
from emvtap.masking import mask_pan
from emvtap.private_files import write_private_text
from switch.enroll import (
    EnrollConflict,
    EnrollError,
    enroll_profile,
    enrolment_status,
    load_profile,
)
from switch.lifecycle import CHANNELS, LIFECYCLE, LifecycleError, Policy, apply_event
from switch.store import Store, StoreError
from switch.tsp import (
    SCHEME_NAMES,
    ProvisioningError,
    TspConfig,
    provision,
    replenish_limited_use_keys,
)

__all__ = ["main", "resolve_number", "switch_group"]

ADMIN_TOKEN_ENV = "EMVTAP_SWITCH_ADMIN_TOKEN"
#: JSON format names of the switch commands' documents (docs/json-formats.md).
FORMAT_VERSION = 1
_AMOUNT = re.compile(r"\d+(\.\d{1,2})?")
_MASKED = re.compile(r"(\d*)\*+(\d+)")
#: Columns that hold amounts in minor units (shown in major units in the tables).
AMOUNT_COLUMNS = frozenset({"balance", "credit_limit", "daily_limit", "available", "amount",
                            "no_password_limit", "ecash_balance"})
#: Columns that hold a PAN (masked unless --clear).
PAN_COLUMNS = frozenset({"span", "mpan", "replaced_by", "pan"})
#: The columns of each human table (the JSON has every column).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id", "holder", "kind", "currency", "balance", "credit_limit",
                 "daily_limit", "available"),
    "cards": ("span", "account_id", "expiry", "psn", "status", "no_password_limit",
              "replaced_by"),
    "devices": ("device_id", "device_type", "account_id", "status", "signed_in",
                "passcode_set"),
    "tokens": ("mpan", "span", "device_id", "state", "holds", "is_default", "max_atc"),
    "events": ("seq", "at", "channel", "event", "subject", "from_state", "to_state"),
    "history": ("id", "received_at", "mti", "mpan", "amount", "currency", "response_code",
                "reason", "auth_code"),
}


def parse_amount(text: str) -> int:
    """``"1000.00"`` → 100000 minor units (2-decimal currencies such as CNY); digits only,
    no sign, no exponent notation."""
    if not _AMOUNT.fullmatch(text.strip()):
        raise click.BadParameter(f"{text!r} is not an amount (digits, at most 2 decimals)")
    return int(Decimal(text.strip()) * 100)


class _Amount(click.ParamType):
    name = "amount"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, int):
            return value
        try:
            return parse_amount(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


class _Currency(click.ParamType):
    """ISO 4217 numeric: three digits, 001-999."""

    name = "ISO4217"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        text = str(value)
        if not (len(text) == 3 and text.isdigit() and text != "000"):
            self.fail(f"{text!r} is not an ISO 4217 numeric currency code (3 digits, e.g. 156 "
                      "for CNY, 978 for EUR)", param, ctx)
        return text


class _Pin(click.ParamType):
    """A PIN `terminal pay --pin` can enter: 4 to 12 digits (ISO 9564-1)."""

    name = "DIGITS"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        text = str(value)
        if not (text.isdigit() and 4 <= len(text) <= 12):
            self.fail("a PIN is 4 to 12 digits", param, ctx)
        return text


class _Span(click.ParamType):
    """A card number: 13 to 19 digits with a valid Luhn check digit (ISO/IEC 7812-1)."""

    name = "PAN"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        text = str(value)
        if not (text.isdigit() and 13 <= len(text) <= 19):
            self.fail(f"{text!r} is not a card number (13 to 19 digits)", param, ctx)
        if not luhn_valid(text):
            self.fail(f"{mask_pan(text)} fails the Luhn check (ISO/IEC 7812-1): mistyped?",
                      param, ctx)
        return text


AMOUNT, CURRENCY, PIN, SPAN = _Amount(), _Currency(), _Pin(), _Span()


def _db_option(create: bool):  # type: ignore[no-untyped-def]
    note = ("created when missing" if create else "must exist (serve, enroll or account "
            "create it)")
    return click.option("--db", "db_path", required=True, metavar="FILE",
                        type=click.Path(dir_okay=False),
                        help=f"The switch's SQLite store; {note}.")


DB = _db_option(create=False)
DB_CREATE = _db_option(create=True)


def open_store(db_path: str, *, create: bool) -> Store:
    """The store at *db_path*: an error naming the file when it is missing (and may not be
    created here), in a missing or read-only directory, or not a switch store."""
    path = Path(db_path)
    if not path.exists():
        if not create:
            raise EnvironmentProblem(
                f"--db {path}: no such switch store (mistyped? `emvtap switch serve`, "
                "`enroll` or `account` create one)")
        check_writable(path, "--db")
    elif not os.access(path, os.R_OK | os.W_OK):
        raise EnvironmentProblem(f"--db {path}: not readable and writable")
    elif not os.access(path.parent if str(path.parent) else Path("."), os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"--db {path}: its directory is not writable (SQLite keeps "
                                 "its journal next to the store)")
    try:
        return Store(path)
    except (sqlite3.DatabaseError, StoreError) as exc:
        raise EnvironmentProblem(f"--db {path}: not a switch store ({exc})") from None


def resolve_number(candidates: list[str], text: str, what: str) -> str:
    """The one number of *candidates* that *text* names: the full number, its last four (or
    more) digits, or its masked form ``625094******7890``. :class:`Refused` when none or
    several match."""
    if text in candidates:
        return text
    masked = _MASKED.fullmatch(text)
    if masked:
        head, tail = masked.group(1), masked.group(2)
        matches = [n for n in candidates if n.startswith(head) and n.endswith(tail)
                   and len(n) == len(text)]
    elif text.isdigit() and 4 <= len(text) < 13:
        matches = [n for n in candidates if n.endswith(text)]
    else:
        matches = []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise Refused(f"no {what} {text} in the store")
    listed = ", ".join(mask_pan(m) for m in matches[:5])
    raise Refused(f"{text} matches {len(matches)} {what}s ({listed}): give more digits")


def _token_mpans(store: Store) -> list[str]:
    return [t.mpan for t in store.tokens()]


def _card_spans(store: Store) -> list[str]:
    return [c.span for c in store.cards()]


def _refused(exc: Exception) -> Refused:
    return Refused(str(exc))


class _SwitchGroup(click.Group):
    """A store that cannot be opened (schema 1, another key-encryption key) is a clear error
    message and exit status 4 (environment), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise EnvironmentProblem(str(exc)) from None


@click.group("switch", cls=_SwitchGroup, epilog="""\b
Examples:
  emvtap switch enroll --db switch.db card.json
  emvtap switch serve --db switch.db --port 8583
  emvtap switch show --db switch.db tokens""")
def switch_group() -> None:
    """The mock payment network: ISO 8583 host, token service provider, issuer."""


# --- serve --------------------------------------------------------------------------------------


@switch_group.command("serve", epilog="""\b
Examples:
  emvtap switch serve --db switch.db
  emvtap switch serve --db switch.db --port 0 --admin-port -1   (any free port, no admin API)
Exit 4 when a port is in use or the store cannot be opened; Ctrl-C stops it.""")
@DB_CREATE
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (anything but loopback is reachable from other hosts).")
@click.option("--port", default=8583, show_default=True, type=click.IntRange(0, 65535),
              help="ISO 8583 TCP port (0: any free port, printed at start).")
@click.option(
    "--synchronous",
    type=click.Choice(["FULL", "NORMAL"]),
    default="FULL",
    show_default=True,
    help="SQLite durability: FULL survives power loss, NORMAL a process crash.",
)
@click.option("--idle-timeout", default=30.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds before an idle terminal connection is closed.")
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    help="ISO 8583 connections at a time (default: the file-descriptor limit less 64).",
)
@click.option("--admin-port", default=8584, show_default=True, type=click.IntRange(-1, 65535),
              help="Admin API (HTTP JSON) port on 127.0.0.1; -1: none. A busy port stops the "
                   "start.")
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"Bearer token file (default DB.admin-token; ${ADMIN_TOKEN_ENV} overrides).",
)
@click.option(
    "--passcode-policy",
    type=click.Choice(["suspend", "delete"]),
    default="suspend",
    show_default=True,
    help="What removing the device passcode does to its device cards.",
)
@click.option(
    "--zpk", default=None, metavar="HEX32",
    help="Zone PIN key for DE 52, 32 hex digits (default: the lab key).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every message (PANs masked).")
def serve(
    db_path: str,
    host: str,
    port: int,
    synchronous: str,
    idle_timeout: float,
    max_connections: int | None,
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
            raise click.BadParameter("32 hex digits", param_hint="--zpk") from None
        if len(key) != 16:
            raise click.BadParameter("32 hex digits", param_hint="--zpk")
        config = HostConfig(zpk=key)

    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose:
        logging.getLogger().setLevel(min(logging.getLogger().level or logging.INFO,
                                         logging.INFO))
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"warning: binding {host}, reachable from other hosts", err=True)
    open_store(db_path, create=True).close()  # the schema, before two connections race for it
    admin: AdminServer | None = None
    token_file = ""
    if admin_port >= 0:
        token_file = admin_token_file or f"{db_path}.admin-token"
        if os.environ.get(ADMIN_TOKEN_ENV):
            token = os.environ[ADMIN_TOKEN_ENV]
            token_file = f"${ADMIN_TOKEN_ENV}"
        else:
            if not Path(token_file).exists():
                check_writable(token_file, "--admin-token-file")
            token = load_or_create_token(token_file)
        try:
            admin = AdminServer(
                db_path, token, port=admin_port, policy=Policy(passcode_removed=passcode_policy)
            )
        except OSError as exc:  # without its admin API the switch is not what was asked for
            raise EnvironmentProblem(_port_problem("admin API", "127.0.0.1", admin_port, exc,
                                                   "--admin-port")) from None
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
                    max_connections=max_connections,
                    config=config,
                )
            )
    except OSError as exc:
        raise EnvironmentProblem(_port_problem("ISO 8583", host, port, exc, "--port")) from None
    finally:
        if admin is not None:
            admin.stop()


def _port_problem(what: str, host: str, port: int, exc: OSError, option: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"{what}: port {port} on {host} is in use (another switch? choose {option}, "
                "or 0 for any free port)")
    return f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc}"


# --- issuer: accounts and cards -------------------------------------------------------------------


@switch_group.command("enroll", epilog="""\b
Examples:
  emvtap perso --seed 1 --out card.json && emvtap switch enroll --db switch.db card.json
  emvtap switch enroll --db switch.db --balance 50.00 --pin 1234 card.json --json -
Enrolling the same card again says "already enrolled"; a card with the same MPAN but other
keys is refused (exit 5) unless --force.""")
@DB_CREATE
@click.option("--balance", type=AMOUNT, default="1000.00", show_default=True,
              help="Opening balance of a new account, in major units.")
@click.option("--currency", type=CURRENCY, default="156", show_default=True,
              help="Account currency, ISO 4217 numeric.")
@click.option("--kind", type=click.Choice(["debit", "credit"]), default="debit", show_default=True,
              help="Account kind.")
@click.option("--daily-limit", type=AMOUNT, default=None,
              help="Daily spending limit in major units (default: none).")
@click.option(
    "--no-password-limit",
    type=AMOUNT,
    default="0",
    show_default=True,
    help="In-app amount allowed without device verification, in major units.",
)
@click.option("--pin", type=PIN, default=None,
              help="The account's transaction PIN, 4-12 digits (stored hashed).")
@click.option("--force", is_flag=True,
              help="Replace the keys of an MPAN enrolled with another card's keys.")
@json_option("the enrolment")
@click.argument("profile", type=click.Path(exists=True, dir_okay=False))
def enroll(
    db_path: str,
    balance: int,
    currency: str,
    kind: str,
    daily_limit: int | None,
    no_password_limit: int,
    pin: str | None,
    force: bool,
    json_path: Path | None,
    profile: str,
) -> None:
    """Register a personalised device card (PROFILE.json from `emvtap perso`)."""
    try:
        data = load_profile(profile)
    except EnrollError as exc:
        raise click.BadParameter(str(exc), param_hint="PROFILE") from None
    with open_store(db_path, create=True) as store:
        try:
            status = enrolment_status(store, data)
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
                force=force,
            )
        except EnrollConflict as exc:
            raise Refused(str(exc)) from None
        except EnrollError as exc:
            raise click.BadParameter(f"{profile}: {exc}", param_hint="PROFILE") from None
        token = store.token(mpan)
    assert token is not None
    verb = {"new": "enrolled", "same": "already enrolled", "different": "re-enrolled (keys "
            "replaced)"}[status]
    human(json_path)(
        f"{verb}: token {mask_pan(mpan)} → card {mask_pan(token.span)} on device "
        f"{token.device_id} ({token.state}{', default' if token.is_default else ''})"
    )
    emit_json(json_path, document("emvtap.switch.enroll", FORMAT_VERSION, {
        "status": {"new": "enrolled", "same": "already_enrolled",
                   "different": "keys_replaced"}[status],
        "mpan": mask_pan(mpan), "span": mask_pan(token.span), "device_id": token.device_id,
        "state": token.state, "default": token.is_default}))


@switch_group.command("account", epilog="""\b
Examples:
  emvtap switch account --db switch.db --holder "A. Tester" --balance 500.00 --pin 2468
  emvtap switch account --db switch.db --json -
Prints the new account's id (use it with `emvtap switch card --account ID`).""")
@DB_CREATE
@click.option("--holder", default="", help="Account holder's name.")
@click.option("--kind", type=click.Choice(["debit", "credit"]), default="debit", show_default=True,
              help="Account kind.")
@click.option("--balance", type=AMOUNT, default="0", show_default=True,
              help="Opening balance in major units.")
@click.option("--credit-limit", type=AMOUNT, default="0", show_default=True,
              help="Credit limit in major units.")
@click.option("--daily-limit", type=AMOUNT, default=None,
              help="Daily spending limit in major units (default: none).")
@click.option("--currency", type=CURRENCY, default="156", show_default=True,
              help="Account currency, ISO 4217 numeric.")
@click.option("--pin", type=PIN, default=None,
              help="Transaction PIN, 4-12 digits (stored as a salted hash).")
@json_option("the new account")
def account(
    db_path: str,
    holder: str,
    kind: str,
    balance: int,
    credit_limit: int,
    daily_limit: int | None,
    currency: str,
    pin: str | None,
    json_path: Path | None,
) -> None:
    """Open an account; prints its id."""
    from switch.pin import hash_pin

    with open_store(db_path, create=True) as store, store.transaction():
        account_id = store.add_account(
            holder=holder,
            kind=kind,
            balance=balance,
            credit_limit=credit_limit,
            daily_limit=daily_limit,
            currency=currency,
            pin_hash=hash_pin(pin) if pin else None,
        )
    human(json_path)(str(account_id))
    emit_json(json_path, document("emvtap.switch.account", FORMAT_VERSION, {
        "account_id": account_id, "holder": holder, "kind": kind, "currency": currency,
        "balance": balance, "credit_limit": credit_limit, "daily_limit": daily_limit}))


@switch_group.command("card", epilog="""\b
Examples:
  emvtap switch card --db switch.db --account 1 6228480000000014
  emvtap switch card --db switch.db --account 1 --expiry 2912 6228480000000014 --json -""")
@DB
@click.option("--account", "account_id", required=True, type=click.IntRange(min=1),
              help="The account id (`emvtap switch account` prints it).")
@click.option("--expiry", default="3112", show_default=True, metavar="YYMM",
              help="Card expiry, YYMM.")
@click.option("--psn", default="00", show_default=True, metavar="NN",
              help="PAN sequence number, 2 digits.")
@click.option("--no-password-limit", type=AMOUNT, default="0", show_default=True,
              help="In-app amount allowed without device verification, in major units.")
@json_option("the new card")
@click.argument("span", type=SPAN)
def card(
    db_path: str, account_id: int, expiry: str, psn: str, no_password_limit: int,
    json_path: Path | None, span: str,
) -> None:
    """Issue a physical card SPAN (13-19 digits, Luhn-valid) on an account."""
    if not (len(expiry) == 4 and expiry.isdigit() and 1 <= int(expiry[2:]) <= 12):
        raise click.BadParameter(f"{expiry!r} is not YYMM", param_hint="--expiry")
    if not (len(psn) == 2 and psn.isdigit()):
        raise click.BadParameter(f"{psn!r} is not 2 digits", param_hint="--psn")
    with open_store(db_path, create=False) as store:
        if store.account(account_id) is None:
            raise Refused(f"no account {account_id} in {db_path}")
        if store.card(span) is not None:
            raise Refused(f"card {mask_pan(span)} exists already")
        try:
            with store.transaction():
                store.add_card(span, account_id, expiry, psn=psn,
                               no_password_limit=no_password_limit)
        except StoreError as exc:
            raise _refused(exc) from None
    human(json_path)(f"card {mask_pan(span)} on account {account_id}")
    emit_json(json_path, document("emvtap.switch.card", FORMAT_VERSION, {
        "span": mask_pan(span), "account_id": account_id, "expiry": expiry, "psn": psn}))


# --- TSP ----------------------------------------------------------------------------------------


@switch_group.command("provision", epilog="""\b
Examples:
  emvtap switch provision --db switch.db --span 6228480000000014 --device-id phone-1 \\
      --device-type hce --out dc.json --keys-out keys.json
  emvtap switch provision --db switch.db --span 0014 --device-id watch-1 \\
      --device-type wearable-se --out watch.json --json -""")
@DB
@click.option("--span", "span_text", required=True, metavar="PAN|LAST4|MASKED",
              help="The physical card (its number, last four digits or masked form).")
@click.option("--device-id", required=True, help="The device to bind the card to.")
@click.option(
    "--device-type", type=click.Choice(DEVICE_TYPE_NAMES), required=True,
    help="Where the device card lives: a phone's or a watch's secure element, or HCE.",
)
@click.option("--token-requestor-id", default="50012345678", show_default=True,
              help="Token requestor id, 11 digits.")
@click.option("--channel", type=click.Choice(CHANNELS), default="device", show_default=True,
              help="Who asks: the wallet (device), the bank or the network.")
@click.option(
    "--purpose",
    type=click.Choice(["contactless", "in-app", "any"]),
    default="contactless",
    show_default=True,
    help="The token's domain.",
)
@click.option("--scheme", type=click.Choice(SCHEME_NAMES), default="quickpass",
              show_default=True,
              help="The device card's scheme (docs/domain.md, Keys of the cloud-based cards).")
@click.option("--seed", type=click.IntRange(min=0), default=None, metavar="N",
              help="Deterministic MPAN choice (tests); default: random.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="The device card's profile JSON to write.")
@click.option("--keys-out", type=click.Path(dir_okay=False),
              help="HCE: where to write the first limited-use key batch.")
@json_option("the provisioning result")
def provision_cmd(
    db_path: str,
    span_text: str,
    device_id: str,
    device_type: str,
    token_requestor_id: str,
    channel: str,
    purpose: str,
    scheme: str,
    seed: int | None,
    out: str,
    keys_out: str | None,
    json_path: Path | None,
) -> None:
    """Bind SPAN to a device: a new MPAN, its keys, and its personalisation profile."""
    check_writable(out, "--out")
    if keys_out:
        check_writable(keys_out, "--keys-out")
    with open_store(db_path, create=False) as store:
        span = resolve_number(_card_spans(store), span_text, "card")
        try:
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
            raise Refused(f"{exc} [{exc.reason}]") from None
    if keys_out and result.limited_use_keys is not None:
        write_private_text(keys_out, json.dumps(result.limited_use_keys, indent=1) + "\n")
    human(json_path)(
        f"provisioned {scheme} {mask_pan(result.mpan)} for card {mask_pan(span)} on {device_id}"
        f"{' (default)' if result.is_default else ''}; profile {out}"
    )
    emit_json(json_path, document("emvtap.switch.provision", FORMAT_VERSION, {
        "mpan": mask_pan(result.mpan), "span": mask_pan(span), "device_id": device_id,
        "device_type": device_type, "default": result.is_default, "profile": str(out),
        "keys": str(keys_out) if keys_out and result.limited_use_keys is not None else None}))


@switch_group.command("replenish", epilog="""\b
Example:
  emvtap switch replenish --db switch.db --count 10 --out batch.json 7890""")
@DB
@click.option("--count", type=click.IntRange(1, 1000), default=None,
              help="Keys in the batch, 1-1000 (default: the TSP's batch size).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Key batch JSON to write.")
@click.argument("mpan_text", metavar="MPAN")
def replenish(db_path: str, count: int | None, out: str, mpan_text: str) -> None:
    """HCE: issue the next batch of limited-use keys for MPAN (number, last four digits or
    masked form)."""
    check_writable(out, "--out")
    with open_store(db_path, create=False) as store:
        mpan = resolve_number(_token_mpans(store), mpan_text, "token")
        try:
            batch = replenish_limited_use_keys(store, mpan, count=count)
        except ProvisioningError as exc:
            raise Refused(f"{exc} [{exc.reason}]") from None
    write_private_text(out, json.dumps(batch, indent=1) + "\n")
    atcs = [k["atc"] for k in batch["keys"]]
    click.echo(f"batch {batch['batch']}: {len(atcs)} keys, ATC {atcs[0]}-{atcs[-1]} → {out}")


def _event_list() -> str:
    lines = ["\b", "Events (subject; channels):"]
    for name, rule in sorted(LIFECYCLE.items()):
        subject = {"token": "MPAN", "card": "SPAN", "device": "device id"}[rule.subject]
        lines.append(f"  {name:<24} {subject}; {', '.join(sorted(rule.channels))}")
    lines += ["", "\b", "Examples:",
              "  emvtap switch event --db switch.db --channel device device.lost phone-1",
              "  emvtap switch event --db switch.db --channel bank token.suspend 7890",
              "  emvtap switch event --db switch.db --channel bank --param amount=300.00 "
              "card.no_password_limit 0014",
              "Lifecycle table: switch/LIFECYCLE.md."]
    return "\n".join(lines)


class _Event(click.ParamType):
    name = "EVENT"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if value not in LIFECYCLE:
            close = [e for e in sorted(LIFECYCLE) if e.split(".")[0] == str(value).split(".")[0]]
            self.fail(f"{value!r} is not an event; "
                      f"{'one of ' + ', '.join(close) if close else 'see --help'}", param, ctx)
        return value


@switch_group.command("event", epilog=_event_list())
@DB
@click.option("--channel", type=click.Choice(CHANNELS), required=True,
              help="Who asks: the wallet (device), the bank or the network.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Event parameter: new_span, new_expiry (card.renewed), amount "
                   "(card.no_password_limit, major units). Repeatable.")
@click.option("--passcode-policy", type=click.Choice(["suspend", "delete"]), default="suspend",
              show_default=True,
              help="What device.passcode_removed does to the device's cards.")
@json_option("the event and every device card it changed")
@click.argument("event", type=_Event())
@click.argument("subject")
def event(
    db_path: str,
    channel: str,
    params: tuple[str, ...],
    passcode_policy: str,
    json_path: Path | None,
    event: str,
    subject: str,
) -> None:
    """Apply a lifecycle EVENT to SUBJECT: an MPAN or SPAN (number, last four digits or masked
    form) or a device id, as the event's row says."""
    values: dict[str, Any] = {}
    for p in params:
        key, sep, value = p.partition("=")
        if not sep:
            raise click.BadParameter(f"{p!r} is not KEY=VALUE", param_hint="--param")
        if key not in ("new_span", "new_expiry", "amount"):
            raise click.BadParameter(f"unknown parameter {key!r} (new_span, new_expiry, amount)",
                                     param_hint="--param")
        values[key] = parse_amount(value) if key == "amount" else value
    kind = LIFECYCLE[event].subject
    with open_store(db_path, create=False) as store:
        if kind == "token":
            subject = resolve_number(_token_mpans(store), subject, "token")
        elif kind == "card":
            subject = resolve_number(_card_spans(store), subject, "card")
        elif store.device(subject) is None:
            raise Refused(f"no device {subject!r} in the store")
        try:
            changes = apply_event(
                store,
                event,
                subject,
                channel=channel,
                params=values,
                policy=Policy(passcode_removed=passcode_policy),
            )
        except (LifecycleError, StoreError) as exc:
            raise _refused(exc) from None
    echo = human(json_path)
    echo(f"{event} by {channel}: {len(changes)} device card(s) affected")
    for c in changes:
        echo(f"  {mask_pan(c.mpan)} {c.from_state} → {c.to_state} holds={list(c.holds)}")
    shown = mask_pan(subject) if kind in ("token", "card") else subject
    emit_json(json_path, document("emvtap.switch.event", FORMAT_VERSION, {
        "event": event, "channel": channel, "subject": shown,
        "changes": [{"mpan": mask_pan(c.mpan), "from_state": c.from_state,
                     "to_state": c.to_state, "holds": list(c.holds)} for c in changes]}))


# --- views --------------------------------------------------------------------------------------

VIEWS = ("accounts", "cards", "devices", "tokens", "events", "history")


@switch_group.command("show", epilog="""\b
Examples:
  emvtap switch show --db switch.db tokens
  emvtap switch show --db switch.db --mpan 7890 history
  emvtap switch show --db switch.db --json - accounts
Tables show amounts in major units; the JSON keeps minor units.""")
@DB
@click.option("--mpan", "mpan_text", default=None, metavar="MPAN|LAST4|MASKED",
              help="Only this device card (tokens, events, history).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="At most this many rows (events: the latest, history: the latest).")
@click.option("--clear", is_flag=True, help="Show PANs unmasked.")
@json_option("the rows")
@click.argument("what", type=click.Choice(VIEWS))
def show(db_path: str, mpan_text: str | None, limit: int, clear: bool, json_path: Path | None,
         what: str) -> None:
    """Print accounts, cards, devices, tokens, the event log or the authorization history as
    tables (or JSON with --json)."""
    from dataclasses import asdict

    with open_store(db_path, create=False) as store:
        mpan = None if mpan_text is None else resolve_number(_token_mpans(store), mpan_text,
                                                              "token")
        if mpan is not None and what in ("accounts", "cards", "devices"):
            raise click.BadParameter(f"--mpan filters tokens, events and history, not {what}",
                                     param_hint="--mpan")
        if what == "accounts":
            rows: list[dict[str, Any]] = [
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
                for t in store.tokens() if mpan is None or t.mpan == mpan
            ]
        elif what == "events":
            rows = store.events(mpan=mpan)[-limit:]
        else:
            rows = store.authorizations(mpan=mpan, limit=limit)
    rows = rows[:limit] if what in ("accounts", "cards", "devices", "tokens") else rows
    if not clear:
        rows = [_masked_row(r) for r in rows]
    if json_path is not None:
        emit_json(json_path, document("emvtap.switch.show", FORMAT_VERSION,
                                      {"what": what, "rows": rows}))
        if json_path == STDOUT:
            return
    _print_table(what, rows)


def _masked_row(row: dict[str, Any]) -> dict[str, Any]:
    from emvtap.masking import mask_text

    masked = {}
    for key, value in row.items():
        if key in PAN_COLUMNS and isinstance(value, str):
            masked[key] = mask_pan(value)
        elif isinstance(value, str):
            masked[key] = mask_text(value)
        elif isinstance(value, dict | list):
            masked[key] = json.loads(mask_text(json.dumps(value, default=str)))
        else:
            masked[key] = value
    return masked


#: Short column headers of the human tables.
HEADERS = {"account_id": "account", "credit_limit": "credit", "daily_limit": "daily limit",
           "no_password_limit": "no-pwd limit", "token_expiry": "expiry", "is_default": "default",
           "limited_use": "LUK", "max_atc": "ATC", "device_type": "type",
           "passcode_set": "passcode", "signed_in": "signed in", "received_at": "at",
           "response_code": "RC", "auth_code": "auth", "from_state": "from",
           "to_state": "to", "replaced_by": "replaced by", "currency": "cur"}
#: Free-text columns, the only ones that wrap.
WRAPPING = frozenset({"holder", "reason", "subject", "holds"})


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in AMOUNT_COLUMNS and isinstance(value, int):
        return f"{Decimal(value).scaleb(-2):,.2f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    if key in ("at", "received_at") and isinstance(value, str):
        return value[:19].replace("T", " ")  # to the second; the JSON keeps the rest
    return str(value)


def _print_table(what: str, rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a pipe or a file: whole rows (scripts use --json)
        console = Console(width=200)
    if not rows:
        console.print(f"no {what} in the store")
        return
    table = Table(title=f"{what} ({len(rows)})", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    columns = [c for c in TABLE_COLUMNS[what] if c in rows[0]]
    for key in columns:
        table.add_column(HEADERS.get(key, key),
                         justify="right" if key in AMOUNT_COLUMNS else "left",
                         overflow="fold", no_wrap=key not in WRAPPING)
    for row in rows:
        table.add_row(*(_cell(key, row.get(key)) for key in columns))
    console.print(table)


def main() -> None:  # pragma: no cover - for `python -m switch.cli`
    switch_group()


if __name__ == "__main__":  # pragma: no cover
    main()
