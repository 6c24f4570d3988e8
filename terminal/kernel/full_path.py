"""The EMV full path, for cards that answer GET PROCESSING OPTIONS with only AIP and AFL
(Mastercard-style contactless cards, the UnionPay "full PBOC" path of C-7, contact-like cards):
EMV 4.4 Book 3, 10.2-10.11 and Book 4, 6.3, one function per procedure, in this order:

read application data → processing restrictions → terminal risk management → offline data
authentication → cardholder verification → terminal action analysis → card action analysis
(GENERATE AC 1) → online processing → issuer authentication → issuer scripts 71 →
completion (GENERATE AC 2) → issuer scripts 72.

(Book 3, 10: ODA, processing restrictions, cardholder verification and terminal risk
management may run in any order between reading the data and terminal action analysis; this
one reads the velocity counters before INTERNAL AUTHENTICATE, as the recorded PBOC terminal
does.) The card stays in the field while the host answers, as on a contact terminal.
"""

from __future__ import annotations

import hashlib

from emvtap.bits import AIP, TSI, TTQ, TVR, Bit, CryptogramType, is_set, names
from emvtap.capk import CapkStore
from emvtap.dol import parse_dol
from emvtap.oda import IccPublicKey
from emvtap.tlv import TlvError
from terminal.config import TerminalActionCodes
from terminal.context import TransactionContext
from terminal.entry_point import PreProcessingIndicators
from terminal.kernel.binding import cda_atc_binding
from terminal.kernel.card_data import check_application_data
from terminal.kernel.common import (
    GenerateAcResponse,
    KernelAbort,
    build_dol,
    generate_ac,
    get_data,
    parse_date,
    read_application_data,
)
from terminal.kernel.cvm import cardholder_verification
from terminal.kernel.issuer import external_authenticate, issuer_script_processing
from terminal.kernel.oda import (
    OdaFailure,
    combined_dda_ac_verification,
    dynamic_data_authentication,
    recover_icc_key,
    select_oda_method,
    static_data_authentication,
)
from terminal.online import OnlineResponse, OnlineUnavailable, request_online_authorisation
from terminal.outcome import Cvm, KernelOutcome, Outcome

__all__ = [
    "FULL_PATH_MANDATORY",
    "card_action_analysis",
    "completion",
    "full_path",
    "offline_data_authentication",
    "online_processing",
    "processing_restrictions",
    "terminal_action_analysis",
    "terminal_risk_management",
]

#: Book 3, 10.2 / 7.2: data the card must provide on this path.
FULL_PATH_MANDATORY: dict[int, str] = {
    0x5F24: "Application Expiration Date",
    0x5A: "Application PAN",
    0x8C: "CDOL1",
    0x8D: "CDOL2",
}

#: Book 3, Annex C2 (Application Usage Control, 9F07) bits this kernel looks at.
AUC_DOMESTIC_CASH = Bit(1, 0x80, "valid for domestic cash transactions")
AUC_INTERNATIONAL_CASH = Bit(1, 0x40, "valid for international cash transactions")
AUC_DOMESTIC_GOODS = Bit(1, 0x20, "valid for domestic goods")
AUC_INTERNATIONAL_GOODS = Bit(1, 0x10, "valid for international goods")
AUC_DOMESTIC_SERVICES = Bit(1, 0x08, "valid for domestic services")
AUC_INTERNATIONAL_SERVICES = Bit(1, 0x04, "valid for international services")
AUC_ATM = Bit(1, 0x02, "valid at ATMs")
AUC_NON_ATM = Bit(1, 0x01, "valid at terminals other than ATMs")
AUC_DOMESTIC_CASHBACK = Bit(2, 0x80, "domestic cashback allowed")
AUC_INTERNATIONAL_CASHBACK = Bit(2, 0x40, "international cashback allowed")

