"""The card's persistent state (per application: ATC, counters, blocked flag, PIN try counter,
issuer data, the limited-use key wallet; per card: the card-blocked flag), written atomically.

Rules (EMV 4.4 Book 2, A1.3: a session key is never reused; Book 3, 6.5.1 and 6.5.10: a block
is permanent until the issuer lifts it):

- Every change is one write of the whole state: to a temporary file, fsync'ed, renamed over the
  old file, and the directory fsync'ed. A crash leaves either the old or the new state, never a
  mixture, so a block and the ATC it came with are never separated.
- The ATC (and a limited-use key taken for it) is made durable *before* a cryptogram computed
  with it leaves the card: a crash can skip an ATC but never repeat one.
- Nothing that fails to be written is taken as done: :meth:`StateStore.update_app` changes the
  in-memory state only after the write succeeded.

Limited-use key batches delivered while the card runs (``emvtap card replenish``) are dropped
into an *inbox* directory next to the state file and imported by the card itself
(:meth:`StateStore.import_inbox`), so the state file has exactly one writer.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from emvtap.masking import masked_repr

__all__ = [
    "ATC_MAX",
    "USER_VERIFIED_MARKER",
    "AppState",
    "AtcExhausted",
    "CardState",
    "LimitedUseKey",
    "LukBatch",
    "OnlineContext",
    "StateStore",
]

ATC_MAX = 0xFFFF
STATE_FORMAT = "emvtap-card-state/2"
USER_VERIFIED_MARKER = "user-verified"


class AtcExhausted(RuntimeError):
    """The ATC reached its maximum: the application must refuse to generate cryptograms."""


@dataclass(frozen=True)
class LimitedUseKey:
    """One HCE limited-use key (docs/domain.md, Device types): the AC session key the TSP derived
    for one ATC, with the secure-messaging session keys for that ATC when the TSP sends them,
    and an optional validity end (UTC, ISO 8601)."""

    atc: int
    ac: str  # hex, 16 bytes
    smi: str = ""  # hex; empty: scripts cannot be verified in this transaction
    smc: str = ""
    batch: int = 0
    expires: str = ""  # "" = bound to the ATC only

    def __repr__(self) -> str:  # never print keys
        return f"LimitedUseKey(atc={self.atc}, batch={self.batch}, expires={self.expires!r})"


@dataclass(frozen=True)
class LukBatch:
    """A batch of limited-use keys as the TSP delivers it (``hce_card.wallet.parse_batch``)."""

    keys: tuple[LimitedUseKey, ...]
    mpan: str = ""
    batch: int = 0
    no_password_limit: int | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("mpan",))


@dataclass(frozen=True)
class OnlineContext:
    """The last ARQC that left the card, kept until its transaction completes, for issuer
    authentication and issuer scripts (Book 3, 10.9-10.10; C-3 issuer update processing on
    re-presentation). ``key`` is the limited-use key of that ATC in an HCE wallet."""

    atc: int
    arqc: str  # hex
    key: LimitedUseKey | None = None
    #: issuer authentication is over for it (second GENERATE AC or EXTERNAL AUTHENTICATE on
    #: re-presentation); scripts may still come
    authenticated: bool = False


@dataclass(frozen=True)
class AppState:
    atc: int = 0
    last_online_atc: int = 0
    consecutive_offline: int = 0
    cumulative_offline_amount: int = 0
    application_blocked: bool = False
    #: issuer authentication failed on the last online transaction (CVR byte 3 b4)
    issuer_authentication_failed: bool = False
    #: an ARQC went out in a first GENERATE AC and no second one followed (CVR byte 3 b8)
    last_online_not_completed: bool = False
    #: the last online transaction completed without issuer authentication (CVR byte 3 b3)
    issuer_authentication_not_performed: bool = False
    #: issuer script commands with secure messaging processed in the last transaction
    script_commands: int = 0
    script_failed: bool = False
    pin_try_counter: int = 3
    pin_try_limit: int = 3
    #: hex of the ISO 9564 format 2 block of the offline PIN, if set (kept out of reprs)
    pin_block: str = field(default="", repr=False)
    #: data set by PUT DATA (tag hex → value hex); overrides the profile
    data: dict[str, str] = field(default_factory=dict)
    online: OnlineContext | None = None
    #: HCE wallet: unused limited-use keys, ascending ATC
    keys: tuple[LimitedUseKey, ...] = ()
    #: HCE wallet: the key of the transaction in progress (erased at the next GPO)
    current_key: LimitedUseKey | None = None
    batches: tuple[int, ...] = ()  # imported batch numbers
    #: the in-app no-password limit the issuer pushed with the last batch (docs/domain.md)
    no_password_limit: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AppState:
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in d.items() if k in known}
        if raw.get("online"):
            online = dict(raw["online"])
            if online.get("key"):
                online["key"] = LimitedUseKey(**online["key"])
            raw["online"] = OnlineContext(**online)
        raw["keys"] = tuple(LimitedUseKey(**k) for k in raw.get("keys", ()))
        if raw.get("current_key"):
            raw["current_key"] = LimitedUseKey(**raw["current_key"])
        raw["batches"] = tuple(raw.get("batches", ()))
        raw["data"] = dict(raw.get("data", {}))
        return cls(**raw)


@dataclass(frozen=True)
class CardState:
    """The whole card: ``applications`` maps the AID (hex, upper case) to its state."""

    card_blocked: bool = False
    #: the user authenticated on the device for the next transaction (CDCVM, C-3 / C-7)
    user_verified: bool = False
    applications: dict[str, AppState] = field(default_factory=dict)

    def app(self, aid: str) -> AppState:
        return self.applications.get(aid.upper(), AppState())

    @property
    def atc(self) -> int:
        """The highest ATC of the card's applications (a one-application card: its ATC)."""
        return max((a.atc for a in self.applications.values()), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT} | asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CardState:
        if "format" not in d and "atc" in d:  # format 1: one application, flat
            legacy = AppState.from_dict(d)
            return cls(bool(d.get("card_blocked", False)), False, {"*": legacy})
        return cls(
            bool(d.get("card_blocked", False)),
            bool(d.get("user_verified", False)),
            {aid: AppState.from_dict(a) for aid, a in d.get("applications", {}).items()},
        )


