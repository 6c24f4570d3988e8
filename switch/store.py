"""The switch's store: one SQLite file in WAL mode holding the issuer's accounts and physical
cards, the token vault (devices, device cards = tokens), every authorization and an append-only
event log (docs/domain.md, "SPAN and MPAN", "Token lifecycle").

Durability: ``synchronous=FULL`` by default, so a committed approval survives a crash or power
loss before its response is written (docs/architecture.md). The store is used from one thread at
a time (the server's host thread); each request runs in a SAVEPOINT inside a batch transaction,
see :meth:`Store.batch`.

Amounts are integers in minor units. Keys never leave this module in logs.

Card data at rest (:mod:`switch.sealing`): every SPAN and every key is stored sealed
(AES-256-GCM under a key derived from the key-encryption key kept outside the database); a SPAN
column holds the SPAN's keyed hash (HMAC), which is what look-ups and unique indexes use; the
event log names a card by that hash; stored responses are sealed and stored requests have their
PAN fields masked. The API of this class takes and returns clear values. A store of schema 1 (card
data in clear) is refused with a message, not migrated: see :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from emvtap import device_types
from emvtap.device_types import DeviceType
from emvtap.masking import mask_pan, mask_text, masked_repr
from emvtap.private_files import PRIVATE_MODE, create_private_file
from switch import token_states
from switch.sealing import KEK_ENV, KekError, Sealer, kek_path, load_or_create_kek
from switch.token_states import TokenState

__all__ = [
    "SCHEMA",
    "Account",
    "Card",
    "Device",
    "Store",
    "StoreError",
    "Token",
    "utc_now",
]

#: 2: card data sealed (switch.sealing). Schema 1 stores are refused (:class:`StoreError`).
SCHEMA_VERSION = 2

_SCHEMA = Template("""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- issuer: an account carries one debit or credit line and optionally an e-cash (UPCash) purse
CREATE TABLE IF NOT EXISTS accounts (
    account_id   INTEGER PRIMARY KEY,
    holder       TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL DEFAULT 'debit' CHECK (kind IN ('debit', 'credit')),
    currency     TEXT NOT NULL DEFAULT '156',
    balance      INTEGER NOT NULL DEFAULT 0,      -- debit: funds; credit: negative = owed
    credit_limit INTEGER NOT NULL DEFAULT 0,      -- available = balance + credit_limit
    daily_limit  INTEGER,                         -- NULL: no daily limit
    pin_hash     TEXT,                            -- scrypt of the PIN (switch.pin)
    ecash_balance INTEGER                         -- NULL: no e-cash account
);

-- issuer: physical cards (SPAN); several tokens map to one
CREATE TABLE IF NOT EXISTS cards (
    span         TEXT PRIMARY KEY,                -- keyed hash of the SPAN (switch.sealing)
    span_enc     BLOB NOT NULL,                   -- the SPAN, sealed
    account_id   INTEGER NOT NULL REFERENCES accounts(account_id),
    expiry       TEXT NOT NULL,                   -- YYMM
    psn          TEXT NOT NULL DEFAULT '00',
    status       TEXT NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'lost', 'cancelled')),
    no_password_limit INTEGER NOT NULL DEFAULT 0, -- in-app amount allowed without device CVM
    replaced_by  TEXT,                            -- renewal with a new PAN: its keyed hash
    replaced_by_enc BLOB,                         -- the new PAN, sealed
    par          TEXT,                            -- Payment Account Reference of the account
    key_ac BLOB, key_smi BLOB, key_smc BLOB       -- ICC master keys of the plastic, sealed
);

-- TSP: devices told apart by device id
CREATE TABLE IF NOT EXISTS devices (
    device_id    TEXT PRIMARY KEY,
    device_type  TEXT NOT NULL CHECK ($device_type_check),
    account_id   INTEGER REFERENCES accounts(account_id),
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'lost', 'wiped')),
    signed_in    INTEGER NOT NULL DEFAULT 1,
    passcode_set INTEGER NOT NULL DEFAULT 1
);

