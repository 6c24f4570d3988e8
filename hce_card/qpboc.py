"""The UnionPay QuickPass payment application: qPBOC quick path (EMV Contactless Book C-7;
JR/T 0025.12), answering GET PROCESSING OPTIONS, READ RECORD and GET DATA.

The card decides in GPO: it reads the reader's TTQ and the transaction from the PDOL data,
applies its own risk parameters, and answers with an ARQC (go online), a TC (offline approval,
signed for fDDA) or an AAC (decline), all in one Format 2 response.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.bits import CID, CTQ, TTQ, is_set, set_bits
from emvtap.cryptogram import generate_ac, pboc_arqc_data, pboc_iad
from emvtap.dol import split_dol_data
from emvtap.keys import derive_pboc_session_key
from emvtap.oda import fdda_terminal_data, sign_dynamic_data
from emvtap.profile import ApplicationProfile, CardProfile
from emvtap.tlv import Tlv, TlvError, decode
from hce_card.state import AtcExhausted, StateStore

log = logging.getLogger("emvtap.card")

__all__ = ["CardDecision", "QuickPassApplication", "decide_cryptogram"]

CARD_CURRENCY = bytes.fromhex("0156")


@dataclass(frozen=True)
class CardDecision:
    cid: int
    reason: str
    ctq: bytes


def decide_cryptogram(
    app: ApplicationProfile,
    ttq: bytes,
    amount: int,
    currency: bytes,
    consecutive_offline: int,
    issuer_authentication_failed: bool,
    cdcvm_performed: bool,
) -> CardDecision:
    """Card risk management of the quick path (C-7, "card action analysis").

    Offline (TC) only when the reader allows it and every card limit holds; CVM required by the
    reader is answered with CDCVM if the wallet verified the user, else online PIN, else
    signature (CTQ byte 1 b8/b7, byte 2 b8).
    """
    ctq = bytes(app.ctq)
    online_reasons: list[str] = []
    if is_set(ttq, TTQ.CVM_REQUIRED):
        if cdcvm_performed:
            ctq = set_bits(ctq, CTQ.CDCVM_PERFORMED)
        elif is_set(ttq, TTQ.ONLINE_PIN_SUPPORTED):
            ctq = set_bits(ctq, CTQ.ONLINE_PIN_REQUIRED)
            online_reasons.append("online PIN required")
        elif is_set(ttq, TTQ.SIGNATURE_SUPPORTED):
            ctq = set_bits(ctq, CTQ.SIGNATURE_REQUIRED)
        else:
            return CardDecision(CID.AAC, "CVM required and no CVM the card and reader share", ctq)
    checks: list[tuple[bool, str]] = [
        (is_set(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED), "reader requires an online cryptogram"),
        (not app.risk.allow_offline, "card is online-only"),
        (amount > app.risk.offline_amount_limit, "amount above the card's offline limit"),
        (consecutive_offline >= app.risk.consecutive_offline_limit,
         "consecutive offline limit reached"),
        (currency != CARD_CURRENCY, "transaction currency is not the card's currency"),
        (issuer_authentication_failed, "issuer authentication failed last time"),
    ]
    online_reasons += [why for hit, why in checks if hit]
    if not online_reasons:
        return CardDecision(CID.TC, "offline approval within card limits", ctq)
    if is_set(ttq, TTQ.OFFLINE_ONLY_READER):
        return CardDecision(CID.AAC, "must go online but the reader is offline-only: "
                            + "; ".join(online_reasons), ctq)
    return CardDecision(CID.ARQC, "; ".join(online_reasons), ctq)


@dataclass
class _Session:
    """What lives from GPO to the end of the tap (cleared by SELECT or reset)."""

    gpo_done: bool = False
    card_auth_data: bytes = b""  # 9F69 of this transaction
    values: dict[int, bytes] = field(default_factory=dict)


class QuickPassApplication:
    """One payment application instance over a profile and the card's persistent state."""

    def __init__(
        self,
        profile: CardProfile,
        app: ApplicationProfile,
        store: StateStore,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        cdcvm: Callable[[], bool] = lambda: False,
    ) -> None:
        self.profile = profile
        self.app = app
        self.aid = app.aid
        self.store = store
        self.random_bytes = random_bytes
        self.cdcvm = cdcvm
        self.session = _Session()
        self.handlers: dict[int, Callable[[CommandApdu], ResponseApdu]] = {
            0xA8: self.get_processing_options,
            0xB2: self.read_record,
            0xCA: self.get_data,
        }

    @property
    def blocked(self) -> bool:
        st = self.store.state
        return st.application_blocked or st.card_blocked

    def select(self) -> ResponseApdu:
        """Book 1, 11.3 / Book 3, 12.2.2: FCI; a blocked application answers 6283."""
        self.session = _Session()
        return ResponseApdu(self.app.fci, SW.SELECTED_FILE_INVALIDATED if self.blocked else SW.OK)

    def handle(self, cmd: CommandApdu) -> ResponseApdu:
        handler = self.handlers.get(cmd.ins)
        if handler is None:
            return ResponseApdu(b"", SW.INS_NOT_SUPPORTED)
        return handler(cmd)

    # -- GET PROCESSING OPTIONS ------------------------------------------------------------
    def get_processing_options(self, cmd: CommandApdu) -> ResponseApdu:
        """Book 3, 6.5.8 and C-7 quick path: decide and answer with template 77."""
        if cmd.cla != 0x80:
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        if (cmd.p1, cmd.p2) != (0, 0):
            return ResponseApdu(b"", SW.INCORRECT_P1P2)
        if self.blocked or self.session.gpo_done:
            return ResponseApdu(b"", SW.CONDITIONS_NOT_SATISFIED)
        try:
            objs = decode(cmd.data)
        except TlvError:
            return ResponseApdu(b"", SW.WRONG_DATA)
        if len(objs) != 1 or objs[0].tag != 0x83:
            return ResponseApdu(b"", SW.WRONG_DATA)
        try:
            values = split_dol_data(self.app.pdol, objs[0].value)
        except ValueError:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        ttq = values.get(0x9F66, b"\x00" * 4)
        if not is_set(ttq, TTQ.QPBOC_SUPPORTED):
            # Not a qPBOC reader: start the full path (AIP and AFL only, Format 2).
            self.session.gpo_done = True
            return ResponseApdu(
                Tlv.template(0x77, [Tlv.primitive(0x82, self.app.aip),
                                    Tlv.primitive(0x94, self.app.afl)]).encode(), SW.OK)
        return self._quick_path(values, ttq)

    def _quick_path(self, values: dict[int, bytes], ttq: bytes) -> ResponseApdu:
        st = self.store.state
        amount = int(values.get(0x9F02, b"\x00").hex() or "0")
        decision = decide_cryptogram(
            self.app, ttq, amount, values.get(0x5F2A, b""), st.consecutive_offline,
            st.issuer_authentication_failed, self.cdcvm(),
        )
        offline = decision.cid == CID.TC
        try:
            atc = self.store.next_atc(
                consecutive_offline=st.consecutive_offline + 1 if offline else
                st.consecutive_offline
            )
        except AtcExhausted:
            self.store.update(application_blocked=True)
            return ResponseApdu(b"", SW.CONDITIONS_NOT_SATISFIED)
        atc_b = atc.to_bytes(2, "big")
        cvr = self._cvr(decision.cid, st.issuer_authentication_failed, st.consecutive_offline)
        iad = pboc_iad(self.app.dki, cvr)
        values |= {0x82: self.app.aip, 0x9F36: atc_b, 0x9F10: iad}
        session_key = derive_pboc_session_key(self.app.keys.ac, atc_b)
        ac = generate_ac(session_key, pboc_arqc_data(values), padding=2)
        card_un = self.random_bytes(4)
        card_auth_data = bytes([self.app.fdda_version]) + card_un + decision.ctq
        self.session = _Session(True, card_auth_data, values)
        objs = [
            Tlv.primitive(0x82, self.app.aip),
            Tlv.primitive(0x94, self.app.afl),
            Tlv.primitive(0x9F36, atc_b),
            Tlv.primitive(0x9F26, ac),
            Tlv.primitive(0x9F27, bytes([decision.cid])),
            Tlv.primitive(0x9F10, iad),
            Tlv.primitive(0x57, self.app.track2),
            Tlv.primitive(0x5F34, bytes.fromhex(self.profile.psn)),
            Tlv.primitive(0x9F6C, decision.ctq),
        ]
        if offline and self.app.icc_rsa is not None:
            objs.append(Tlv.primitive(0x9F4B, self._fdda_signature(values, atc_b,
                                                                    card_auth_data)))
        log.info("GPO: %s (%s), ATC %04X", CID.type_of(decision.cid), decision.reason, atc)
        return ResponseApdu(Tlv.template(0x77, objs).encode(), SW.OK)

    @staticmethod
    def _cvr(cid: int, issuer_auth_failed: bool, consecutive_offline: int) -> bytes:
        """PBOC CVR (JR/T 0025.5 Annex): length 03, byte 2 b6-b5 = AC type returned in the
        first cryptogram (00 AAC, 01 TC, 10 ARQC), byte 3 b3 = issuer authentication failed on
        the last online transaction, byte 4 high nibble = consecutive offline transactions."""
        return bytes([
            0x03,
            (cid >> 6) << 4,
            0x04 if issuer_auth_failed else 0x00,
            min(consecutive_offline, 15) << 4,
        ])

    def _fdda_signature(self, values: dict[int, bytes], atc: bytes, card_auth_data: bytes) -> bytes:
        """C-7 fDDA: sign ICC dynamic data (IDN = ATC) over 9F37‖9F02‖5F2A‖9F69 (Book 2, 6.5)."""
        assert self.app.icc_rsa is not None
        terminal_data = fdda_terminal_data(values | {0x9F69: card_auth_data},
                                           version=self.app.fdda_version)
        return sign_dynamic_data(self.app.icc_rsa, bytes([len(atc)]) + atc, terminal_data)

    # -- READ RECORD -----------------------------------------------------------------------
    def read_record(self, cmd: CommandApdu) -> ResponseApdu:
        """Book 3, 6.5.11: P1 record number, P2 = SFI<<3 | 100."""
        if cmd.cla != 0x00:
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        if cmd.p2 & 0x07 != 0x04 or cmd.p1 == 0 or cmd.p2 >> 3 == 0:
            return ResponseApdu(b"", SW.INCORRECT_P1P2)
        sfi = cmd.p2 >> 3
        rec = self.app.record(sfi, cmd.p1)
        if rec is None:
            known = any(r.sfi == sfi for r in self.app.records)
            return ResponseApdu(b"", SW.RECORD_NOT_FOUND if known else SW.FILE_NOT_FOUND)
        data = rec.data
        if 0x9F69 in rec.dynamic:
            auth = self.session.card_auth_data or bytes(7)
            data = Tlv.template(0x70, [Tlv.primitive(0x9F69, auth)]).encode()
        return ResponseApdu(data, SW.OK)

    # -- GET DATA --------------------------------------------------------------------------
    def get_data(self, cmd: CommandApdu) -> ResponseApdu:
        """Book 3, 6.5.7: ATC, last online ATC, PIN try counter, log format, issuer data."""
        if cmd.cla != 0x80:
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        tag = (cmd.p1 << 8) | cmd.p2
        st = self.store.state
        live = {
            0x9F36: st.atc.to_bytes(2, "big"),
            0x9F13: st.last_online_atc.to_bytes(2, "big"),
            0x9F17: bytes([st.pin_try_counter]),
        }
        value = live.get(tag, self.app.get_data.get(tag))
        if value is None:
            return ResponseApdu(b"", SW.REFERENCED_DATA_NOT_FOUND)
        return ResponseApdu(Tlv.primitive(tag, value).encode(), SW.OK)
