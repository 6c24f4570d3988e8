"""A payment application on the card: its profile, the card's persistent state and the
session of the current tap, with what every command needs from them - starting and committing
a transaction, the keys, the risk parameters - and the commands that need nothing else
(SELECT, READ RECORD, GET DATA).

:mod:`hce_card.commands` dispatches the commands (a table: INS → name, classes, handler) to
this module and to the handler modules (:mod:`hce_card.quick_path`, :mod:`hce_card.full_path`,
:mod:`hce_card.scripts`), which all import this one and none of which it imports. Each handler
checks in the order a card does - class (6E00), P1/P2 (6A86), length (6700), then the state of
the transaction (6985) - and changes nothing before all checks passed.

Transaction phases (Book 3 6.5 "command sequence"; C-3/C-7 quick path):

================  ===========================================================================
``SELECTED``      after SELECT: GPO; issuer update on re-presentation (EXTERNAL AUTHENTICATE,
                  scripts) for the last ARQC
``INITIATED``     after a full-path GPO: READ RECORD, INTERNAL AUTHENTICATE, GENERATE AC (1st)
``QUICK_DONE``    after a quick-path GPO (the cryptogram already left): READ RECORD, GET DATA
``ONLINE``        after an ARQC from the 1st GENERATE AC: EXTERNAL AUTHENTICATE, scripts (71),
                  GENERATE AC (2nd)
``COMPLETED``     after a TC/AAC or the 2nd GENERATE AC: scripts (72), READ RECORD, GET DATA
================  ===========================================================================
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.cryptogram_versions import cryptogram_version
from emvtap.profile import ApplicationProfile, CardProfile
from emvtap.tlv import Tlv
from hce_card.risk import PUT_DATA_PARAMETERS, RiskParameters
from hce_card.session import Phase, Session
from hce_card.state import AppState, LimitedUseKey, StateStore
from hce_card.wallet import (
    LimitedUseKeys,
    MasterKeys,
    TransactionKeys,
    is_wallet,
    parse_batch,
    usable_keys,
    wallet_status,
)

log = logging.getLogger("emvtap.card")

__all__ = ["ECASH_PROFILE_KEYS", "PaymentApplication", "Phase", "Session"]


def _sw(sw: int) -> ResponseApdu:
    return ResponseApdu(b"", sw)


class PaymentApplication:
    """One payment application instance over a profile and the card's persistent state."""

    def __init__(
        self,
        profile: CardProfile,
        app: ApplicationProfile,
        store: StateStore,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        cdcvm: Callable[[], bool] = lambda: False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.profile = profile
        self.app = app
        self.aid = app.aid
        self.store = store
        self.random_bytes = random_bytes
        self.cdcvm = cdcvm
        self.clock = clock
        self.method = cryptogram_version(app.cvn)
        self.wallet = is_wallet(app)
        if self.wallet and not self.method.limited_use:
            raise ValueError(f"{self.method.name} session keys depend on more than the ATC: "
                             "an HCE wallet (no master key) cannot use it")
        self.session = Session()

    # --- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> AppState:
        return self.store.app(self.aid)

    @property
    def blocked(self) -> bool:
        return self.state.application_blocked or self.store.state.card_blocked

    def risk(self) -> RiskParameters:
        return RiskParameters.for_application(self.app, self.state)

    def user_verified(self) -> bool:
        """CDCVM: the wallet user authenticated (``--cdcvm`` or the one-transaction flag)."""
        return self.cdcvm() or self.store.state.user_verified

    def keys_for(self, key: LimitedUseKey | None) -> TransactionKeys:
        if self.wallet:
            return LimitedUseKeys(key, self.method)
        return MasterKeys(self.app.keys, self.method)

    @property
    def quick_path_supported(self) -> bool:
        """The quick path (qPBOC / qVSDC) is offered when the PDOL asks for the TTQ."""
        return bool(self.app.extra.get("quick_path", b"\x9f\x66" in self.app.pdol))

    @property
    def gac_format(self) -> int:
        return int(self.app.extra.get("gac_format", self.method.default_gac_format))

    # --- dispatch ---------------------------------------------------------------------------

    def select(self) -> ResponseApdu:
        """Book 1, 12.2.3 / Book 3, 12.2.2: the FCI; a blocked application answers 6283
        (selected file invalidated) with its FCI."""
        self.session = Session()
        if self.wallet:
            self.store.import_inbox(self.aid, parse_batch)
        self.store.import_user_verification()
        return ResponseApdu(self.app.fci, SW.SELECTED_FILE_INVALIDATED if self.blocked else SW.OK)

    # --- starting a transaction ---------------------------------------------------------------

    def begin_transaction(self) -> tuple[int, LimitedUseKey | None, dict[str, Any]]:
        """The ATC of a new transaction (and its limited-use key in a wallet) with the state
        changes that start it - not yet written: the caller commits them together with its
        own, before any cryptogram leaves (Book 2 A1.3)."""
        st = self.state
        changes: dict[str, Any] = {"online": None, "script_commands": 0, "script_failed": False}
        if self.wallet:
            keys = usable_keys(st, self.clock())
            if keys:
                changes |= {"keys": tuple(keys[1:]), "current_key": keys[0]}
                return keys[0].atc, keys[0], changes
            changes |= {"keys": (), "current_key": None}
        return st.atc + 1, None, changes

    def commit_transaction(self, atc: int, changes: Mapping[str, Any]) -> AppState:
        """Write the new ATC and ``changes`` in one durable step (raises AtcExhausted)."""
        new = self.store.next_atc(self.aid, atc, **changes)
        if self.wallet:
            status = wallet_status(self.store, self.aid, self.clock())
            if status.low:
                log.warning("HCE wallet: %s - replenish through the TSP "
                            "(emvtap card replenish)", status)
        return new

    # --- READ RECORD ------------------------------------------------------------------------

    def read_record(self, cmd: CommandApdu) -> ResponseApdu:
        """Book 3 6.5.11 / ISO 7816-4 7.3.3: P1 record number, P2 = SFI<<3 | 100. A record
        the SFI does not hold answers 6A83, an SFI the application does not have 6A82."""
        if cmd.p2 & 0x07 != 0x04 or cmd.p1 == 0 or cmd.p2 >> 3 == 0:
            return _sw(SW.INCORRECT_P1P2)
        if cmd.data:
            return _sw(SW.WRONG_LENGTH)
        sfi = cmd.p2 >> 3
        rec = self.app.record(sfi, cmd.p1)
        if rec is None:
            known = any(r.sfi == sfi for r in self.app.records)
            return _sw(SW.RECORD_NOT_FOUND if known else SW.FILE_NOT_FOUND)
        data = rec.data
        if 0x9F69 in rec.dynamic:
            auth = self.session.card_auth_data or bytes(7)
            data = Tlv.template(0x70, [Tlv.primitive(0x9F69, auth)]).encode()
        return ResponseApdu(data, SW.OK)

    # --- GET DATA ---------------------------------------------------------------------------

    def get_data(self, cmd: CommandApdu) -> ResponseApdu:
        """Book 3 6.5.7: ATC 9F36, last online ATC 9F13, PIN try counter 9F17, log format
        9F4F, the e-cash balance 9F79 where profiled, and what PUT DATA set."""
        if cmd.data:
            return _sw(SW.WRONG_LENGTH)
        tag = (cmd.p1 << 8) | cmd.p2
        value = self.data_object(tag)
        if value is None:
            return _sw(SW.REFERENCED_DATA_NOT_FOUND)
        return ResponseApdu(Tlv.primitive(tag, value).encode(), SW.OK)

    def data_object(self, tag: int) -> bytes | None:
        st = self.state
        live = {
            0x9F36: st.atc.to_bytes(2, "big"),
            0x9F13: st.last_online_atc.to_bytes(2, "big"),
            0x9F17: bytes([st.pin_try_counter]),
        }
        if tag in live:
            return live[tag]
        if f"{tag:X}" in st.data:
            return bytes.fromhex(st.data[f"{tag:X}"])
        ecash = self.app.extra.get("ecash")
        if ecash is not None and tag in PUT_DATA_PARAMETERS and tag in ECASH_PROFILE_KEYS:
            value = ecash.get(ECASH_PROFILE_KEYS[tag])
            if value is not None:
                return bytes.fromhex(f"{int(value):012d}")
        return self.app.get_data.get(tag)


#: e-cash data elements and their names in a profile's ``extra.ecash``.
ECASH_PROFILE_KEYS: dict[int, str] = {
    0x9F79: "balance",
    0x9F77: "balance_limit",
    0x9F78: "single_limit",
    0x9F6D: "reset_threshold",
}