class StateStore:
    """Holds the current :class:`CardState`; with a ``path`` every change is durable.

    ``write_hook`` is called with the temporary file's path after it is synced and before the
    rename: tests use it to simulate a crash at that point."""

    def __init__(
        self,
        path: str | Path | None = None,
        initial: CardState | None = None,
        write_hook: Callable[[Path], None] | None = None,
    ) -> None:
        self.path = Path(path) if path else None
        self.write_hook = write_hook
        if self.path and self.path.exists():
            self._state = CardState.from_dict(json.loads(self.path.read_text()))
        else:
            self._state = initial or CardState()
            self._write(self._state)

    @property
    def state(self) -> CardState:
        return self._state

    @property
    def inbox(self) -> Path | None:
        """Where ``emvtap card replenish`` drops key batches for this card."""
        return self.path.with_name(self.path.name + ".inbox") if self.path else None

    def app(self, aid: bytes | str) -> AppState:
        return self._state.app(_aid_key(aid))

    def update(self, **changes: Any) -> CardState:
        """Change card-level fields (``card_blocked``, ``user_verified``) durably."""
        return self._commit(replace(self._state, **changes))

    def update_app(self, aid: bytes | str, **changes: Any) -> AppState:
        """Change one application's fields durably; returns its new state."""
        key = _aid_key(aid)
        self._claim_legacy(key)
        apps = dict(self._state.applications)
        apps[key] = replace(self._state.app(key), **changes)
        self._commit(replace(self._state, applications=apps))
        return apps[key]

    def update_card_and_app(self, aid: bytes | str, card: Mapping[str, Any],
                            app: Mapping[str, Any]) -> CardState:
        """Card-level and application changes in one write (CARD BLOCK with its script
        counters)."""
        key = _aid_key(aid)
        self._claim_legacy(key)
        apps = dict(self._state.applications)
        apps[key] = replace(self._state.app(key), **app)
        return self._commit(replace(self._state, applications=apps, **card))

    def next_atc(self, aid: bytes | str, atc: int | None = None, **changes: Any) -> AppState:
        """Advance the ATC (to ``atc`` when a limited-use key dictates it, never backwards)
        together with ``changes``, durably, and return the new state."""
        current = self.app(aid).atc
        new = current + 1 if atc is None else atc
        if current >= ATC_MAX or new > ATC_MAX:
            raise AtcExhausted("ATC reached FFFF")
        if new <= current:
            raise ValueError(f"ATC must grow: {new} after {current}")
        return self.update_app(aid, atc=new, **changes)

    def import_inbox(self, aid: bytes | str, parse: Callable[[bytes], LukBatch]) -> int:
        """Import the key batches waiting in :attr:`inbox` into application ``aid``: keys for
        an ATC the card has passed, or already held, are dropped; each file is removed once
        its keys are durable (a crash in between imports it again, harmlessly). Returns the
        number of keys added. Files ``parse`` rejects are renamed ``*.rejected``."""
        inbox = self.inbox
        if inbox is None or not inbox.is_dir():
            return 0
        added = 0
        for item in sorted(inbox.glob("*.json")):
            try:
                batch = parse(item.read_bytes())
            except ValueError:
                item.rename(item.with_suffix(".rejected"))
                continue
            added += self.add_batch(aid, batch)
            item.unlink()
        return added

    def import_user_verification(self) -> bool:
        """The wallet's "user authenticated" signal (``emvtap card authenticate``), dropped into
        the inbox as ``user-verified``: set :attr:`CardState.user_verified` durably, then
        remove the marker. Returns whether there was one."""
        marker = self.inbox / USER_VERIFIED_MARKER if self.inbox else None
        if marker is None or not marker.exists():
            return False
        self.update(user_verified=True)
        marker.unlink(missing_ok=True)
        return True

    def add_batch(self, aid: bytes | str, batch: LukBatch) -> int:
        """Add the batch's keys the card can still use (above its ATC, not held yet) and the
        limit it carries, in one write; returns how many keys were added."""
        st = self.app(aid)
        held = {k.atc for k in st.keys}
        fresh = [k for k in batch.keys if k.atc > st.atc and k.atc not in held]
        limit = batch.no_password_limit
        if not fresh and (limit is None or limit == st.no_password_limit):
            return 0
        batches = tuple(sorted(set(st.batches) | {k.batch for k in fresh}))
        merged = tuple(sorted((*st.keys, *fresh), key=lambda k: k.atc))
        changes: dict[str, Any] = {"keys": merged, "batches": batches}
        if limit is not None:
            changes["no_password_limit"] = limit
        self.update_app(aid, **changes)
        return len(fresh)

    # --- internals ----------------------------------------------------------------------------

    def adopt_legacy(self, aid: bytes | str) -> None:
        """A format-1 state file (one application, no AID) belongs to ``aid`` - the card's
        first payment application."""
        self._claim_legacy(_aid_key(aid))

    def _claim_legacy(self, key: str) -> None:
        if "*" in self._state.applications and key not in self._state.applications:
            apps = dict(self._state.applications)
            apps[key] = apps.pop("*")
            self._state = replace(self._state, applications=apps)

    def _commit(self, new: CardState) -> CardState:
        self._write(new)
        self._state = new
        return new

    def _write(self, state: CardState) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(state.to_dict(), f)
                f.flush()
                os.fsync(f.fileno())
            if self.write_hook is not None:
                self.write_hook(Path(tmp))
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _aid_key(aid: bytes | str) -> str:
    return aid.hex().upper() if isinstance(aid, bytes | bytearray) else aid.upper()
