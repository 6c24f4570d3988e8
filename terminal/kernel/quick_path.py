"""The contactless quick path shared by Kernel 7 (UnionPay QuickPass qPBOC, EMV Contactless
Book C-7) and Kernel 3 (Visa qVSDC, Book C-3): the card decides in GET PROCESSING OPTIONS
(ARQC, TC or AAC); the kernel reads the records, authenticates an offline approval with fDDA
(and an online one when the reader supports "ODA for online authorisations"), applies the
CTQ's instructions and ends with an outcome and the reason for it.

What differs between the two kernels is data (:class:`~terminal.kernel.kernels.KernelProfile`):
the fDDA signature formats, whether the CID may be missing, the path names.
"""

from __future__ import annotations

from emvtap.bits import CTQ, TSI, TTQ, TVR, CryptogramType, is_set
from emvtap.capk import CapkStore
from terminal.context import TransactionContext
from terminal.kernel.binding import fdda_atc_binding, fdda_ctq_binding
from terminal.kernel.card_data import check_application_data
from terminal.kernel.common import KernelAbort, parse_date, read_application_data
from terminal.kernel.kernels import KernelProfile
from terminal.kernel.oda import OdaFailure, fast_dynamic_data_authentication
from terminal.outcome import CVM_RESULTS, Cvm, KernelOutcome, Outcome

__all__ = [
    "QUICK_PATH_MANDATORY",
    "application_expired",
    "contactless_cardholder_verification",
    "cryptogram_information",
    "quick_path",
]

#: C-7 / C-3 quick path: data the card must return (GPO or records) for the kernel to go on.
QUICK_PATH_MANDATORY: dict[int, str] = {
    0x82: "AIP",
    0x94: "AFL",
    0x9F36: "ATC",
    0x9F26: "Application Cryptogram",
    0x9F10: "Issuer Application Data",
    0x57: "Track 2 Equivalent Data",
}

#: C-3 / C-7: transaction types (9C) the CTQ can send to another interface.
CASH, CASHBACK = 0x01, 0x09