#: Book 3, 10.4.2: transaction type → the AUC bits that allow it (domestic, international);
#: any one of the listed bits is enough.
AUC_BY_TRANSACTION_TYPE: dict[int, tuple[tuple[Bit, ...], tuple[Bit, ...]]] = {
    0x00: ((AUC_DOMESTIC_GOODS, AUC_DOMESTIC_SERVICES),
           (AUC_INTERNATIONAL_GOODS, AUC_INTERNATIONAL_SERVICES)),
    0x01: ((AUC_DOMESTIC_CASH,), (AUC_INTERNATIONAL_CASH,)),
    0x09: ((AUC_DOMESTIC_CASHBACK,), (AUC_INTERNATIONAL_CASHBACK,)),
}

#: Book 3, 10.11 / Book 4, A6: Authorisation Response Codes the terminal makes itself when it
#: could not go online (approved / declined offline by the default action codes).
ARC_UNABLE_ONLINE_APPROVED = b"Y3"
ARC_UNABLE_ONLINE_DECLINED = b"Z3"


def processing_restrictions(ctx: TransactionContext) -> None:
    """Book 3, 10.4: application version (9F08 vs 9F09), Application Usage Control (9F07
    against the terminal type, the transaction type and domestic/international from 5F28 vs
    9F1A), effective date (5F25) and expiration date (5F24). Only TVR byte 2 is set; terminal
    action analysis decides what the bits mean."""
    res, card, today = ctx.result, ctx.card, ctx.now.date()
    icc_version = card.get(0x9F08)
    if icc_version is not None and icc_version != ctx.application_version:
        res.set_tvr(TVR.VERSIONS_DIFFER)
        ctx.step(f"application versions differ: card {icc_version.hex().upper()}, terminal "
                 f"{ctx.application_version.hex().upper()}")
    auc = card.get(0x9F07)
    if auc is not None and len(auc) == 2:
        _application_usage_control(ctx, auc)
    effective = card.get(0x5F25)
    if effective is not None:
        start = parse_date(effective)
        if start is None or today < start:
            res.set_tvr(TVR.NOT_YET_EFFECTIVE)
            ctx.step(f"application not yet effective (5F25 {effective.hex()})")
    expiry = parse_date(card.get(0x5F24, b""))
    if expiry is None or today > expiry:
        res.set_tvr(TVR.EXPIRED_APPLICATION)
        ctx.step(f"application expired (5F24 {card.get(0x5F24, b'').hex()})")


def _application_usage_control(ctx: TransactionContext, auc: bytes) -> None:
    cfg = ctx.config
    atm = cfg.terminal_type[0] in (0x14, 0x15, 0x16) and bool(
        cfg.additional_terminal_capabilities[0] & 0x80)
    where_ok = is_set(auc, AUC_ATM if atm else AUC_NON_ATM)
    if not where_ok:
        ctx.result.set_tvr(TVR.SERVICE_NOT_ALLOWED)
        ctx.step("AUC: application not valid at " + ("ATMs" if atm else "this terminal type"))
        return
    issuer_country = ctx.card.get(0x5F28)
    allowed = AUC_BY_TRANSACTION_TYPE.get(ctx.transaction_type)
    if issuer_country is None or allowed is None:
        return
    domestic = issuer_country == cfg.terminal_country_code
    bits = allowed[0] if domestic else allowed[1]
    if not any(is_set(auc, b) for b in bits):
        ctx.result.set_tvr(TVR.SERVICE_NOT_ALLOWED)
        ctx.step(f"AUC {auc.hex().upper()}: requested service not allowed "
                 f"({'domestic' if domestic else 'international'} transaction type "
                 f"{ctx.transaction_type:02X})")


