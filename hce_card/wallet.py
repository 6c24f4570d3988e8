"""The HCE wallet: no master key on the device, a batch of limited-use keys instead (docs/domain.md,
Device types: HCE keeps short-lived keys in the app).

- A limited-use key (LUK) is the AC session key the TSP derived from the token's ICC master key
  for one ATC (``switch/arqc.py``: "the key the card used *is* the AC session key"), with the
  script integrity / confidentiality session keys of that ATC when the TSP sends them, and
  optionally a validity end. The card uses each key for exactly one transaction: taking it
  advances the ATC to the key's ATC and moves the key out of the batch in one durable write
  (``PaymentApplication.begin_transaction``).
- The batch is "low" when :data:`LOW_WATER` keys or fewer are left; with none left the card
  declines offline (AAC) and says why.
- Keys arrive as a batch document (:func:`parse_batch`), written by ``emvtap card replenish``.

Who computes with which key, per transaction, is a :class:`TransactionKeys`: from the ICC
master keys of a profile (an SE card) or from the limited-use key (an HCE wallet).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from emvtap.cryptogram_versions import CryptogramVersion
from emvtap.profile import ApplicationProfile, CardKeys
from hce_card.state import AppState, LimitedUseKey, LukBatch, StateStore

log = logging.getLogger("emvtap.card")

__all__ = [
    "BATCH_FORMAT",
    "LOW_WATER",
    "NO_KEY_REASON",
    "LimitedUseKeys",
    "MasterKeys",
    "TransactionKeys",
    "WalletStatus",
    "is_wallet",
    "parse_batch",
    "profile_batch",
    "usable_keys",
    "wallet_status",
]

#: Why a wallet with no limited-use key left answers an AAC, on either path.
NO_KEY_REASON = "no limited-use key left: the wallet must replenish through the TSP"

BATCH_FORMAT = "emvtap-luk-batch/1"
LOW_WATER = 3


def is_wallet(app: ApplicationProfile) -> bool:
    """An HCE wallet application: the TSP marked it ``extra.key_mode = "limited-use"`` (and
    left zeros in the key slots, ``switch/tsp.py``), or it has no ICC master key at all."""
    return app.extra.get("key_mode") == "limited-use" or not any(app.keys.ac)


def profile_batch(app: ApplicationProfile) -> LukBatch:
    """The first batch the TSP delivered with the personalisation data
    (``extra.limited_use_keys``, ``extra.no_password_limit``)."""
    limit = app.extra.get("no_password_limit")
    return parse_batch({"keys": list(app.extra.get("limited_use_keys") or []),
                        "no_password_limit": limit})


# --- batch documents ------------------------------------------------------------------------


def _key_hex(entry: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = entry.get(name)
        if value:
            raw = bytes.fromhex(str(value))
            if len(raw) != 16:
                raise ValueError(f"limited-use key {name!r} is {len(raw)} bytes, not 16")
            return raw.hex().upper()
    return ""


def parse_batch(raw: bytes | str | Mapping[str, Any]) -> LukBatch:
    """Read a batch document::

        {"format": "emvtap-luk-batch/1", "mpan": "6250...", "batch": 3,
         "no_password_limit": 30000,
         "keys": [{"atc": 17, "ac": "<AC session key hex>", "smi": "…", "smc": "…",
                   "batch": 3, "expires": "2026-12-01T00:00:00Z"}, ...]}

    as ``switch/tsp.py`` writes it; ``ac`` may also be called ``key``; ``smi``, ``smc``,
    ``batch``, ``expires`` (empty: bound to the ATC only) and ``no_password_limit`` are
    optional. ``ValueError`` when it is not one (not JSON, another format, a key of the wrong
    length, an ATC outside 1..FFFF)."""
    try:
        doc = json.loads(raw) if isinstance(raw, bytes | str) else dict(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"key batch is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("key batch has no 'keys' list")
    if doc.get("format", BATCH_FORMAT) != BATCH_FORMAT:
        raise ValueError(f"key batch format {doc.get('format')!r}, expected {BATCH_FORMAT!r}")
    try:
        batch = int(doc.get("batch", 0))
        keys = tuple(_parse_key(entry, batch) for entry in doc["keys"])
        limit = doc.get("no_password_limit")
        return LukBatch(keys, str(doc.get("mpan", "")), batch,
                        int(limit) if limit is not None else None)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"key batch entry is malformed: {exc!r}") from None


def _parse_key(entry: Mapping[str, Any], batch: int) -> LimitedUseKey:
    atc = int(entry["atc"])
    if not 1 <= atc <= 0xFFFF:
        raise ValueError(f"limited-use key for ATC {atc} (1..65535)")
    ac = _key_hex(entry, "ac", "key")
    if not ac:
        raise ValueError(f"limited-use key for ATC {atc} has no AC key")
    expires = str(entry.get("expires") or "")
    if expires:
        _parse_time(expires)
    return LimitedUseKey(atc, ac, _key_hex(entry, "smi"), _key_hex(entry, "smc"),
                         int(entry.get("batch", batch)), expires)


def _parse_time(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"key validity {text!r} is not an ISO 8601 time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _valid(key: LimitedUseKey, now: datetime) -> bool:
    return not key.expires or _parse_time(key.expires) > now


# --- using keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WalletStatus:
    unused: int
    next_atc: int | None
    batches: tuple[int, ...]

    @property
    def low(self) -> bool:
        return self.unused <= LOW_WATER

    @property
    def empty(self) -> bool:
        return self.unused == 0

    def __str__(self) -> str:
        state = "empty" if self.empty else ("low" if self.low else "ok")
        return f"{self.unused} limited-use keys left ({state})"


def usable_keys(state: AppState, now: datetime) -> list[LimitedUseKey]:
    """The keys a new transaction may take, lowest ATC first: above the card's ATC (the ATC
    never goes back) and still valid."""
    return [k for k in state.keys if k.atc > state.atc and _valid(k, now)]


def wallet_status(store: StateStore, aid: bytes, now: datetime | None = None) -> WalletStatus:
    st = store.app(aid)
    usable = usable_keys(st, now or datetime.now(UTC))
    return WalletStatus(len(usable), usable[0].atc if usable else None, st.batches)


# --- per-transaction keys -------------------------------------------------------------------


class TransactionKeys(Protocol):
    """The keys of one transaction, whatever holds them."""

    def ac_key(self, atc: bytes, values: Mapping[int, bytes]) -> bytes | None: ...

    def arpc_key(self, atc: bytes, values: Mapping[int, bytes]) -> bytes | None: ...

    def integrity_key(self, atc: bytes, arqc: bytes) -> bytes | None: ...

    def confidentiality_key(self, atc: bytes, arqc: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class MasterKeys:
    """An SE-style card: session keys derived from the ICC master keys (Book 2 A1.3)."""

    keys: CardKeys
    method: CryptogramVersion

    def ac_key(self, atc: bytes, values: Mapping[int, bytes]) -> bytes | None:
        return self.method.session_key(self.keys.ac, atc, values)

    def arpc_key(self, atc: bytes, values: Mapping[int, bytes]) -> bytes | None:
        if self.method.arpc_with_master_key:
            return self.keys.ac
        return self.ac_key(atc, values)

    def integrity_key(self, atc: bytes, arqc: bytes) -> bytes | None:
        return self.method.script_key(self.keys.smi, atc, arqc) if self.keys.smi else None

    def confidentiality_key(self, atc: bytes, arqc: bytes) -> bytes | None:
        return self.method.script_key(self.keys.smc, atc, arqc) if self.keys.smc else None


@dataclass(frozen=True)
class LimitedUseKeys:
    """An HCE wallet transaction: the limited-use key of its ATC, nothing else."""

    key: LimitedUseKey | None
    method: CryptogramVersion

    def _for(self, atc: bytes) -> LimitedUseKey | None:
        if self.key is None or self.key.atc != int.from_bytes(atc, "big"):
            return None
        return self.key

    def ac_key(self, atc: bytes, values: Mapping[int, bytes]) -> bytes | None:
        key = self._for(atc)
        return bytes.fromhex(key.ac) if key else None

    def arpc_key(self, atc: bytes, values: Mapping[int, bytes]) -> bytes | None:
        return None if self.method.arpc_with_master_key else self.ac_key(atc, values)

    def integrity_key(self, atc: bytes, arqc: bytes) -> bytes | None:
        key = self._for(atc)
        usable = key is not None and key.smi and self.method.script_key_per_atc
        return bytes.fromhex(key.smi) if usable and key else None

    def confidentiality_key(self, atc: bytes, arqc: bytes) -> bytes | None:
        key = self._for(atc)
        usable = key is not None and key.smc and self.method.script_key_per_atc
        return bytes.fromhex(key.smc) if usable and key else None