def application_expired(ctx: TransactionContext) -> bool:
    """Book 3, 10.4.3: the application has expired when today is after 5F24 (or, when 5F24
    was not read, after the last day of the track 2 expiry month)."""
    exp = ctx.card.get(0x5F24)
    if exp is not None:
        expiry = parse_date(exp)
        return expiry is None or ctx.now.date() > expiry
    t2 = ctx.card.get(0x57, b"").hex().upper()
    if "D" not in t2:
        return False
    ym = t2.split("D", 1)[1][:4]
    if len(ym) != 4 or not ym.isdigit():
        return True
    yy, mm = int(ym[:2]), int(ym[2:])
    if not 1 <= mm <= 12:
        return True
    first_of_next = (2000 + yy + mm // 12, mm % 12 + 1)
    return (ctx.now.year, ctx.now.month) >= first_of_next


def cryptogram_information(ctx: TransactionContext, profile: KernelProfile) -> int:
    """The CID: 9F27 when the card sent it; for Kernel 3 without 9F27, the cryptogram type
    from CVR byte 2 b6-b5 in the IAD (C-3, Visa IAD formats 0/1/3: CVR from IAD byte 4)."""
    cid = ctx.card.get(0x9F27)
    if cid is not None and len(cid) == 1:
        return cid[0]
    iad = ctx.card.get(0x9F10, b"")
    if profile.cid_from_iad and len(iad) >= 5 and iad[0] in (0x06, 0x07) and iad[3] == 0x03:
        kind = (iad[4] >> 4) & 0x03
        ctx.step("no CID (9F27): cryptogram type taken from the CVR in the IAD")
        return {0: CryptogramType.AAC, 1: CryptogramType.TC, 2: CryptogramType.ARQC}.get(kind, 0xC0)
    ctx.result.set_tvr(TVR.ICC_DATA_MISSING)
    raise KernelAbort("ICC data missing: Cryptogram Information Data (9F27)")


def contactless_cardholder_verification(ctx: TransactionContext, ttq: bytes, ctq: bytes
                                        ) -> Cvm | None:
    """C-7 / C-3 CVM: the card's CTQ says what it did or requires - CDCVM performed, online
    PIN, signature - among what the reader's TTQ supports. ``None`` when a CVM is required
    (TTQ byte 2 b7) and none of them applies: the kernel declines (TVR "cardholder
    verification was not successful")."""
    if is_set(ctq, CTQ.CDCVM_PERFORMED) and is_set(ttq, TTQ.CDCVM_SUPPORTED):
        cvm = Cvm.CDCVM
    elif is_set(ctq, CTQ.ONLINE_PIN_REQUIRED) and is_set(ttq, TTQ.ONLINE_PIN_SUPPORTED):
        cvm = Cvm.ONLINE_PIN
    elif is_set(ctq, CTQ.SIGNATURE_REQUIRED) and is_set(ttq, TTQ.SIGNATURE_SUPPORTED):
        cvm = Cvm.SIGNATURE
    elif is_set(ttq, TTQ.CVM_REQUIRED):
        ctx.result.set_tvr(TVR.CARDHOLDER_VERIFICATION_FAILED)
        ctx.result.cvm_results = bytes.fromhex("3F0001")
        return None
    else:
        cvm = Cvm.NO_CVM
    ctx.result.cvm_results = CVM_RESULTS[cvm]
    if cvm != Cvm.NO_CVM:
        ctx.result.set_tsi(TSI.CARDHOLDER_VERIFICATION_PERFORMED)
    return cvm


def _fdda(ctx: TransactionContext, capks: CapkStore, profile: KernelProfile) -> str | None:
    """Run fDDA; ``None`` when it verified, else the reason. Sets TSI/TVR. The unsigned
    copies of what the signature covers - the ATC (when the kernel's ICC Dynamic Number is the
    ATC) and the CTQ - must match it (:mod:`terminal.kernel.binding`)."""
    res = ctx.result
    res.oda_method = "fDDA"
    res.set_tsi(TSI.ODA_PERFORMED)
    try:
        dynamic = fast_dynamic_data_authentication(ctx, capks, profile.fdda_formats)
        if profile.fdda_idn_is_atc:
            fdda_atc_binding(ctx, dynamic)
        fdda_ctq_binding(ctx)
    except OdaFailure as exc:
        res.oda_result = f"failed: {exc.reason}"
        res.set_tvr(TVR.DDA_FAILED)
        ctx.step(f"fDDA failed: {exc.reason}")
        return exc.reason
    res.oda_result = "ok"
    ctx.step("fDDA verified")
    return None


def quick_path(ctx: TransactionContext, profile: KernelProfile, ttq: bytes,
               capks: CapkStore) -> KernelOutcome:
    """Run the quick path to its outcome, filling ``ctx.result`` (Book A, 6.2; C-3 / C-7
    outcome processing). Raises :class:`KernelAbort` only when the card's data cannot be
    used."""
    res = ctx.result
    res.path = profile.quick_path_name or ""
    read_application_data(ctx)
    check_application_data(ctx, QUICK_PATH_MANDATORY)
    ctq = ctx.card.get(0x9F6C, b"\x00\x00")
    res.ctq = ctq.hex().upper()
    cid = cryptogram_information(ctx, profile)
    try:
        kind = CryptogramType.of(cid)
    except ValueError:
        raise KernelAbort(f"cryptogram type {cid:02X} is not defined") from None
    res.cryptogram_type = kind
    res.cryptogram = ctx.card[0x9F26].hex().upper()
    res.atc = ctx.card[0x9F36].hex().upper()
    res.set_tsi(TSI.CARD_RISK_MANAGEMENT_PERFORMED)
    online_capable = ctx.config.online_capable and not is_set(ttq, TTQ.OFFLINE_ONLY_READER)

    if kind is CryptogramType.AAC:
        return KernelOutcome(Outcome.DECLINED, "card declined offline (AAC)")
    if ctx.transaction_type == CASH and is_set(ctq, CTQ.SWITCH_INTERFACE_FOR_CASH):
        return KernelOutcome(Outcome.TRY_ANOTHER_INTERFACE,
                             "the card asks to switch interface for cash")
    if ctx.transaction_type == CASHBACK and is_set(ctq, CTQ.SWITCH_INTERFACE_FOR_CASHBACK):
        return KernelOutcome(Outcome.TRY_ANOTHER_INTERFACE,
                             "the card asks to switch interface for cashback")
    cvm = contactless_cardholder_verification(ctx, ttq, ctq)
    if cvm is None:
        return KernelOutcome(Outcome.DECLINED, "CVM required but the card asked for no CVM "
                                               f"this reader supports (CTQ {res.ctq})")
    res.cvm = cvm
    expired = application_expired(ctx)
    if expired:
        res.set_tvr(TVR.EXPIRED_APPLICATION)
    if kind is CryptogramType.ARQC:
        return _online_request(ctx, profile, ttq, capks, expired)
    return _offline_approval(ctx, profile, ctq, capks, expired, online_capable)


def _online_request(ctx: TransactionContext, profile: KernelProfile, ttq: bytes,
                    capks: CapkStore, expired: bool) -> KernelOutcome:
    """The card answered an ARQC: ONLINE REQUEST, with fDDA first when the reader supports
    "ODA for online authorisations" (TTQ byte 1 b1) and the card signed."""
    res = ctx.result
    reason = "card requested online authorisation (ARQC)"
    if 0x9F4B in ctx.card and is_set(ttq, TTQ.ODA_FOR_ONLINE_SUPPORTED):
        failure = _fdda(ctx, capks, profile)
        reason += (f"; fDDA failed ({failure}), the issuer sees it in the TVR" if failure
                   else "; fDDA verified (ODA for online authorisations)")
    else:
        res.set_tvr(TVR.ODA_NOT_PERFORMED)
        res.oda_result = "not performed (online authorisation)"
    if expired:
        reason += "; application expired"
    return KernelOutcome(Outcome.ONLINE_REQUEST, reason)


def _offline_approval(ctx: TransactionContext, profile: KernelProfile, ctq: bytes,
                      capks: CapkStore, expired: bool, online_capable: bool) -> KernelOutcome:
    """The card answered a TC: an offline approval stands only with a good fDDA and an
    unexpired application; otherwise the CTQ says whether to go online, switch interface or
    decline."""
    failure = _fdda(ctx, capks, profile)
    if failure is not None:
        if is_set(ctq, CTQ.GO_ONLINE_IF_ODA_FAILS) and online_capable:
            return KernelOutcome(Outcome.ONLINE_REQUEST,
                                 f"fDDA failed ({failure}); the card asks to go online")
        if is_set(ctq, CTQ.SWITCH_INTERFACE_IF_ODA_FAILS):
            return KernelOutcome(Outcome.TRY_ANOTHER_INTERFACE,
                                 f"fDDA failed ({failure}); the card asks to switch interface")
        return KernelOutcome(Outcome.DECLINED, f"fDDA failed: {failure}")
    if expired:
        if is_set(ctq, CTQ.GO_ONLINE_IF_EXPIRED) and online_capable:
            return KernelOutcome(Outcome.ONLINE_REQUEST,
                                 "application expired; the card asks to go online")
        return KernelOutcome(Outcome.DECLINED, "application expired")
    if ctx.result.cvm == Cvm.ONLINE_PIN:
        return KernelOutcome(Outcome.DECLINED,
                             "the card asks for online PIN on an offline approval (TC)")
    return KernelOutcome(Outcome.APPROVED, "offline approval (TC) with fDDA verified")