-- TSP: the token vault, one row per device card (MPAN)
CREATE TABLE IF NOT EXISTS tokens (
    mpan         TEXT PRIMARY KEY,
    span         TEXT NOT NULL REFERENCES cards(span),   -- keyed hash of the SPAN
    span_enc     BLOB NOT NULL,                   -- the SPAN, sealed
    device_id    TEXT NOT NULL REFERENCES devices(device_id),
    token_expiry TEXT NOT NULL,                   -- YYMM
    psn          TEXT NOT NULL DEFAULT '00',
    state        TEXT NOT NULL DEFAULT 'active'
                 CHECK ($token_state_check),
    holds        TEXT NOT NULL DEFAULT '[]',      -- JSON list: who holds it suspended
    is_default   INTEGER NOT NULL DEFAULT 0,
    token_requestor_id TEXT NOT NULL,
    par          TEXT NOT NULL,
    assurance_level TEXT NOT NULL DEFAULT '00',
    domain       TEXT NOT NULL DEFAULT '{}',      -- JSON token domain restriction controls
    cvn          INTEGER NOT NULL DEFAULT 1,
    limited_use  INTEGER NOT NULL DEFAULT 0,      -- 1: HCE, verified with limited-use keys
    key_ac BLOB NOT NULL, key_smi BLOB NOT NULL, key_smc BLOB NOT NULL,  -- sealed
    max_atc      INTEGER NOT NULL DEFAULT -1,     -- highest ATC with a verified cryptogram
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
-- docs/domain.md: one SPAN is loaded on one device only once
CREATE UNIQUE INDEX IF NOT EXISTS tokens_one_per_span_per_device
    ON tokens(span, device_id) WHERE state != '$token_deleted';
-- docs/domain.md: exactly one default card per device
CREATE UNIQUE INDEX IF NOT EXISTS tokens_one_default_per_device
    ON tokens(device_id) WHERE is_default = 1 AND state != '$token_deleted';
CREATE INDEX IF NOT EXISTS tokens_by_span ON tokens(span);
CREATE INDEX IF NOT EXISTS tokens_by_device ON tokens(device_id);

-- HCE limited-use keys: single-use session keys issued in batches (no master key on the phone)
CREATE TABLE IF NOT EXISTS limited_use_keys (
    mpan         TEXT NOT NULL REFERENCES tokens(mpan),
    atc          INTEGER NOT NULL,
    batch        INTEGER NOT NULL,
    key          BLOB NOT NULL,                   -- sealed
    issued_at    TEXT NOT NULL,
    used_at      TEXT,
    PRIMARY KEY (mpan, atc)
);

-- every request that passed the format checks, with its response
CREATE TABLE IF NOT EXISTS authorizations (
    id           INTEGER PRIMARY KEY,
    received_at  TEXT NOT NULL,
    mti          TEXT NOT NULL,
    terminal_id  TEXT NOT NULL,
    stan         TEXT NOT NULL,
    rrn          TEXT NOT NULL DEFAULT '',
    content_key  TEXT NOT NULL,                   -- what must match for a retransmission
    mpan         TEXT,                            -- the token; a DE 2 that is none: its keyed hash
    span         TEXT,                            -- keyed hash of the SPAN
    account_id   INTEGER,
    atc          INTEGER,                         -- set only when the cryptogram verified
    cryptogram   TEXT,
    amount       INTEGER,
    currency     TEXT,
    response_code TEXT NOT NULL,
    reason       TEXT NOT NULL,
    auth_code    TEXT,
    posted       INTEGER NOT NULL DEFAULT 0,      -- amount taken from the account
    original_id  INTEGER REFERENCES authorizations(id),   -- 0400: the reversed message
    reversed_by  INTEGER REFERENCES authorizations(id),   -- the latest reversal of it
    reversed_amount INTEGER NOT NULL DEFAULT 0,   -- of ``posted``, given back by reversals
    request      TEXT NOT NULL,                   -- JSON: PIN block removed, PAN fields masked
    response     BLOB NOT NULL                    -- the response message as sent, sealed
);
-- a retransmission (same MTI, terminal, STAN, RRN) is answered from the record
CREATE UNIQUE INDEX IF NOT EXISTS authorizations_retransmission
    ON authorizations(mti, terminal_id, stan, rrn);
-- one verified cryptogram per token and ATC: a replay can never be recorded twice
CREATE UNIQUE INDEX IF NOT EXISTS authorizations_token_atc
    ON authorizations(mpan, atc) WHERE atc IS NOT NULL;
CREATE INDEX IF NOT EXISTS authorizations_by_account ON authorizations(account_id, received_at);

-- the issuer's daily spend per account (what the daily limit is checked against)
CREATE TABLE IF NOT EXISTS daily_spend (
    account_id   INTEGER NOT NULL,
    day          TEXT NOT NULL,                   -- YYYY-MM-DD (UTC)
    amount       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
) WITHOUT ROWID;

-- append-only log of every state change, with the channel that asked for it
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    channel      TEXT NOT NULL,                   -- device | bank | network | admin
    event        TEXT NOT NULL,
    subject      TEXT NOT NULL,                   -- token:MPAN, card:<keyed hash>, device:ID
    mpan         TEXT,
    from_state   TEXT,
    to_state     TEXT,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
""")
#: the schema, its CHECKs built from the enums (device types, token states)
SCHEMA = _SCHEMA.substitute(
    device_type_check=device_types.sql_check("device_type"),
    token_state_check=token_states.sql_check("state"),
    token_deleted=TokenState.DELETED.value,
)


#: (table, column, declaration) added after the first schema; applied by :meth:`Store._migrate`.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # how the card was presented: DE 22, and the channel (contactless / in-app, docs/domain.md)
    ("authorizations", "entry_mode", "TEXT"),
    ("authorizations", "channel", "TEXT"),
)


_KEY_COLUMNS = ("key_ac", "key_smi", "key_smc")
_CARD_COLUMNS = (
    "span, span_enc, account_id, expiry, psn, status, no_password_limit, replaced_by_enc, par"
)


class StoreError(RuntimeError):
    """A store operation that violates a rule of the vault (e.g. a second MPAN for a SPAN on
    one device) or refers to something that does not exist."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Account:
    account_id: int
    holder: str
    kind: str
    currency: str
    balance: int
    credit_limit: int
    daily_limit: int | None
    pin_hash: str | None = field(repr=False)
    ecash_balance: int | None

    @property
    def available(self) -> int:
        return self.balance + self.credit_limit


@dataclass(frozen=True)
class Card:
    span: str
    account_id: int
    expiry: str
    psn: str
    status: str
    no_password_limit: int
    replaced_by: str | None
    par: str | None

    def __repr__(self) -> str:
        return masked_repr(self, ("span", "replaced_by"))


@dataclass(frozen=True)
class Device:
    device_id: str
    device_type: DeviceType
    account_id: int | None
    status: str
    signed_in: bool
    passcode_set: bool


@dataclass(frozen=True)
class Token:
    mpan: str
    span: str
    device_id: str
    token_expiry: str
    psn: str
    state: TokenState
    holds: tuple[str, ...]
    is_default: bool
    token_requestor_id: str
    par: str
    assurance_level: str
    domain: Mapping[str, Any]
    cvn: int
    limited_use: bool
    key_ac: bytes
    key_smi: bytes
    key_smc: bytes
    max_atc: int

    def __repr__(self) -> str:  # never print keys
        return f"Token(mpan=…{self.mpan[-4:]}, state={self.state}, device={self.device_id})"


def _token(row: sqlite3.Row, sealer: Sealer) -> Token:
    mpan = row["mpan"]
    return Token(
        mpan=mpan,
        span=sealer.open_text(row["span_enc"], f"tokens.span:{mpan}"),
        device_id=row["device_id"],
        token_expiry=row["token_expiry"],
        psn=row["psn"],
        state=TokenState(row["state"]),
        holds=tuple(json.loads(row["holds"])),
        is_default=bool(row["is_default"]),
        token_requestor_id=row["token_requestor_id"],
        par=row["par"],
        assurance_level=row["assurance_level"],
        domain=json.loads(row["domain"]),
        cvn=row["cvn"],
        limited_use=bool(row["limited_use"]),
        key_ac=sealer.open(row["key_ac"], f"tokens.key_ac:{mpan}"),
        key_smi=sealer.open(row["key_smi"], f"tokens.key_smi:{mpan}"),
        key_smc=sealer.open(row["key_smc"], f"tokens.key_smc:{mpan}"),
        max_atc=row["max_atc"],
    )


def make_store_private(path: str) -> None:
    """The store, its -wal and its -shm at mode 0600 whatever existed before (SQLite gives new
    -wal and -shm files the database file's mode, and leaves existing ones as they are); a path
    SQLite cannot open either, it reports."""
    with contextlib.suppress(OSError):
        create_private_file(path)
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            os.chmod(name, PRIVATE_MODE)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot make {name} owner-only (mode 0600): {exc}") from None


class Store:
    """One SQLite file. ``synchronous`` is ``FULL`` (durable on power loss) or ``NORMAL``
    (durable on a process crash; WAL)."""

    def __init__(
        self, path: str | Path, *, synchronous: str = "FULL", kek: bytes | None = None
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = str(path)
        try:
            self.sealer = Sealer(kek if kek is not None else load_or_create_kek(self.path))
        except (KekError, OSError) as exc:
            raise StoreError(f"store {self.path}: {exc}") from None
        if self.path != ":memory:":
            make_store_private(self.path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (explicit batches).
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")
        try:
            self._check_version_and_kek()
            self.db.executescript(SCHEMA)
            self._migrate()
            for key, value in (
                ("schema_version", str(SCHEMA_VERSION)),
                ("kek_check", self.sealer.check_value),
            ):
                self.db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value)
                )
        except BaseException:
            self.db.close()
            raise
        self._depth = 0

    def _check_version_and_kek(self) -> None:
        """Refuse a store of another schema (schema 1 kept card data in clear: it is refused,
        not migrated) or sealed under another key-encryption key."""
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        version = meta.get("schema_version")
        if version is not None and version != str(SCHEMA_VERSION):
            raise StoreError(
                f"store {self.path} has schema {version}; this switch reads schema"
                f" {SCHEMA_VERSION} only. Schema 1 kept card numbers and keys in clear and is"
                " not migrated: enroll the cards again into a new store (emvtap switch enroll"
                " --db NEW.db PROFILE), then delete the old file and its -wal and -shm"
                " securely."
            )
        check = meta.get("kek_check")
        if check is not None and not hmac.compare_digest(check, self.sealer.check_value):
            raise StoreError(
                f"store {self.path} was sealed under another key-encryption key than the one"
                f" in ${KEK_ENV} or {kek_path(self.path)}"
            )

    def _migrate(self) -> None:
        """Add columns that later versions introduced to a store an earlier version created."""
        for table, column, decl in _ADDED_COLUMNS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction, or a savepoint when one is already open (nested use is fine).
        Committed (durably) when the outermost block ends without an exception."""
        if self._depth == 0:
            self.db.execute("BEGIN IMMEDIATE")
        else:
            self.db.execute(f"SAVEPOINT sp{self._depth}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.db.execute("ROLLBACK")
            else:
                self.db.execute(f"ROLLBACK TO sp{self._depth}")
                self.db.execute(f"RELEASE sp{self._depth}")
            raise
        self._depth -= 1
        if self._depth == 0:
            self.db.execute("COMMIT")
        else:
            self.db.execute(f"RELEASE sp{self._depth}")

    batch = transaction  # the server runs a batch of requests in one transaction

    # --- issuer: accounts and cards ------------------------------------------------------------

    def add_account(
        self,
        *,
        holder: str = "",
        kind: str = "debit",
        currency: str = "156",
        balance: int = 0,
        credit_limit: int = 0,
        daily_limit: int | None = None,
        pin_hash: str | None = None,
        ecash_balance: int | None = None,
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO accounts(holder, kind, currency, balance, credit_limit, daily_limit,"
            " pin_hash, ecash_balance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (holder, kind, currency, balance, credit_limit, daily_limit, pin_hash, ecash_balance),
        )
        return int(cur.lastrowid or 0)

    def account(self, account_id: int) -> Account | None:
        row = self.db.execute(
            "SELECT * FROM accounts WHERE account_id = ?", (account_id,)
        ).fetchone()
        return Account(**dict(row)) if row else None

    def accounts(self) -> list[Account]:
        return [Account(**dict(r)) for r in self.db.execute("SELECT * FROM accounts ORDER BY 1")]

    def update_account(self, account_id: int, **values: Any) -> None:
        allowed = {"holder", "balance", "credit_limit", "daily_limit", "pin_hash", "ecash_balance"}
        if not values or set(values) - allowed:
            raise StoreError(f"cannot update account fields {sorted(set(values) - allowed)}")
        cols = ", ".join(f"{k} = ?" for k in values)
        cur = self.db.execute(
            f"UPDATE accounts SET {cols} WHERE account_id = ?", (*values.values(), account_id)
        )
        if cur.rowcount != 1:
            raise StoreError(f"no account {account_id}")

    def post(self, account_id: int, delta: int, day: str | None = None) -> None:
        """Add ``delta`` (negative: debit) to the account balance; with ``day`` (YYYY-MM-DD)
        the day's spend moves by ``-delta`` too (a reversal credits the original's day)."""
        self.db.execute(
            "UPDATE accounts SET balance = balance + ? WHERE account_id = ?", (delta, account_id)
        )
        if day is not None:
            self.db.execute(
                "INSERT INTO daily_spend(account_id, day, amount) VALUES (?, ?, ?)"
                " ON CONFLICT(account_id, day) DO UPDATE SET amount = amount + excluded.amount",
                (account_id, day, -delta),
            )

    def add_card(
        self,
        span: str,
        account_id: int,
        expiry: str,
        *,
        psn: str = "00",
        no_password_limit: int = 0,
        par: str | None = None,
        keys: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        ref = self.pan_ref(span)
        k = (
            [
                self.sealer.seal(x, f"cards.{n}:{ref}")
                for n, x in zip(_KEY_COLUMNS, keys, strict=True)
            ]
            if keys
            else [None, None, None]
        )
        try:
            self.db.execute(
                "INSERT INTO cards(span, span_enc, account_id, expiry, psn, no_password_limit,"
                " par, key_ac, key_smi, key_smc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ref,
                    self.sealer.seal_text(span, f"cards.span:{ref}"),
                    account_id,
                    expiry,
                    psn,
                    no_password_limit,
                    par,
                    *k,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"card …{span[-4:]} cannot be added: {exc}") from None

    def pan_ref(self, pan: str) -> str:
        """The keyed hash a PAN is stored and looked up by (:mod:`switch.sealing`)."""
        return self.sealer.pan_ref(pan)

    def _card(self, row: sqlite3.Row, span: str | None = None) -> Card:
        ref = row["span"]
        replaced = row["replaced_by_enc"]
        return Card(
            span=span or self.sealer.open_text(row["span_enc"], f"cards.span:{ref}"),
            account_id=row["account_id"],
            expiry=row["expiry"],
            psn=row["psn"],
            status=row["status"],
            no_password_limit=row["no_password_limit"],
            replaced_by=(
                self.sealer.open_text(replaced, f"cards.replaced_by:{ref}") if replaced else None
            ),
            par=row["par"],
        )

    def card(self, span: str) -> Card | None:
        row = self.db.execute(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE span = ?", (self.pan_ref(span),)
        ).fetchone()
        return self._card(row, span) if row else None

    def card_and_account(self, span: str) -> tuple[Card, Account] | None:
        """The card and its account in one query (the issuer's hot path)."""
        row = self.db.execute(
            "SELECT c.span, c.span_enc, c.account_id, c.expiry, c.psn, c.status,"
            " c.no_password_limit, c.replaced_by_enc, c.par, a.holder, a.kind, a.currency,"
            " a.balance, a.credit_limit, a.daily_limit, a.pin_hash, a.ecash_balance"
            " FROM cards c JOIN accounts a ON a.account_id = c.account_id WHERE c.span = ?",
            (self.pan_ref(span),),
        ).fetchone()
        if row is None:
            return None
        d = dict(row)
        account = Account(**{k: d[k] for k in Account.__dataclass_fields__})
        return self._card(row, span), account

    def cards(self, account_id: int | None = None) -> list[Card]:
        sql = f"SELECT {_CARD_COLUMNS} FROM cards"
        args: tuple[Any, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = ?"
            args = (account_id,)
        cards = [self._card(r) for r in self.db.execute(sql, args)]
        return sorted(cards, key=lambda c: c.span)

    def update_card(self, span: str, **values: Any) -> None:
        allowed = {"expiry", "psn", "status", "no_password_limit", "replaced_by", "par"}
        if not values or set(values) - allowed:
            raise StoreError(f"cannot update card fields {sorted(set(values) - allowed)}")
        ref = self.pan_ref(span)
        values = dict(values)
        if values.get("replaced_by") is not None:
            new = str(values["replaced_by"])
            values["replaced_by"] = self.pan_ref(new)
            values["replaced_by_enc"] = self.sealer.seal_text(new, f"cards.replaced_by:{ref}")
        cols = ", ".join(f"{k} = ?" for k in values)
        cur = self.db.execute(f"UPDATE cards SET {cols} WHERE span = ?", (*values.values(), ref))
        if cur.rowcount != 1:
            raise StoreError(f"no card …{span[-4:]}")

    # --- TSP: devices and tokens ---------------------------------------------------------------

    def add_device(self, device_id: str, device_type: DeviceType, account_id: int | None) -> None:
        try:
            self.db.execute(
                "INSERT INTO devices(device_id, device_type, account_id) VALUES (?, ?, ?)",
                (device_id, device_type, account_id),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"device {device_id} cannot be added: {exc}") from None

    def device(self, device_id: str) -> Device | None:
        row = self.db.execute("SELECT * FROM devices WHERE device_id = ?", (device_id,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        return Device(
            **{
                **d,
                "device_type": DeviceType(d["device_type"]),
                "signed_in": bool(d["signed_in"]),
                "passcode_set": bool(d["passcode_set"]),
            }
        )

    def devices(self) -> list[Device]:
        ids = [r[0] for r in self.db.execute("SELECT device_id FROM devices ORDER BY 1")]
        return [d for d in (self.device(i) for i in ids) if d]

    def update_device(self, device_id: str, **values: Any) -> None:
        allowed = {"status", "signed_in", "passcode_set", "account_id"}
        if not values or set(values) - allowed:
            raise StoreError(f"cannot update device fields {sorted(set(values) - allowed)}")
        cols = ", ".join(f"{k} = ?" for k in values)
        cur = self.db.execute(
            f"UPDATE devices SET {cols} WHERE device_id = ?", (*values.values(), device_id)
        )
        if cur.rowcount != 1:
            raise StoreError(f"no device {device_id}")

    def add_token(
        self,
        *,
        mpan: str,
        span: str,
        device_id: str,
        token_expiry: str,
        psn: str,
        token_requestor_id: str,
        par: str,
        keys: tuple[bytes, bytes, bytes],
        cvn: int = 1,
        limited_use: bool = False,
        is_default: bool = False,
        assurance_level: str = "00",
        domain: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        ts = _iso(now or utc_now())
        try:
            self.db.execute(
                "INSERT INTO tokens(mpan, span, span_enc, device_id, token_expiry, psn,"
                " is_default, token_requestor_id, par, assurance_level, domain, cvn, limited_use,"
                " key_ac, key_smi, key_smc, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    mpan,
                    self.pan_ref(span),
                    self.sealer.seal_text(span, f"tokens.span:{mpan}"),
                    device_id,
                    token_expiry,
                    psn,
                    int(is_default),
                    token_requestor_id,
                    par,
                    assurance_level,
                    json.dumps(dict(domain or {}), sort_keys=True),
                    cvn,
                    int(limited_use),
                    *(
                        self.sealer.seal(k, f"tokens.{n}:{mpan}")
                        for n, k in zip(_KEY_COLUMNS, keys, strict=True)
                    ),
                    ts,
                    ts,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"token …{mpan[-4:]} cannot be added: {exc}") from None

    def token(self, mpan: str) -> Token | None:
        row = self.db.execute("SELECT * FROM tokens WHERE mpan = ?", (mpan,)).fetchone()
        return _token(row, self.sealer) if row else None

    def tokens(
        self,
        *,
        span: str | None = None,
        device_id: str | None = None,
        include_deleted: bool = True,
    ) -> list[Token]:
        where, args = [], []
        if span is not None:
            where.append("span = ?")
            args.append(self.pan_ref(span))
        if device_id is not None:
            where.append("device_id = ?")
            args.append(device_id)
        if not include_deleted:
            where.append("state != ?")
            args.append(TokenState.DELETED.value)
        sql = "SELECT * FROM tokens" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.db.execute(sql + " ORDER BY created_at, mpan", args)
        return [_token(r, self.sealer) for r in rows]

    def update_token(self, mpan: str, *, now: datetime | None = None, **values: Any) -> None:
        allowed = {
            "state",
            "holds",
            "is_default",
            "span",
            "token_expiry",
            "domain",
            "max_atc",
            "token_requestor_id",
            "par",
            "assurance_level",
            "key_ac",
            "key_smi",
            "key_smc",
            "cvn",
            "psn",
            "limited_use",
        }
        if not values or set(values) - allowed:
            raise StoreError(f"cannot update token fields {sorted(set(values) - allowed)}")
        row: dict[str, Any] = {}
        for k, v in values.items():
            if k == "holds":
                v = json.dumps(sorted(set(v)))
            elif k == "domain":
                v = json.dumps(dict(v), sort_keys=True)
            elif k in _KEY_COLUMNS:
                v = self.sealer.seal(bytes(v), f"tokens.{k}:{mpan}")
            elif k == "span":
                row["span_enc"] = self.sealer.seal_text(str(v), f"tokens.span:{mpan}")
                v = self.pan_ref(str(v))
            elif k in ("is_default", "limited_use"):
                v = int(v)
            row[k] = v
        row["updated_at"] = _iso(now or utc_now())
        cols = ", ".join(f"{k} = ?" for k in row)
        try:
            cur = self.db.execute(f"UPDATE tokens SET {cols} WHERE mpan = ?", (*row.values(), mpan))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"token …{mpan[-4:]} cannot be updated: {exc}") from None
        if cur.rowcount != 1:
            raise StoreError(f"no token …{mpan[-4:]}")

    def raise_max_atc(self, mpan: str, atc: int) -> None:
        self.db.execute("UPDATE tokens SET max_atc = MAX(max_atc, ?) WHERE mpan = ?", (atc, mpan))

    # --- HCE limited-use keys ------------------------------------------------------------------

    def add_limited_use_keys(
        self, mpan: str, batch: int, keys: Mapping[int, bytes], now: datetime | None = None
    ) -> None:
        ts = _iso(now or utc_now())
        self.db.executemany(
            "INSERT INTO limited_use_keys(mpan, atc, batch, key, issued_at) VALUES (?, ?, ?, ?, ?)",
            [
                (mpan, atc, batch, self.sealer.seal(key, f"limited_use_keys:{mpan}:{atc}"), ts)
                for atc, key in sorted(keys.items())
            ],
        )

    def limited_use_key(self, mpan: str, atc: int) -> tuple[bytes, str | None] | None:
        """``(key, used_at)`` of the key issued for ``atc``, or ``None`` if none was issued."""
        row = self.db.execute(
            "SELECT key, used_at FROM limited_use_keys WHERE mpan = ? AND atc = ?", (mpan, atc)
        ).fetchone()
        if row is None:
            return None
        return self.sealer.open(row["key"], f"limited_use_keys:{mpan}:{atc}"), row["used_at"]

    def use_limited_use_key(self, mpan: str, atc: int, now: datetime | None = None) -> bool:
        """Mark the key used; ``False`` when it was already used (single use)."""
        cur = self.db.execute(
            "UPDATE limited_use_keys SET used_at = ?"
            " WHERE mpan = ? AND atc = ? AND used_at IS NULL",
            (_iso(now or utc_now()), mpan, atc),
        )
        return cur.rowcount == 1

    def limited_use_key_status(self, mpan: str) -> dict[str, int]:
        row = self.db.execute(
            "SELECT COUNT(*) AS issued, COUNT(used_at) AS used, COALESCE(MAX(atc), -1) AS top,"
            " COALESCE(MAX(batch), 0) AS batch FROM limited_use_keys WHERE mpan = ?",
            (mpan,),
        ).fetchone()
        return {
            "issued": row["issued"],
            "used": row["used"],
            "unused": row["issued"] - row["used"],
            "highest_atc": row["top"],
            "last_batch": row["batch"],
        }

    # --- authorizations ------------------------------------------------------------------------

    def _authorization(self, row: sqlite3.Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        d = dict(row)
        if d["response"]:
            d["response"] = self.sealer.open(d["response"], "authorizations.response")
        return d

    def find_authorization(
        self, mti: str, terminal_id: str, stan: str, rrn: str
    ) -> dict[str, Any] | None:
        """The record (``response`` opened, ``span`` the keyed hash) of that request key."""
        return self._authorization(
            self.db.execute(
                "SELECT * FROM authorizations WHERE mti = ? AND terminal_id = ? AND stan = ?"
                " AND rrn = ?",
                (mti, terminal_id, stan, rrn),
            ).fetchone()
        )

    def authorization(self, auth_id: int) -> dict[str, Any] | None:
        return self._authorization(
            self.db.execute("SELECT * FROM authorizations WHERE id = ?", (auth_id,)).fetchone()
        )

    def atc_seen(self, mpan: str, atc: int) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM authorizations WHERE mpan = ? AND atc = ?", (mpan, atc)
            ).fetchone()
            is not None
        )

    def approved_today(self, account_id: int, day: str) -> int:
        """Posted amounts (net of reversals) of the account on ``day`` (YYYY-MM-DD, UTC)."""
        row = self.db.execute(
            "SELECT amount FROM daily_spend WHERE account_id = ? AND day = ?", (account_id, day)
        ).fetchone()
        return int(row[0]) if row else 0

    def record_authorization(self, **values: Any) -> int:
        """Insert a record: ``span`` is given clear (stored as its keyed hash) or as
        ``span_ref``; ``response`` is sealed; ``request`` must already be masked."""
        values = dict(values)
        values["received_at"] = _iso(values.get("received_at") or utc_now())
        values["request"] = json.dumps(values["request"], sort_keys=True)
        if "span_ref" in values:
            values["span"] = values.pop("span_ref")
        elif values.get("span") is not None:
            values["span"] = self.pan_ref(values["span"])
        if values.get("response"):
            values["response"] = self.sealer.seal(values["response"], "authorizations.response")
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.db.execute(
            f"INSERT INTO authorizations({cols}) VALUES ({marks})", tuple(values.values())
        )
        return int(cur.lastrowid or 0)

    def set_authorization_response(self, auth_id: int, response: bytes, **values: Any) -> None:
        response = self.sealer.seal(response, "authorizations.response")
        sets = ", ".join(f"{k} = ?" for k in ("response", *values))
        self.db.execute(
            f"UPDATE authorizations SET {sets} WHERE id = ?", (response, *values.values(), auth_id)
        )

    def mark_reversed(self, original_id: int, reversal_id: int, amount: int) -> None:
        """``amount`` of the original's posting given back by reversal ``reversal_id``."""
        self.db.execute(
            "UPDATE authorizations SET reversed_by = ?, reversed_amount = reversed_amount + ?"
            " WHERE id = ?",
            (reversal_id, amount, original_id),
        )

    def authorizations(
        self, *, mpan: str | None = None, account_id: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The history, newest first, for people: ``span`` is the card's masked number."""
        where, args = [], []
        if mpan is not None:
            where.append("a.mpan = ?")
            args.append(mpan)
        if account_id is not None:
            where.append("a.account_id = ?")
            args.append(account_id)
        sql = (
            "SELECT a.id, a.received_at, a.mti, a.terminal_id, a.stan, a.rrn, a.mpan, a.span,"
            " a.account_id, a.atc, a.amount, a.currency, a.response_code, a.reason, a.auth_code,"
            " a.posted, a.original_id, a.reversed_by, a.reversed_amount, a.entry_mode, a.channel,"
            " c.span_enc"
            " FROM authorizations a LEFT JOIN cards c ON c.span = a.span"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY a.id DESC LIMIT ?"
        rows = []
        for r in self.db.execute(sql, (*args, limit)):
            row = dict(r)
            sealed = row.pop("span_enc")
            if sealed is not None:
                row["span"] = mask_pan(self.sealer.open_text(sealed, f"cards.span:{row['span']}"))
            rows.append(row)
        return rows

    # --- events --------------------------------------------------------------------------------

    def append_event(
        self,
        *,
        channel: str,
        event: str,
        subject: str,
        mpan: str | None = None,
        from_state: str | None = None,
        to_state: str | None = None,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Append an event; a card subject (``card:<SPAN>``) is written as ``card:<keyed
        hash>`` and any PAN-like number in ``detail`` masked - the log is append-only, so
        nothing readable may enter it."""
        kind, sep, name = subject.partition(":")
        if kind == "card" and sep:
            subject = f"card:{self.pan_ref(name)}"
        cur = self.db.execute(
            "INSERT INTO events(at, channel, event, subject, mpan, from_state, to_state, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _iso(now or utc_now()),
                channel,
                event,
                subject,
                mpan,
                from_state,
                to_state,
                mask_text(json.dumps(dict(detail or {}), sort_keys=True)),
            ),
        )
        return int(cur.lastrowid or 0)

    def events(self, *, mpan: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events WHERE seq > ?"
        args: list[Any] = [since]
        if mpan is not None:
            sql += " AND mpan = ?"
            args.append(mpan)
        rows = self.db.execute(sql + " ORDER BY seq", args)
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
