"""The quick path: qPBOC (UnionPay QuickPass, EMV Contactless Book C-7; JR/T 0025.12) and
qVSDC (Visa, Book C-3). The card decides in GET PROCESSING OPTIONS: it reads the reader's TTQ
and the transaction from the PDOL data, applies its own risk parameters, and answers with an
ARQC (go online), a TC (offline approval, signed for fDDA) or an AAC (decline), all in one
Format 2 response (Book C-7; docs/emv-notes.md, Kernel 7 / qPBOC).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from emvtap.apdu import SW, ResponseApdu
from emvtap.bits import CTQ, TTQ, CryptogramType, is_set, set_bits
from emvtap.cryptogram import generate_ac
from emvtap.oda import SDAD_FORMAT, fdda_terminal_data, sign_dynamic_data
from emvtap.tlv import Tlv
from hce_card.application import PaymentApplication
from hce_card.risk import (
    CvrFacts,
    RiskParameters,
    TransactionFacts,
    build_cvr,
    offline_reasons,
    velocity_exceeded,
)
from hce_card.session import Phase
from hce_card.state import AtcExhausted, OnlineContext
from hce_card.wallet import NO_KEY_REASON

log = logging.getLogger("emvtap.card")

__all__ = ["QuickDecision", "decide_cryptogram", "quick_path"]


@dataclass(frozen=True)
class QuickDecision:
    cid: CryptogramType
    reason: str
    ctq: bytes
    cdcvm: bool = False


def _amount(values: dict[int, bytes], tag: int = 0x9F02) -> int:
    text = values.get(tag, b"").hex()
    return int(text) if text.isdigit() else 0


def decide_cryptogram(
    ctq: bytes,
    ttq: bytes,
    risk: RiskParameters,
    facts: TransactionFacts,
    user_verified: bool,
) -> QuickDecision:
    """Card risk management of the quick path (C-3 / C-7 "card action analysis").

    CVM: needed when the reader says so (TTQ byte 2 b7) or the amount is above the in-app
    no-password limit; answered with CDCVM (CTQ byte 2 b8) when the wallet verified the user
    and the reader accepts it (TTQ byte 3 b7), else online PIN (CTQ byte 1 b8), else -
    for the reader's CVM only - signature (CTQ byte 1 b7). Offline (TC) only when the reader
    allows it and every card limit holds; an offline-only reader gets an AAC instead of an
    ARQC.
    """
    ctq = bytes(ctq)
    cdcvm = False
    online: list[str] = []
    by_reader = is_set(ttq, TTQ.CVM_REQUIRED)
    by_wallet = risk.cdcvm_limit is not None and facts.amount > risk.cdcvm_limit
    if by_reader or by_wallet:
        if user_verified and is_set(ttq, TTQ.CDCVM_SUPPORTED):
            ctq, cdcvm = set_bits(ctq, CTQ.CDCVM_PERFORMED), True
        elif is_set(ttq, TTQ.ONLINE_PIN_SUPPORTED):
            ctq = set_bits(ctq, CTQ.ONLINE_PIN_REQUIRED)
            online.append("online PIN required")
        elif by_reader and not by_wallet and is_set(ttq, TTQ.SIGNATURE_SUPPORTED):
            ctq = set_bits(ctq, CTQ.SIGNATURE_REQUIRED)
        elif by_wallet:
            return QuickDecision(CryptogramType.AAC, "amount above the in-app limit: the user must "
                                 "authenticate on the device and tap again", ctq)
        else:
            return QuickDecision(CryptogramType.AAC,
                                 "CVM required and no CVM the card and reader share", ctq)
    if is_set(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED):
        online.append("reader requires an online cryptogram")
    online += offline_reasons(risk, facts)
    if risk.ecash_balance is not None:
        if facts.amount > risk.ecash_balance:
            online.append("e-cash balance too low")
        if risk.ecash_single_limit is not None and facts.amount > risk.ecash_single_limit:
            online.append("above the e-cash single transaction limit")
    if not online:
        return QuickDecision(CryptogramType.TC, "offline approval within card limits", ctq, cdcvm)
    if is_set(ttq, TTQ.OFFLINE_ONLY_READER):
        return QuickDecision(CryptogramType.AAC, "must go online but the reader is offline-only: "
                             + "; ".join(online), ctq, cdcvm)
    return QuickDecision(CryptogramType.ARQC, "; ".join(online), ctq, cdcvm)


def quick_path(app: PaymentApplication, values: dict[int, bytes], ttq: bytes) -> ResponseApdu:
    """C-7 / C-3 quick path GPO: decide, take the ATC (and the limited-use key), compute the
    cryptogram, make it all durable, then answer template 77 with the fDDA signature on an
    offline approval."""
    before = app.state
    risk = app.risk()
    amount = _amount(values)
    facts = TransactionFacts(amount, values.get(0x5F2A, b""), before)
    decision = decide_cryptogram(app.app.ctq, ttq, risk, facts, app.user_verified())
    atc, key, changes = app.begin_transaction()
    keys = app.keys_for(key)
    atc_b = atc.to_bytes(2, "big")
    session_key = keys.ac_key(atc_b, values)
    reason = decision.reason
    if session_key is None:
        decision = QuickDecision(CryptogramType.AAC, NO_KEY_REASON, decision.ctq)
        reason = NO_KEY_REASON
    cid = decision.cid
    signs = cid == CryptogramType.TC and app.app.icc_rsa is not None
    cvr = build_cvr(app.method.cvr_layout, CvrFacts.for_cryptogram(
        facts, cid, offline_dda_performed=signs,
        velocity_exceeded=cid is not CryptogramType.TC and velocity_exceeded(risk, facts)))
    iad = app.method.iad(app.app.dki, cvr)
    values |= {0x82: app.app.aip, 0x9F36: atc_b, 0x9F10: iad}
    ac = (generate_ac(session_key, app.method.mac_input(values), app.method.padding)
          if session_key is not None else bytes(8))
    changes |= _state_changes(app, cid, decision, amount, atc, ac, key, risk)
    try:
        app.commit_transaction(atc, changes)
    except AtcExhausted:
        app.store.update_app(app.aid, application_blocked=True)
        return ResponseApdu(b"", SW.CONDITIONS_NOT_SATISFIED)
    if decision.cdcvm and app.store.state.user_verified:
        app.store.update(user_verified=False)  # the authentication covered this transaction
    card_auth_data = bytes([app.app.fdda_version]) + app.random_bytes(4) + decision.ctq
    session = app.session
    session.atc, session.keys, session.reason = atc, keys, reason
    session.card_auth_data, session.first_cid, session.first_ac = card_auth_data, cid, ac
    session.phase = Phase.QUICK_DONE
    objs = [
        Tlv.primitive(0x82, app.app.aip),
        Tlv.primitive(0x94, app.app.afl),
        Tlv.primitive(0x9F36, atc_b),
        Tlv.primitive(0x9F26, ac),
        Tlv.primitive(0x9F27, bytes([cid])),
        Tlv.primitive(0x9F10, iad),
        Tlv.primitive(0x57, app.app.track2),
        Tlv.primitive(0x5F34, bytes.fromhex(app.profile.psn)),
        Tlv.primitive(0x9F6C, decision.ctq),
    ]
    if risk.ecash_balance is not None:
        left = risk.ecash_balance - (amount if cid == CryptogramType.TC else 0)
        objs.append(Tlv.primitive(0x9F5D, bytes.fromhex(f"{left:012d}")))
    if signs:
        objs.append(Tlv.primitive(0x9F4B, _fdda_signature(app, values, atc_b, card_auth_data)))
    log.info("GPO: %s (%s), ATC %04X", cid, reason, atc)
    return ResponseApdu(Tlv.template(0x77, objs).encode(), SW.OK)


def _state_changes(app: PaymentApplication, cid: CryptogramType, decision: QuickDecision,
                   amount: int, atc: int, ac: bytes, key: Any, risk: RiskParameters
                   ) -> dict[str, Any]:
    """What the quick path's outcome changes, written with the ATC: an offline approval counts
    against the offline limits (and debits e-cash); an ARQC is remembered for issuer update
    processing and, since the issuer now sees the account, ends the offline run."""
    st = app.state
    changes: dict[str, Any] = {"last_online_not_completed": False}
    if cid == CryptogramType.TC:
        changes |= {"consecutive_offline": st.consecutive_offline + 1,
                    "cumulative_offline_amount": st.cumulative_offline_amount + amount}
        if risk.ecash_balance is not None:
            changes["data"] = st.data | {"9F79": f"{risk.ecash_balance - amount:012d}"}
    elif cid == CryptogramType.ARQC:
        changes |= {"online": OnlineContext(atc, ac.hex().upper(), key),
                    "last_online_atc": atc, "consecutive_offline": 0,
                    "cumulative_offline_amount": 0}
    return changes


def _fdda_signature(app: PaymentApplication, values: dict[int, bytes], atc: bytes,
                    card_auth_data: bytes) -> bytes:
    """C-7 / C-3 fDDA: sign ICC dynamic data (IDN = ATC) over 9F37‖9F02‖5F2A‖9F69 (Book 2 6.5;
    docs/emv-notes.md); Visa profiles sign with format 95."""
    assert app.app.icc_rsa is not None
    terminal_data = fdda_terminal_data(values | {0x9F69: card_auth_data},
                                       version=app.app.fdda_version)
    fmt = int(str(app.app.extra.get("sdad_format", f"{SDAD_FORMAT:02X}")), 16)
    return sign_dynamic_data(app.app.icc_rsa, bytes([len(atc)]) + atc, terminal_data, fmt)