def terminal_risk_management(ctx: TransactionContext, floor_limit_exceeded: bool) -> None:
    """Book 3, 10.6 (performed when the AIP asks for it): terminal exception file, floor
    limit (as Entry Point found it, Book B 3.1.1.5-6), random transaction selection (10.6.2)
    and velocity checking with GET DATA ATC (9F36) and Last Online ATC Register (9F13)
    against 9F14/9F23 (10.6.3), which also tells a new card. (Merchant-forced online, TVR
    byte 4 b4, is set when the kernel starts, for the quick path too.)"""
    res = ctx.result
    if not is_set(ctx.card[0x82], AIP.TERMINAL_RISK_MANAGEMENT):
        ctx.step("AIP does not ask for terminal risk management")
        return
    res.set_tsi(TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED)
    if ctx.pan() in ctx.config.exception_file:
        res.set_tvr(TVR.CARD_ON_EXCEPTION_FILE)
        ctx.step("card appears on the terminal exception file")
    if floor_limit_exceeded:
        res.set_tvr(TVR.EXCEEDS_FLOOR_LIMIT)
        ctx.step(f"amount exceeds the floor limit {ctx.floor_limit}")
    else:
        _random_transaction_selection(ctx)
    _velocity_checking(ctx)


def _random_transaction_selection(ctx: TransactionContext) -> None:
    """Book 3, 10.6.2: below the threshold the target percentage, between threshold and floor
    limit a percentage rising linearly to the maximum; selected when a random number 1-99 is
    at most that percentage."""
    sel, floor = ctx.config.random_selection, ctx.floor_limit
    if floor is None or sel.max_target_percentage == 0 or ctx.amount >= floor:
        return
    if ctx.amount < sel.threshold or floor <= sel.threshold:
        percentage = float(sel.target_percentage)
    else:
        span = (ctx.amount - sel.threshold) / (floor - sel.threshold)
        percentage = sel.target_percentage + (sel.max_target_percentage
                                              - sel.target_percentage) * span
    draw = ctx.rng.randint(1, 99)
    if draw <= percentage:
        ctx.result.set_tvr(TVR.RANDOMLY_SELECTED_ONLINE)
        ctx.step(f"transaction selected randomly for online processing ({draw} ≤ "
                 f"{percentage:.1f}%)")


