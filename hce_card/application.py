"""A payment application on the card: one state machine over its profile and the card's
persistent state, answering every command of a contactless (and full-path) EMV transaction.

The commands are a table (:data:`COMMANDS`: INS → name, classes, handler); each handler checks
in the order a card does - class (6E00), P1/P2 (6A86), length (6700), then the state of the
transaction (6985) - and changes nothing before all checks passed.

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
from typing import Any, NamedTuple

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.bits import TTQ, is_set
from emvtap.cryptogram_versions import cryptogram_version
from emvtap.dol import split_dol_data
from emvtap.profile import ApplicationProfile, CardProfile
from emvtap.tlv import Tlv, TlvError, decode
from hce_card import pboc_full, qpboc, scripts
from hce_card.risk import PUT_DATA_PARAMETERS, RiskParameters
from hce_card.session import Phase, Session
from hce_card.state import AppState, AtcExhausted, LimitedUseKey, StateStore
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

__all__ = ["COMMANDS", "Command", "PaymentApplication", "Phase", "Session"]


class Command(NamedTuple):
    name: str
    classes: frozenset[int]
    handler: Callable[[PaymentApplication, CommandApdu], ResponseApdu]


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

    def handle(self, cmd: CommandApdu) -> ResponseApdu:
        command = COMMANDS.get(cmd.ins)
        if command is None:
            return _sw(SW.INS_NOT_SUPPORTED)
        if cmd.cla not in command.classes:
            return _sw(SW.CLA_NOT_SUPPORTED)
        return command.handler(self, cmd)

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

    # --- GET PROCESSING OPTIONS ---------------------------------------------------------------

    def get_processing_options(self, cmd: CommandApdu) -> ResponseApdu:
        """Book 3 6.5.8, C-3/C-7: check the PDOL data, start the transaction; the quick path
        decides the cryptogram here, the full path answers AIP and AFL."""
        if (cmd.p1, cmd.p2) != (0, 0):
            return _sw(SW.INCORRECT_P1P2)
        if self.blocked:  # Book 3 6.5.8.4: a blocked application refuses GPO, whatever data
            return _sw(SW.CONDITIONS_NOT_SATISFIED)
        if not cmd.data:
            return _sw(SW.WRONG_LENGTH)
        try:
            objs = decode(cmd.data)
        except TlvError:
            return _sw(SW.WRONG_DATA)
        if len(objs) != 1 or objs[0].tag != 0x83 or objs[0].encode() != cmd.data:
            return _sw(SW.WRONG_DATA)
        try:
            values = split_dol_data(self.app.pdol, objs[0].value)
        except ValueError:
            return _sw(SW.WRONG_LENGTH)
        if self.session.phase is not Phase.SELECTED:
            return _sw(SW.CONDITIONS_NOT_SATISFIED)
        if self.state.atc >= 0xFFFF:
            self.store.update_app(self.aid, application_blocked=True)
            return _sw(SW.CONDITIONS_NOT_SATISFIED)
        self.session.pdol_data = objs[0].value
        self.session.values = dict(values)
        self.session.before = self.state
        ttq = values.get(0x9F66, b"")
        if self.quick_path_supported and is_set(ttq, TTQ.QPBOC_SUPPORTED):
            return qpboc.quick_path(self, values, ttq)
        return self._full_path_gpo()

    def _full_path_gpo(self) -> ResponseApdu:
        atc, key, changes = self.begin_transaction()
        try:
            self.commit_transaction(atc, changes)
        except AtcExhausted:
            self.store.update_app(self.aid, application_blocked=True)
            return _sw(SW.CONDITIONS_NOT_SATISFIED)
        self.session.atc, self.session.keys = atc, self.keys_for(key)
        self.session.phase = Phase.INITIATED
        log.info("GPO: full path, ATC %04X", atc)
        if int(self.app.extra.get("gpo_format", 2)) == 1:
            return ResponseApdu(Tlv.primitive(0x80, self.app.aip + self.app.afl).encode(), SW.OK)
        return ResponseApdu(Tlv.template(0x77, [Tlv.primitive(0x82, self.app.aip),
                                                Tlv.primitive(0x94, self.app.afl)]).encode(),
                            SW.OK)

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

_P = frozenset

#: INS → command (Book 3 6.5; Book 3 10.10 and docs/emv-notes.md for the script commands).
COMMANDS: dict[int, Command] = {
    0xA8: Command("GET PROCESSING OPTIONS", _P({0x80}), PaymentApplication.get_processing_options),
    0xB2: Command("READ RECORD", _P({0x00}), PaymentApplication.read_record),
    0xCA: Command("GET DATA", _P({0x80}), PaymentApplication.get_data),
    0x88: Command("INTERNAL AUTHENTICATE", _P({0x00}), pboc_full.internal_authenticate),
    0xAE: Command("GENERATE AC", _P({0x80}), pboc_full.generate_ac),
    0x82: Command("EXTERNAL AUTHENTICATE", _P({0x00}), pboc_full.external_authenticate),
    **{ins: Command(name, _P(classes), scripts.issuer_script_command)
       for ins, (name, classes) in scripts.SCRIPT_COMMAND_NAMES.items()},
}
