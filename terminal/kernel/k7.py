"""Kernel 7 (UnionPay QuickPass, EMV Contactless Book C-7): the qPBOC quick path.

The card decides in GPO (ARQC, TC or AAC); the kernel reads the records, authenticates an
offline approval with fDDA, applies the CTQ's instructions (CVM, what to do when ODA fails or
the application has expired) and ends with an outcome and the reason for it.
"""

from __future__ import annotations

from datetime import date

from emvtap.bits import CID, CTQ, TSI, TTQ, TVR, is_set
from emvtap.capk import CapkStore
from emvtap.masking import mask_pan
from terminal.context import TransactionContext
from terminal.kernel.common import (
    KernelStop,
    initiate_application_processing,
    read_application_data,
)
from terminal.kernel.oda import OdaFailure, fast_dynamic_data_authentication
from terminal.outcome import Cvm

__all__ = ["QUICK_PATH_MANDATORY", "cardholder_verification", "kernel_7"]

#: C-7 quick path: data the card must return (GPO or records) for the kernel to go on.
QUICK_PATH_MANDATORY: dict[int, str] = {
    0x82: "AIP",
    0x94: "AFL",
    0x9F36: "ATC",
    0x9F26: "Application Cryptogram",
    0x9F10: "Issuer Application Data",
    0x57: "Track 2 Equivalent Data",
}


def _pan(ctx: TransactionContext) -> str:
    if 0x5A in ctx.card:
        return ctx.card[0x5A].hex().upper().rstrip("F")
    return ctx.card.get(0x57, b"").hex().upper().split("D")[0]


def _expired(ctx: TransactionContext) -> bool:
    """Book 3, 10.4.3: the application has expired when today is after 5F24 (or the track 2
    expiry when 5F24 was not read)."""
    exp = ctx.card.get(0x5F24)
    if exp and len(exp) == 3:
        yy, mm, dd = (int(exp.hex()[i:i + 2]) for i in (0, 2, 4))
    else:
        t2 = ctx.card.get(0x57, b"").hex().upper()
        if "D" not in t2:
            return False
        ym = t2.split("D", 1)[1][:4]
        yy, mm, dd = int(ym[:2]), int(ym[2:]), 28
    try:
        expiry = date(2000 + yy, mm, dd)
    except ValueError:
        return True
    return ctx.now.date() > expiry


def cardholder_verification(ctx: TransactionContext, ttq: bytes, ctq: bytes) -> Cvm:
    """C-7 / C-3 CVM: the card's CTQ says what it requires; without CVM required, none."""
    if is_set(ctq, CTQ.CDCVM_PERFORMED) and is_set(ttq, TTQ.CDCVM_SUPPORTED):
        cvm = Cvm.CDCVM
    elif is_set(ctq, CTQ.ONLINE_PIN_REQUIRED) and is_set(ttq, TTQ.ONLINE_PIN_SUPPORTED):
        cvm = Cvm.ONLINE_PIN
    elif is_set(ctq, CTQ.SIGNATURE_REQUIRED) and is_set(ttq, TTQ.SIGNATURE_SUPPORTED):
        cvm = Cvm.SIGNATURE
    elif is_set(ttq, TTQ.CVM_REQUIRED):
        ctx.result.set_tvr(TVR.CARDHOLDER_VERIFICATION_FAILED)
        raise KernelStop("DECLINED", "CVM required but the card asked for no CVM this "
                                     "reader supports")
    else:
        cvm = Cvm.NO_CVM
    if cvm != Cvm.NO_CVM:
        ctx.result.set_tsi(TSI.CARDHOLDER_VERIFICATION_PERFORMED)
    return cvm


def kernel_7(ctx: TransactionContext, pdol: bytes, ttq: bytes, capks: CapkStore) -> None:
    """Run the quick path to an outcome, filling ``ctx.result``. Raises KernelStop."""
    res = ctx.result
    res.path = "qPBOC quick path"
    initiate_application_processing(ctx, pdol, ttq)
    if 0x9F26 not in ctx.card:
        raise KernelStop("END APPLICATION",
                         "card answered GPO without a cryptogram: the full PBOC path is "
                         "not supported by this reader configuration")
    read_application_data(ctx)
    missing = [f"{name} ({tag:X})" for tag, name in QUICK_PATH_MANDATORY.items()
               if tag not in ctx.card]
    if missing:
        res.set_tvr(TVR.ICC_DATA_MISSING)
        raise KernelStop("END APPLICATION", "ICC data missing: " + ", ".join(missing))

    pan = _pan(ctx)
    res.pan_masked = pan if ctx.clear_pan else mask_pan(pan)
    ctq = ctx.card.get(0x9F6C, b"\x00\x00")
    res.ctq = ctq.hex().upper()
    cid = ctx.card.get(0x9F27, b"\x80")[0]
    res.cryptogram_type = CID.type_of(cid)
    res.cryptogram = ctx.card[0x9F26].hex().upper()
    res.atc = ctx.card[0x9F36].hex().upper()
    res.set_tsi(TSI.CARD_RISK_MANAGEMENT_PERFORMED)
    res.cvm = cardholder_verification(ctx, ttq, ctq)
    online_capable = ctx.config.online_capable and not is_set(ttq, TTQ.OFFLINE_ONLY_READER)

    if cid & CID.TYPE_MASK == CID.AAC:
        raise KernelStop("DECLINED", "card declined offline (AAC)")
    if cid & CID.TYPE_MASK == CID.ARQC:
        res.oda_result = "not performed (online authorisation)"
        if 0x9F4B not in ctx.card:
            res.set_tvr(TVR.ODA_NOT_PERFORMED)
        raise KernelStop("ONLINE REQUEST", "card requested online authorisation (ARQC)")
    if cid & CID.TYPE_MASK != CID.TC:
        raise KernelStop("END APPLICATION", f"cryptogram type {cid:02X} is not defined")

    # TC: an offline approval stands only with a good fDDA and an unexpired application.
    res.oda_method = "fDDA"
    try:
        fast_dynamic_data_authentication(ctx, capks)
        res.oda_result = "ok"
        res.set_tsi(TSI.ODA_PERFORMED)
    except OdaFailure as exc:
        res.oda_result = f"failed: {exc.reason}"
        res.set_tsi(TSI.ODA_PERFORMED)
        res.set_tvr(TVR.DDA_FAILED)
        if is_set(ctq, CTQ.GO_ONLINE_IF_ODA_FAILS) and online_capable:
            raise KernelStop("ONLINE REQUEST", f"fDDA failed ({exc.reason}); the card asks to "
                                               "go online") from exc
        if is_set(ctq, CTQ.SWITCH_INTERFACE_IF_ODA_FAILS):
            raise KernelStop("TRY ANOTHER INTERFACE",
                             f"fDDA failed ({exc.reason}); the card asks to switch interface"
                             ) from exc
        raise KernelStop("DECLINED", f"fDDA failed: {exc.reason}") from exc
    if _expired(ctx):
        res.set_tvr(TVR.EXPIRED_APPLICATION)
        if is_set(ctq, CTQ.GO_ONLINE_IF_EXPIRED) and online_capable:
            raise KernelStop("ONLINE REQUEST", "application expired; the card asks to go online")
        raise KernelStop("DECLINED", "application expired")
    raise KernelStop("APPROVED", "offline approval (TC) with fDDA verified")