def _velocity_checking(ctx: TransactionContext) -> None:
    lower, upper = ctx.card.get(0x9F14), ctx.card.get(0x9F23)
    if lower is None or upper is None or len(lower) != 1 or len(upper) != 1:
        return
    res = ctx.result
    atc, last_online = get_data(ctx, 0x9F36), get_data(ctx, 0x9F13)
    if atc is not None and len(atc) == 2:
        ctx.card[0x9F36] = atc
    if last_online is not None and len(last_online) == 2 and last_online == b"\x00\x00":
        res.set_tvr(TVR.NEW_CARD)
        ctx.step("new card (last online ATC register is zero)")
    if (atc is None or last_online is None or len(atc) != 2 or len(last_online) != 2
            or int.from_bytes(atc, "big") <= int.from_bytes(last_online, "big")):
        res.set_tvr(TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
                    TVR.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
        ctx.step("velocity checking impossible (ATC or last online ATC not available): both "
                 "consecutive offline limits count as exceeded")
        return
    offline = int.from_bytes(atc, "big") - int.from_bytes(last_online, "big")
    if offline > lower[0]:
        res.set_tvr(TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
        ctx.step(f"{offline} offline transactions > lower consecutive offline limit {lower[0]}")
    if offline > upper[0]:
        res.set_tvr(TVR.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
        ctx.step(f"{offline} offline transactions > upper consecutive offline limit {upper[0]}")


def offline_data_authentication(ctx: TransactionContext, capks: CapkStore
                                ) -> IccPublicKey | None:
    """Book 3, 10.3: CDA, else DDA, else SDA - the best method card (AIP) and terminal
    (9F33 byte 3) share. SDA and DDA run now (SDA puts 9F45 DAC, DDA 9F4C IDN in the kernel
    data); for CDA the ICC public key is recovered now and the signature is checked on the
    GENERATE AC responses (returned key; ``None`` when CDA is not to be requested)."""
    res = ctx.result
    caps = ctx.terminal_capabilities or ctx.config.terminal_capabilities
    method = select_oda_method(ctx.card[0x82], caps)
    if method is None:
        res.set_tvr(TVR.ODA_NOT_PERFORMED)
        res.oda_method, res.oda_result = "none", "not performed (no method card and terminal share)"
        ctx.step("offline data authentication was not performed")
        return None
    res.oda_method = method
    res.set_tsi(TSI.ODA_PERFORMED)
    failed_bit = {"SDA": TVR.SDA_FAILED, "DDA": TVR.DDA_FAILED, "CDA": TVR.CDA_FAILED}[method]
    try:
        if method == "SDA":
            res.set_tvr(TVR.SDA_SELECTED)
            ctx.kernel_data[0x9F45] = static_data_authentication(ctx, capks)
        elif method == "DDA":
            ctx.kernel_data[0x9F4C] = dynamic_data_authentication(ctx, capks)
        else:
            key = recover_icc_key(ctx, capks)
            res.oda_result = "ICC key recovered; signature to be checked on GENERATE AC"
            return key
    except OdaFailure as exc:
        res.set_tvr(failed_bit)
        res.oda_result = f"failed: {exc.reason}"
        ctx.step(f"{method} failed: {exc.reason}")
        return None
    res.oda_result = "ok"
    ctx.step(f"{method} verified")
    return None


def _action_codes(ctx: TransactionContext) -> tuple[TerminalActionCodes, dict[str, bytes]]:
    tac = (ctx.combination.tac if ctx.combination and ctx.combination.tac else ctx.config.tac)
    card = ctx.card
    iac = {
        "denial": card.get(0x9F0E, bytes(5)),
        "online": card.get(0x9F0F, b"\xFF" * 5),
        "default": card.get(0x9F0D, b"\xFF" * 5),
    }
    return tac, {k: v if len(v) == 5 else (bytes(5) if k == "denial" else b"\xFF" * 5)
                 for k, v in iac.items()}


def _matches(tvr: bytes, *codes: bytes) -> bytes:
    out = bytearray(5)
    for code in codes:
        for i in range(5):
            out[i] |= tvr[i] & code[i]
    return bytes(out)


def _online_capable(ctx: TransactionContext) -> bool:
    """Book 4, A1: terminal type second digit 3 or 6 is offline only."""
    return ctx.config.online_capable and ctx.config.terminal_type[0] & 0x0F not in (3, 6)


def terminal_action_analysis(ctx: TransactionContext, force_online: bool = False
                             ) -> CryptogramType:
    """Book 3, 10.7: TVR against Issuer and Terminal Action Codes - Denial (→ AAC), then
    Online (→ ARQC, if the terminal can go online), else Default for an offline-only
    terminal (→ AAC); otherwise TC. A zero amount or a status check (Entry Point) goes
    online; a merchant-forced transaction does through its TVR bit. Returns the cryptogram
    GENERATE AC 1 asks for."""
    tac, iac = _action_codes(ctx)
    tvr = ctx.result.tvr
    hit = _matches(tvr, tac.denial, iac["denial"])
    if any(hit):
        ctx.step("terminal action analysis: denial codes match " + ", ".join(names(hit, TVR)))
        return CryptogramType.AAC
    if _online_capable(ctx):
        hit = _matches(tvr, tac.online, iac["online"])
        if any(hit) or force_online:
            why = ", ".join(names(hit, TVR)) or "online cryptogram required by Entry Point"
            ctx.step("terminal action analysis: go online (" + why + ")")
            return CryptogramType.ARQC
        return CryptogramType.TC
    hit = _matches(tvr, tac.default, iac["default"])
    if any(hit):
        ctx.step("terminal action analysis (offline-only): default codes match "
                 + ", ".join(names(hit, TVR)))
        return CryptogramType.AAC
    return CryptogramType.TC


def _default_action_after_failed_online(ctx: TransactionContext) -> CryptogramType:
    """Book 3, 10.7 last step / Book 4, 6.3.8: unable to go online - the Default codes
    decide between an offline approval (TC) and a decline (AAC)."""
    tac, iac = _action_codes(ctx)
    hit = _matches(ctx.result.tvr, tac.default, iac["default"])
    if any(hit):
        ctx.step("unable to go online: default codes match " + ", ".join(names(hit, TVR)))
        return CryptogramType.AAC
    return CryptogramType.TC


def _tc_hash_value(ctx: TransactionContext, cdol: bytes) -> None:
    """Book 3, 10.7 note / Book 2, 8.1: when a CDOL asks for the TC Hash Value (98), hash the
    TDOL data (the card's 97, else the terminal's default TDOL: TVR "default TDOL used")."""
    try:
        if all(e.tag != 0x98 for e in parse_dol(cdol)):
            return
    except TlvError:
        return
    tdol = ctx.card.get(0x97)
    if not tdol:
        tdol = ctx.config.default_tdol
        ctx.result.set_tvr(TVR.DEFAULT_TDOL_USED)
        ctx.step("CDOL asks for the TC hash value and the card has no TDOL: default TDOL used")
    data, _ = build_dol(tdol, ctx.dol_values(), "TDOL")
    ctx.kernel_data[0x98] = hashlib.sha1(data).digest()


def _record_cryptogram(ctx: TransactionContext, resp: GenerateAcResponse, ac: bytes) -> None:
    res = ctx.result
    ctx.card[0x9F27] = bytes([resp.cid])
    ctx.card[0x9F36] = resp.atc
    ctx.card[0x9F26] = ac
    if resp.iad:
        ctx.card[0x9F10] = resp.iad
    res.cryptogram_type = resp.cryptogram_type
    res.cryptogram = ac.hex().upper()
    res.atc = resp.atc.hex().upper()


#: Book 3, 6.5.5.4: CID b3-b1 reason / advice codes a kernel reports.
CID_REASONS: dict[int, str] = {
    0x01: "service not allowed",
    0x02: "PIN try limit exceeded",
    0x03: "issuer authentication failed",
}


def _cda_checked(ctx: TransactionContext, icc_pk: IccPublicKey | None, resp: GenerateAcResponse,
                 cdol1_data: bytes, cdol2_data: bytes | None, name: str) -> bytes | None:
    """The AC to use: from the CDA signature when one was requested (None when it failed)."""
    res = ctx.result
    if icc_pk is None or resp.cryptogram_type is CryptogramType.AAC:
        if resp.ac is None:
            res.set_tvr(TVR.ICC_DATA_MISSING)
            raise KernelAbort(f"{name}: no Application Cryptogram (9F26) in the response")
        return resp.ac
    try:
        cda = combined_dda_ac_verification(ctx, icc_pk, resp.raw, cdol1_data, cdol2_data)
        cda_atc_binding(ctx, resp.atc)
    except OdaFailure as exc:
        res.set_tvr(TVR.CDA_FAILED)
        res.oda_result = f"failed: {exc.reason}"
        ctx.step(f"CDA failed on {name}: {exc.reason}")
        return None
    ctx.kernel_data[0x9F4C] = cda.idn
    res.oda_result = "ok"
    ctx.step(f"CDA verified on {name}")
    return cda.ac


def _oda_reason(ctx: TransactionContext) -> str:
    return ctx.result.oda_result.removeprefix("failed: ")


def card_action_analysis(ctx: TransactionContext, requested: CryptogramType,
                         icc_pk: IccPublicKey | None) -> GenerateAcResponse | None:
    """Book 3, 10.8: GENERATE AC 1 with the CDOL1 data, asking for CDA when it is the ODA
    method and the request is not an AAC (Book 4, 6.3.2). Sets TSI "card risk management
    performed". ``None`` when the CDA signature of a TC or ARQC failed: the transaction is
    declined (Book 2, 6.6.2; an ARQC is first answered with GENERATE AC 2 for an AAC)."""
    res = ctx.result
    cda = icc_pk is not None and requested is not CryptogramType.AAC
    _tc_hash_value(ctx, ctx.card[0x8C])
    first, data, ctx.cdol1_values = generate_ac(ctx, requested, ctx.card[0x8C], cda=cda,
                                               values=ctx.dol_values(), name="GENERATE AC 1")
    ctx.cdol1_data = data
    res.set_tsi(TSI.CARD_RISK_MANAGEMENT_PERFORMED)
    ac = _cda_checked(ctx, icc_pk if cda else None, first, data, None, "GENERATE AC 1")
    reason_code = first.cid & 0x07
    if reason_code in CID_REASONS:
        ctx.step(f"card reports: {CID_REASONS[reason_code]}")
    if ac is None:
        _record_cryptogram(ctx, first, first.ac or bytes(8))
        if first.cryptogram_type is CryptogramType.ARQC:
            completion(ctx, CryptogramType.AAC, None, arc=ARC_UNABLE_ONLINE_DECLINED)
        return None
    _record_cryptogram(ctx, first, ac)
    return first


def completion(ctx: TransactionContext, requested: CryptogramType, icc_pk: IccPublicKey | None,
               arc: bytes) -> GenerateAcResponse | None:
    """Book 3, 10.11: GENERATE AC 2 with the CDOL2 data (8A, 91, TVR ...), asking for TC or
    AAC; the CDA signature of a TC is checked over PDOL ‖ CDOL1 ‖ CDOL2 data (``None`` when
    it failed: the transaction is declined)."""
    ctx.kernel_data[0x8A] = arc
    cdol2 = ctx.card[0x8D]
    _tc_hash_value(ctx, cdol2)
    cda = icc_pk is not None and requested is CryptogramType.TC
    second, data, _ = generate_ac(ctx, requested, cdol2, cda=cda, values=ctx.dol_values(),
                                  name="GENERATE AC 2")
    ac = _cda_checked(ctx, icc_pk if cda else None, second, ctx.cdol1_data, data,
                      "GENERATE AC 2")
    _record_cryptogram(ctx, second, ac or second.ac or bytes(8))
    if ac is None and cda:
        return None
    return second


def online_processing(ctx: TransactionContext, icc_pk: IccPublicKey | None) -> KernelOutcome:
    """Book 3, 10.8-10.11 after an ARQC: send it to the host; deliver the issuer's answer to
    the card - 91 by EXTERNAL AUTHENTICATE when the AIP supports issuer authentication and
    CDOL2 does not carry it (Book 3, 10.9), scripts 71 before and 72 after GENERATE AC 2 - and
    let GENERATE AC 2 decide. Unable to go online: the Default codes decide. The outcome is
    ONLINE REQUEST with the final outcome GENERATE AC 2 gave."""
    res = ctx.result
    asked = "card requested online authorisation (ARQC)"
    try:
        response: OnlineResponse | None = request_online_authorisation(ctx)
    except OnlineUnavailable as exc:
        response = None
        unavailable = str(exc)
    if response is None:
        requested = _default_action_after_failed_online(ctx)
        arc = (ARC_UNABLE_ONLINE_APPROVED if requested is CryptogramType.TC
               else ARC_UNABLE_ONLINE_DECLINED)
        second = completion(ctx, requested, icc_pk, arc)
        if second is None:
            return _cda_failed_on_second_generate_ac(ctx)
        approved = second.cryptogram_type is CryptogramType.TC
        return KernelOutcome(Outcome.ONLINE_REQUEST,
                             f"{asked}; unable to go online ({unavailable}); "
                             f"{'approved' if approved else 'declined'} offline by the default "
                             f"action codes ({second.cryptogram_name} in GENERATE AC 2)",
                             Outcome.APPROVED if approved else Outcome.DECLINED)
    issuer_data = response.issuer_authentication_data
    if issuer_data:
        ctx.kernel_data[0x91] = issuer_data
        cdol2_tags = _dol_tags(ctx.card[0x8D])
        if 0x91 in cdol2_tags:
            ctx.step("issuer authentication data (91) goes to the card in GENERATE AC 2")
        elif is_set(ctx.card[0x82], AIP.ISSUER_AUTHENTICATION_SUPPORTED):
            res.online["arpc_verified"] = external_authenticate(ctx, issuer_data)
        else:
            ctx.step("card supports no issuer authentication: 91 not delivered")
    issuer_script_processing(ctx, response.scripts_71, before_final_generate_ac=True)
    requested = CryptogramType.TC if response.approved else CryptogramType.AAC
    second = completion(ctx, requested, icc_pk, response.authorisation_response_code)
    if second is None:
        return _cda_failed_on_second_generate_ac(ctx)
    issuer_script_processing(ctx, response.scripts_72, before_final_generate_ac=False)
    host = f"issuer {'approved' if response.approved else 'declined'} ({response.response_code})"
    if second.cryptogram_type is CryptogramType.TC:
        if issuer_data and 0x91 in _dol_tags(ctx.card[0x8D]):
            res.online["arpc_verified"] = True
        return KernelOutcome(Outcome.ONLINE_REQUEST,
                             f"{asked}; {host}; card accepted (TC in GENERATE AC 2)",
                             Outcome.APPROVED)
    why = (f"{host}; card declined (AAC in GENERATE AC 2)" if response.approved
           else f"{host}; card confirmed the decline (AAC)")
    if response.approved and issuer_data and 0x91 in _dol_tags(ctx.card[0x8D]):
        res.online["arpc_verified"] = False
    return KernelOutcome(Outcome.ONLINE_REQUEST, f"{asked}; {why}", Outcome.DECLINED)


def _cda_failed_on_second_generate_ac(ctx: TransactionContext) -> KernelOutcome:
    return KernelOutcome(Outcome.ONLINE_REQUEST,
                         f"CDA failed on GENERATE AC 2: {_oda_reason(ctx)}", Outcome.DECLINED)


def _dol_tags(dol: bytes) -> set[int]:
    try:
        return {e.tag for e in parse_dol(dol)}
    except TlvError:
        return set()


def full_path(ctx: TransactionContext, capks: CapkStore,
              indicators: PreProcessingIndicators) -> KernelOutcome:
    """Run the full path after GET PROCESSING OPTIONS answered AIP/AFL to its outcome (Book 3,
    10.2-10.11). Raises :class:`KernelAbort` only when the card's data cannot be used."""
    res = ctx.result
    res.path = "EMV full path"
    read_application_data(ctx)
    check_application_data(ctx, FULL_PATH_MANDATORY)
    caps = ctx.config.terminal_capabilities
    if not indicators.cvm_required_limit_exceeded:
        # Below the CVM required limit the reader offers "no CVM required" only (C-2, "CVM
        # Capability - No CVM Required"; C-7 full path likewise).
        caps = bytes([caps[0], 0x08, caps[2]])
    ctx.terminal_capabilities = caps
    processing_restrictions(ctx)
    terminal_risk_management(ctx, indicators.floor_limit_exceeded)
    icc_pk = offline_data_authentication(ctx, capks)
    ttq = indicators.ttq
    if (is_set(ctx.card[0x82], AIP.ON_DEVICE_CVM_SUPPORTED) and is_set(ttq, TTQ.CDCVM_SUPPORTED)
            and indicators.cvm_required_limit_exceeded):
        res.cvm = Cvm.CDCVM
        res.cvm_results = bytes.fromhex("010002")
        res.set_tsi(TSI.CARDHOLDER_VERIFICATION_PERFORMED)
        ctx.step("on-device cardholder verification (AIP b2, reader supports CDCVM)")
    else:
        res.cvm = cardholder_verification(ctx)
    force_online = indicators.status_check_requested or indicators.zero_amount
    requested = terminal_action_analysis(ctx, force_online)
    first = card_action_analysis(ctx, requested, icc_pk)
    if first is None:
        return KernelOutcome(Outcome.DECLINED, f"CDA failed on GENERATE AC 1: {_oda_reason(ctx)}")
    method = res.oda_method if res.oda_method in ("SDA", "DDA", "CDA") else ""
    oda_note = (f" with {method} verified" if method and res.oda_result == "ok"
                else f" ({method} {res.oda_result})" if method else "")
    if first.cryptogram_type is CryptogramType.AAC:
        return KernelOutcome(Outcome.DECLINED,
                             f"card declined (AAC in GENERATE AC 1, {requested} requested)")
    if first.cryptogram_type is CryptogramType.TC:
        return KernelOutcome(Outcome.APPROVED,
                             f"offline approval (TC in GENERATE AC 1){oda_note}")
    return online_processing(ctx, icc_pk)
