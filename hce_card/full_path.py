"""The full path (PBOC debit/credit, VSDC, M/Chip): GET PROCESSING OPTIONS answering AIP and
AFL, INTERNAL AUTHENTICATE (DDA), GENERATE AC (first and second, with CDA on request) and
EXTERNAL AUTHENTICATE (EMV 4.4 Book 3 6.5.4, 6.5.5, 6.5.8, 6.5.9; Book 2 6.5, 6.6, 8.2;
JR/T 0025.5).

GENERATE AC P1 (Book 3 Table 12): b8-b7 the cryptogram type asked for (00 AAC, 01 TC,
10 ARQC; 11 is RFU), b5 CDA signature requested; every other bit is RFU and must be 0.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.bits import AIP, CID, CryptogramType, is_set
from emvtap.cryptogram import generate_ac as compute_ac
from emvtap.cryptogram_versions import APPROVAL_ARCS, IssuerResponse
from emvtap.dol import split_dol_data
from emvtap.oda import cda_transaction_data_hash, sign_dynamic_data
from emvtap.tlv import Tlv
from hce_card.application import PaymentApplication
from hce_card.risk import (
    CvrFacts,
    Decision,
    IssuerOutcome,
    TransactionFacts,
    build_cvr,
    first_ac_decision,
    second_ac_decision,
)
from hce_card.session import Phase
from hce_card.state import AtcExhausted, OnlineContext
from hce_card.wallet import NO_KEY_REASON

log = logging.getLogger("emvtap.card")

__all__ = [
    "P1_CDA",
    "UNABLE_TO_GO_ONLINE_ARCS",
    "external_authenticate",
    "full_path_gpo",
    "generate_ac",
    "internal_authenticate",
]

P1_CDA = 0x10
_P1_RFU = 0x2F
#: ARCs a terminal puts in 8A when it could not go online (Book 4 A6: Y3 offline approved
#: requested, Z3 offline declined requested).
UNABLE_TO_GO_ONLINE_ARCS = frozenset({b"Y3", b"Z3"})
_IDN_LENGTH = 8


def _sw(sw: int) -> ResponseApdu:
    return ResponseApdu(b"", sw)


# --- GET PROCESSING OPTIONS -----------------------------------------------------------------


def full_path_gpo(app: PaymentApplication) -> ResponseApdu:
    """Book 3 6.5.8.4: the full path's answer to GPO - take the ATC (durable first), then
    AIP and AFL in Format 1 (``80``) or Format 2 (``77``) as the profile says."""
    atc, key, changes = app.begin_transaction()
    try:
        app.commit_transaction(atc, changes)
    except AtcExhausted:
        app.store.update_app(app.aid, application_blocked=True)
        return _sw(SW.CONDITIONS_NOT_SATISFIED)
    app.session.atc, app.session.keys = atc, app.keys_for(key)
    app.session.phase = Phase.INITIATED
    log.info("GPO: full path, ATC %04X", atc)
    if int(app.app.extra.get("gpo_format", 2)) == 1:
        return ResponseApdu(Tlv.primitive(0x80, app.app.aip + app.app.afl).encode(), SW.OK)
    return ResponseApdu(Tlv.template(0x77, [Tlv.primitive(0x82, app.app.aip),
                                            Tlv.primitive(0x94, app.app.afl)]).encode(), SW.OK)


# --- INTERNAL AUTHENTICATE ------------------------------------------------------------------


def internal_authenticate(app: PaymentApplication, cmd: CommandApdu) -> ResponseApdu:
    """Book 3 6.5.9 and Book 2 6.5.1 (DDA): sign ICC dynamic data (a fresh 8-byte ICC Dynamic
    Number) over the terminal's DDOL data. Allowed after GPO and before the first GENERATE AC;
    an application without an ICC key pair does not implement the command (6D00)."""
    if app.app.icc_rsa is None or not is_set(app.app.aip, AIP.DDA_SUPPORTED):
        return _sw(SW.INS_NOT_SUPPORTED)
    if (cmd.p1, cmd.p2) != (0, 0):
        return _sw(SW.INCORRECT_P1P2)
    if not cmd.data or len(cmd.data) > app.app.icc_rsa.modulus_len - 25 - 1 - _IDN_LENGTH:
        return _sw(SW.WRONG_LENGTH)
    if app.session.phase is not Phase.INITIATED:
        return _sw(SW.CONDITIONS_NOT_SATISFIED)
    idn = app.random_bytes(_IDN_LENGTH)
    sdad = sign_dynamic_data(app.app.icc_rsa, bytes([len(idn)]) + idn, cmd.data)
    app.session.dda_performed = True
    log.info("INTERNAL AUTHENTICATE: DDA signature over %d bytes of DDOL data", len(cmd.data))
    if app.gac_format == 1:
        return ResponseApdu(Tlv.primitive(0x80, sdad).encode(), SW.OK)
    return ResponseApdu(Tlv.template(0x77, [Tlv.primitive(0x9F4B, sdad)]).encode(), SW.OK)


# --- GENERATE AC ----------------------------------------------------------------------------


def generate_ac(app: PaymentApplication, cmd: CommandApdu) -> ResponseApdu:
    """Book 3 6.5.5: the first GENERATE AC after GPO (CDOL1 data), the second after an ARQC
    (CDOL2 data, with the issuer's response); anything else answers 6985."""
    cda = bool(cmd.p1 & P1_CDA)
    if cmd.p2 != 0 or cmd.p1 & _P1_RFU or cmd.p1 & CID.TYPE_MASK == CID.TYPE_MASK:
        return _sw(SW.INCORRECT_P1P2)  # Table 12: P1 b8-b7 11 is RFU
    requested = CryptogramType.of(cmd.p1)
    if cda and (app.app.icc_rsa is None or not is_set(app.app.aip, AIP.CDA_SUPPORTED)):
        return _sw(SW.INCORRECT_P1P2)
    phase = app.session.phase
    if phase not in (Phase.INITIATED, Phase.ONLINE):
        return _sw(SW.CONDITIONS_NOT_SATISFIED)
    second = phase is Phase.ONLINE
    dol = app.app.cdol2 if second else app.app.cdol1
    try:
        values = split_dol_data(dol, cmd.data)
    except ValueError:
        return _sw(SW.WRONG_LENGTH)
    if second and requested is CryptogramType.ARQC:
        return _sw(SW.INCORRECT_P1P2)  # Book 3 6.5.5.2: no ARQC in the second GENERATE AC
    if second:
        return _second_generate_ac(app, cmd, requested, cda, values)
    return _first_generate_ac(app, cmd, requested, cda, values)


def _facts(app: PaymentApplication, values: dict[int, bytes]) -> TransactionFacts:
    """The transaction and the card's counters as they stood when this transaction began."""
    amount_text = values.get(0x9F02, b"").hex()
    return TransactionFacts(int(amount_text) if amount_text.isdigit() else 0,
                            values.get(0x5F2A, b""), app.session.before or app.state)


def _first_generate_ac(app: PaymentApplication, cmd: CommandApdu, requested: CryptogramType,
                       cda: bool,
                       values: dict[int, bytes]) -> ResponseApdu:
    """Card risk management and card action analysis, then the cryptogram (Book 3 9.3, 10.8).
    The counters and the online context are durable before the cryptogram leaves."""
    session = app.session
    risk = app.risk()
    facts = _facts(app, session.values | values)
    decision = first_ac_decision(requested, risk, facts)
    atc_b = session.atc_bytes
    all_values = session.values | values
    assert session.keys is not None
    key = session.keys.ac_key(atc_b, all_values)
    if key is None:
        decision = Decision(CryptogramType.AAC, NO_KEY_REASON)
    cid = decision.cid
    signs = cda and cid != CryptogramType.AAC  # Book 2 6.6.1: no CDA signature on an AAC
    count = facts.state.consecutive_offline
    cvr = build_cvr(app.method.cvr_layout, CvrFacts.for_cryptogram(
        facts, cid, offline_dda_performed=session.dda_performed, cda_performed=signs,
        velocity_exceeded=decision.velocity_exceeded,
        lower_consecutive_exceeded=count >= risk.lower_consecutive_offline_limit,
        upper_consecutive_exceeded=count >= risk.upper_consecutive_offline_limit))
    iad = app.method.iad(app.app.dki, cvr)
    all_values |= {0x82: app.app.aip, 0x9F36: atc_b, 0x9F10: iad}
    ac = (compute_ac(key, app.method.mac_input(all_values), app.method.padding)
          if key is not None else bytes(8))
    st = app.state
    changes: dict[str, Any] = {"last_online_not_completed": cid == CryptogramType.ARQC}
    if cid == CryptogramType.TC:
        changes |= {"consecutive_offline": st.consecutive_offline + 1,
                    "cumulative_offline_amount": st.cumulative_offline_amount + facts.amount}
    elif cid == CryptogramType.ARQC:
        changes["online"] = OnlineContext(session.atc, ac.hex().upper(), st.current_key)
    app.store.update_app(app.aid, **changes)
    session.cdol1_data = cmd.data
    session.values = all_values
    session.first_cid, session.first_ac, session.reason = cid, ac, decision.reason
    session.phase = Phase.ONLINE if cid == CryptogramType.ARQC else Phase.COMPLETED
    log.info("GENERATE AC 1: %s asked, %s (%s), ATC %04X%s", requested,
             cid, decision.reason, session.atc, " with CDA" if signs else "")
    return _ac_response(app, cid, ac, iad, signs, all_values, None)


def _ac_response(app: PaymentApplication, cid: int, ac: bytes, iad: bytes, signs: bool,
                 values: dict[int, bytes], cdol2_data: bytes | None) -> ResponseApdu:
    """Book 3 6.5.5.4: Format 1 ``80`` CID ‖ ATC ‖ AC ‖ IAD, or Format 2 ``77``; with CDA
    (Book 2 6.6.1) always Format 2, the AC inside the signature only."""
    atc_b = app.session.atc_bytes
    if not signs:
        if app.gac_format == 1:
            return ResponseApdu(Tlv.primitive(0x80, bytes([cid]) + atc_b + ac + iad).encode(),
                                SW.OK)
        objs = [Tlv.primitive(0x9F27, bytes([cid])), Tlv.primitive(0x9F36, atc_b),
                Tlv.primitive(0x9F26, ac), Tlv.primitive(0x9F10, iad)]
        return ResponseApdu(Tlv.template(0x77, objs).encode(), SW.OK)
    assert app.app.icc_rsa is not None
    cid_obj, atc_obj = Tlv.primitive(0x9F27, bytes([cid])), Tlv.primitive(0x9F36, atc_b)
    iad_obj = Tlv.primitive(0x9F10, iad)
    tdhc = cda_transaction_data_hash(app.session.pdol_data, app.session.cdol1_data, cdol2_data,
                                     [cid_obj, atc_obj, iad_obj])
    idn = app.random_bytes(_IDN_LENGTH)
    dynamic = bytes([len(idn)]) + idn + bytes([cid]) + ac + tdhc
    un = values.get(0x9F37, b"")
    sdad = sign_dynamic_data(app.app.icc_rsa, dynamic, un)
    objs = [cid_obj, atc_obj, Tlv.primitive(0x9F4B, sdad), iad_obj]
    return ResponseApdu(Tlv.template(0x77, objs).encode(), SW.OK)


def _issuer_outcome(app: PaymentApplication, values: dict[int, bytes]) -> tuple[
        IssuerOutcome, IssuerResponse | None]:
    """Book 3 10.9: issuer authentication with ``91`` from CDOL2 (or the EXTERNAL
    AUTHENTICATE already done), and the ARC ``8A`` for "unable to go online"."""
    session = app.session
    arc = values.get(0x8A, b"")
    if arc in UNABLE_TO_GO_ONLINE_ARCS:
        return IssuerOutcome(None, False, unable_to_go_online=True), None
    response = session.external_authentication
    data = values.get(0x91, b"")
    if response is None and any(data):
        response = _check_arpc(app, data)
    if response is None:
        return IssuerOutcome(None, arc in APPROVAL_ARCS), None
    return IssuerOutcome(response.valid, response.valid and response.approved), response


def _check_arpc(app: PaymentApplication, data: bytes) -> IssuerResponse:
    session = app.session
    assert session.keys is not None
    key = session.keys.arpc_key(session.atc_bytes, session.values)
    if key is None:
        return IssuerResponse(False, False)
    candidates = [bytes(data)]
    trimmed = bytes(data).rstrip(b"\x00")
    if app.method.arpc_method == 2 and len(trimmed) >= 8 and trimmed != bytes(data):
        candidates.append(trimmed + bytes(max(0, 8 - len(trimmed))))  # a 91 shorter than 8A
    for candidate in candidates:
        response = app.method.check_arpc(key, session.first_ac, candidate)
        if response.valid:
            return response
    return IssuerResponse(False, False)


def _second_generate_ac(app: PaymentApplication, cmd: CommandApdu, requested: CryptogramType,
                        cda: bool,
                        values: dict[int, bytes]) -> ResponseApdu:
    """Book 3 9.3 / 10.9: the issuer's answer decides; a failed ARPC is remembered for the
    next transaction (CVR "issuer authentication failure on last online transaction")."""
    session = app.session
    outcome, response = _issuer_outcome(app, values)
    risk = app.risk()
    facts = _facts(app, session.values)
    decision = second_ac_decision(requested, risk, facts, outcome)
    if app.blocked and decision.cid != CryptogramType.AAC:
        decision = Decision(CryptogramType.AAC, "application blocked by the issuer")
    cid = decision.cid
    signs = cda and cid != CryptogramType.AAC
    cvr = build_cvr(app.method.cvr_layout, CvrFacts.for_cryptogram(
        facts, session.first_cid or CryptogramType.ARQC, second_ac=cid,
        offline_dda_performed=session.dda_performed, cda_performed=signs,
        issuer_authentication_failed_now=outcome.authentication is False,
        issuer_authentication_performed=outcome.authentication is not None,
        unable_to_go_online=outcome.unable_to_go_online,
        velocity_exceeded=decision.velocity_exceeded))
    iad = app.method.iad(app.app.dki, cvr)
    all_values = session.values | values | {0x9F10: iad}
    assert session.keys is not None
    key = session.keys.ac_key(session.atc_bytes, all_values)
    ac = (compute_ac(key, app.method.mac_input(all_values), app.method.padding)
          if key is not None else bytes(8))
    st = app.state
    changes: dict[str, Any] = {"last_online_not_completed": False}
    if outcome.unable_to_go_online:
        if cid == CryptogramType.TC:
            changes |= {"consecutive_offline": st.consecutive_offline + 1,
                        "cumulative_offline_amount":
                            st.cumulative_offline_amount + facts.amount}
    else:
        changes |= {"issuer_authentication_failed": outcome.authentication is False,
                    "issuer_authentication_not_performed": outcome.authentication is None}
        if outcome.authentication is not False:
            changes |= {"last_online_atc": session.atc, "consecutive_offline": 0,
                        "cumulative_offline_amount": 0}
    if response is not None and response.application_block:
        changes["application_blocked"] = True
    if st.online is not None:
        changes["online"] = replace(st.online, authenticated=True)
    app.store.update_app(app.aid, **changes)
    if response is not None and response.card_block:
        app.store.update(card_blocked=True)
    session.phase, session.reason = Phase.COMPLETED, decision.reason
    log.info("GENERATE AC 2: %s asked, %s (%s), ATC %04X", requested,
             cid, decision.reason, session.atc)
    return _ac_response(app, cid, ac, iad, signs, all_values, cmd.data)


# --- EXTERNAL AUTHENTICATE ------------------------------------------------------------------


def external_authenticate(app: PaymentApplication, cmd: CommandApdu) -> ResponseApdu:
    """Book 3 6.5.4 / Book 2 8.2: verify the ARPC of the last ARQC - in this tap after the
    first GENERATE AC, or on re-presentation (issuer update processing, C-3) after SELECT.
    Once per transaction; a wrong ARPC answers 6300 and is remembered for the next one."""
    if (cmd.p1, cmd.p2) != (0, 0):
        return _sw(SW.INCORRECT_P1P2)
    if not 8 <= len(cmd.data) <= 16:
        return _sw(SW.WRONG_LENGTH)
    session = app.session
    st = app.state
    context = st.online
    re_presented = session.phase in (Phase.SELECTED, Phase.QUICK_DONE)
    if (context is None or context.authenticated or session.external_authentication is not None
            or session.phase not in (Phase.ONLINE, Phase.SELECTED, Phase.QUICK_DONE)):
        return _sw(SW.CONDITIONS_NOT_SATISFIED)
    if re_presented:
        session.atc, session.first_ac = context.atc, bytes.fromhex(context.arqc)
        session.keys = app.keys_for(context.key)
    response = _check_arpc(app, cmd.data)
    session.external_authentication = response
    changes: dict[str, Any] = {"issuer_authentication_failed": not response.valid}
    if response.valid:
        changes |= {"consecutive_offline": 0, "cumulative_offline_amount": 0,
                    "issuer_authentication_not_performed": False}
        if response.application_block:
            changes["application_blocked"] = True
    if re_presented:
        changes["online"] = replace(context, authenticated=True)
    app.store.update_app(app.aid, **changes)
    if response.valid and response.card_block:
        app.store.update(card_blocked=True)
    log.info("EXTERNAL AUTHENTICATE: ARPC %s", "valid" if response.valid else "INVALID")
    return _sw(SW.OK if response.valid else SW.STATE_UNCHANGED_WARNING)
