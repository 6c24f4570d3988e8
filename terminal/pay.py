"""One contactless transaction, end to end: Entry Point, the kernel, the online request, the
final outcome (EMV Contactless Book A, 5 "the transaction flow") - and, when the host sent
issuer authentication or scripts and the card is presented again, issuer update processing
(Book C-3 / C-7, "issuer update").

Entry Point starts where Book B, 3 says each start begins, one function each:

=======  ========================  ===========================================================
start    begins at                 used by
=======  ========================  ===========================================================
A        pre-processing (3.1)      :func:`start_a`, from :func:`perform_transaction`: a new
                                   transaction with its amount
B        protocol activation (3.2) :func:`start_b` after pre-processing, and the card
                                   presented again for issuer update
                                   (:func:`perform_issuer_update`)
C        combination selection     :func:`start_c`: the card is in the field; PPSE (or PSE /
         (3.3)                     the list of AIDs), then final selection
D        kernel activation (3.4)   :func:`start_d`: the selected combination's kernel
=======  ========================  ===========================================================
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime

from emvtap.apdu import SW, CommandApdu
from emvtap.bits import CTQ, TTQ, TVR, is_set
from emvtap.capk import CapkStore
from emvtap.masking import mask_text
from emvtap.tlv import Tlv, decode
from terminal.config import TerminalConfig
from terminal.context import Authoriser, PinEntry, TransactionContext
from terminal.entry_point import (
    Candidate,
    EntryPointError,
    PreProcessingIndicators,
    build_candidate_list,
    candidates_from_aid_list,
    candidates_from_pse,
    final_selection,
    pre_processing,
    protocol_activation,
    select_ppse,
)
from terminal.kernel.activation import activate_kernel
from terminal.kernel.common import KernelAbort, receive_card_data
from terminal.kernel.cvm import online_pin_block
from terminal.kernel.issuer import external_authenticate, issuer_script_processing
from terminal.kernel.kernels import KERNEL_PROFILES
from terminal.online import (
    OnlineResponse,
    OnlineUnavailable,
    request_online_authorisation,
    switch_authoriser,
)
from terminal.outcome import Cvm, KernelOutcome, Outcome, TransactionResult
from terminal.redaction import cardholder_data
from terminal.transport.base import CardRemovedError, NoCardError, Transport, TransportError

__all__ = [
    "capk_store",
    "perform_issuer_update",
    "perform_transaction",
    "start_a",
    "start_b",
    "start_c",
    "start_d",
]

#: The reason's words while issuer update waits for the card (replaced once delivered).
ISSUER_UPDATE_WAITING = "issuer update waiting: present card again"


def capk_store(config: TerminalConfig) -> CapkStore:
    """The shipped CAPKs in the configuration's mode, with its CA revocation list."""
    store = CapkStore.default(production=config.production)
    for entry in config.revocation_list:
        store.revoke(entry.rid, entry.index, entry.serial)
    return store


def _authoriser(config: TerminalConfig, switch: str | None,
                authorise: Authoriser | None) -> Authoriser | None:
    if authorise is not None:
        return authorise
    target = config.switch if switch is None else switch
    if not target or target == "none":
        return None
    try:
        return switch_authoriser(target, config.online_timeout_seconds)
    except ValueError as exc:
        raise EntryPointError(Outcome.END_APPLICATION,
                              f"switch {target!r} is not HOST:PORT") from exc


def perform_transaction(
    transport: Transport,
    config: TerminalConfig,
    amount: int,
    *,
    capks: CapkStore | None = None,
    switch: str | None = None,
    authorise: Authoriser | None = None,
    clear_pan: bool = False,
    card_timeout: float | None = 30.0,
    now: datetime | None = None,
    unpredictable_number: bytes | None = None,
    pin_entry: PinEntry | None = None,
    rng: random.Random | None = None,
    transaction_type: int = 0x00,
    merchant_forced_online: bool = False,
) -> TransactionResult:
    """Run one tap to its final outcome, from Entry Point Start A. Never raises for anything
    the card or the host does: every path ends in an :class:`Outcome` with a reason.

    ``authorise`` replaces the TCP link to ``switch`` (HOST:PORT, ``"none"`` for no online
    link, default from the configuration); ``pin_entry`` is the PIN pad; ``now``,
    ``unpredictable_number`` and ``rng`` make a tap reproducible.
    """
    ctx = TransactionContext(transport, config, amount, transaction_type=transaction_type,
                             clear_pan=clear_pan)
    if now:
        ctx.now = now
    if unpredictable_number:
        ctx.unpredictable_number = unpredictable_number
    if rng is not None:
        ctx.rng = rng
    ctx.pin_entry = pin_entry
    ctx.merchant_forced_online = merchant_forced_online
    res = ctx.result
    res.amount = amount
    res.currency = config.transaction_currency_code.hex()[-3:]
    start = time.perf_counter()
    try:
        ctx.authorise = _authoriser(config, switch, authorise)
        capks = capks or capk_store(config)
        kernel = start_a(ctx, capks, card_timeout)
        res.end(kernel.outcome, kernel.reason)
        res.final_outcome = kernel.final_outcome
    except EntryPointError as stop:
        res.end(stop.outcome, stop.reason)
    except KernelAbort as abort:
        res.end(Outcome.END_APPLICATION, abort.reason)
    except CardRemovedError as exc:
        _card_gone(res, f"card removed from the field: present card again ({exc})")
    except TransportError as exc:
        _card_gone(res, f"communication error: present card again ({exc})")
    except Exception as exc:  # the promise: an outcome, never an exception
        res.end(Outcome.END_APPLICATION, f"internal error: {_error_text(exc, clear_pan)}")
    finally:
        # the tap is timed from the card's activation: the wait for a card is not part of it
        presented = ctx.card_presented_at
        res.tap_seconds = time.perf_counter() - (start if presented is None else presented)
    res.card_data = dict(ctx.card)
    if res.outcome == Outcome.ONLINE_REQUEST and res.final_outcome is None:
        _quick_path_online(ctx)
    elif res.final_outcome is None:
        res.final_outcome = res.outcome
    if not clear_pan:
        _mask_cardholder_data(ctx)
    return res


def _mask_cardholder_data(ctx: TransactionContext) -> None:
    """The last pass over the record: every PAN and track 2 the tap met - in an answer that
    parsed or not, before or after - masked in every hex and text field
    (terminal/redaction.py)."""
    res = ctx.result
    known = cardholder_data(ctx.sensitive, ctx.card)
    known.pans |= ctx.cardholder.pans
    known.track2_tails |= ctx.cardholder.track2_tails
    res.apdus = known.mask_record(res.apdus)
    res.steps = known.mask_record(res.steps)
    res.reason = known.mask(res.reason)
    res.online = known.mask_record(res.online)
    res.issuer_update = known.mask_record(res.issuer_update)


def _card_gone(res: TransactionResult, reason: str) -> None:
    if res.online.get("approved"):
        reason += "; the host had approved: the authorisation must be reversed"
    res.end(Outcome.TRY_AGAIN, reason)
    res.final_outcome = Outcome.TRY_AGAIN


def start_a(ctx: TransactionContext, capks: CapkStore,
            card_timeout: float | None) -> KernelOutcome:
    """Book B, 3.1 (Start A): a new transaction with its amount - pre-processing per
    combination (limits, TTQ), then Start B."""
    indicators = pre_processing(ctx.config, ctx.amount)
    return start_b(ctx, indicators, capks, card_timeout)


def start_b(ctx: TransactionContext, indicators: list[PreProcessingIndicators],
            capks: CapkStore, card_timeout: float | None) -> KernelOutcome:
    """Book B, 3.2 (Start B): protocol activation - wait up to ``card_timeout`` seconds for a
    card in the field and activate it - then Start C. No card is END APPLICATION."""
    try:
        protocol_activation(ctx.transport, card_timeout)
    except NoCardError as exc:
        raise EntryPointError(Outcome.END_APPLICATION, f"no card presented: {exc}") from exc
    ctx.card_presented_at = time.perf_counter()
    return start_c(ctx, indicators, capks)


def start_c(ctx: TransactionContext, indicators: list[PreProcessingIndicators],
            capks: CapkStore) -> KernelOutcome:
    """Book B, 3.3 (Start C): combination selection - the PPSE (without one, the contact PSE
    when configured, else the terminal's list of AIDs) gives the candidate list; final
    selection SELECTs the best candidate the card accepts - then Start D."""
    config = ctx.config
    ppse = select_ppse(ctx)
    if ppse is not None:
        candidates = build_candidate_list(config, ppse, indicators)
    else:
        pse = candidates_from_pse(ctx, indicators) if config.use_pse else None
        candidates = pse if pse else candidates_from_aid_list(ctx, indicators)
    if not candidates:
        raise EntryPointError(Outcome.END_APPLICATION,
                              "no application on the card matches a supported AID/kernel")
    cand, fci = final_selection(ctx, candidates)
    return start_d(ctx, cand, fci, capks)


def start_d(ctx: TransactionContext, cand: Candidate, fci: list[Tlv],
            capks: CapkStore) -> KernelOutcome:
    """Book B, 3.4 (Start D): kernel activation - the kernel of the selected combination
    (by its Kernel Identifier) receives the FCI of the final SELECT, runs with the
    combination's pre-processing indicators and returns its outcome."""
    res = ctx.result
    ctx.combination = cand.indicators.combination
    res.aid = cand.adf_name.hex().upper()
    res.label = cand.label
    res.kernel_id = cand.kernel_id
    receive_card_data(ctx, fci or [], "FCI")
    profile = KERNEL_PROFILES.get(cand.kernel_id)
    if profile is None:
        raise EntryPointError(Outcome.END_APPLICATION,
                              f"kernel {cand.kernel_id} is not implemented")
    return activate_kernel(ctx, profile, cand.indicators, capks)


def _quick_path_online(ctx: TransactionContext) -> None:
    """Book A, 5.5 / C-3, C-7: the kernel asked for online authorisation; collect the online
    PIN if the card required it, send the request; the issuer's answer is the final outcome.
    A host answer with 91/71/72 for a card and reader that both support issuer update leaves
    issuer update pending ("present card again")."""
    res = ctx.result
    if res.cvm == Cvm.ONLINE_PIN and ctx.online_pin_block is None:
        pin = ctx.pin_entry() if ctx.pin_entry else None
        try:
            if not pin:
                raise ValueError("no PIN entered")
            ctx.online_pin_block = online_pin_block(ctx, pin)
        except ValueError as exc:
            res.set_tvr(TVR.PIN_NOT_ENTERED)
            res.final_outcome = Outcome.DECLINED
            res.reason += f"; online PIN required but not entered ({exc})"
            return
        res.set_tvr(TVR.ONLINE_PIN_ENTERED)
    try:
        response = request_online_authorisation(ctx)
    except OnlineUnavailable as exc:
        res.final_outcome = Outcome.DECLINED
        res.reason += f"; unable to go online ({exc})"
        return
    except Exception as exc:  # never an exception out of a tap
        res.final_outcome = Outcome.DECLINED
        res.reason += f"; internal error going online: {_error_text(exc, ctx.clear_pan)}"
        return
    if response.approved:
        res.final_outcome = Outcome.APPROVED
        res.reason += f"; issuer approved ({response.response_code})"
    else:
        res.final_outcome = Outcome.DECLINED
        res.reason += f"; issuer declined ({response.response_code})"
    _issuer_update_pending(ctx, response)


def _issuer_update_pending(ctx: TransactionContext, response: OnlineResponse) -> None:
    """C-3 / C-7 issuer update processing is offered when the host sent issuer scripts (with
    the 91 that comes with them), the reader supports it (TTQ byte 3 b8) and the card does
    (CTQ byte 2 b7). An ARPC alone does not ask the cardholder to tap again: on the quick path
    the card has finished, and its next online transaction carries the result."""
    res = ctx.result
    if not (response.scripts_71 or response.scripts_72):
        return
    ttq = ctx.card.get(0x9F66, b"")
    ctq = ctx.card.get(0x9F6C, b"")
    update = {
        "aid": res.aid,
        "issuer_authentication_data": response.issuer_authentication_data.hex().upper()
        if response.issuer_authentication_data else None,
        "scripts_71": [t.encode().hex().upper() for t in response.scripts_71],
        "scripts_72": [t.encode().hex().upper() for t in response.scripts_72],
    }
    if not is_set(ttq, TTQ.ISSUER_UPDATE_SUPPORTED):
        res.issuer_update = update | {"pending": False,
                                      "result": "reader does not support issuer update"}
    elif not is_set(ctq, CTQ.ISSUER_UPDATE_SUPPORTED):
        res.issuer_update = update | {"pending": False,
                                      "result": "card does not support issuer update"}
    else:
        res.issuer_update = update | {"pending": True, "result": "present card again"}
        res.reason += f"; {ISSUER_UPDATE_WAITING}"


def perform_issuer_update(
    transport: Transport,
    config: TerminalConfig,
    result: TransactionResult,
    *,
    card_timeout: float | None = None,
    clear_pan: bool = False,
    now: datetime | None = None,
    on_card: Callable[[], None] | None = None,
) -> TransactionResult:
    """C-3 / C-7 issuer update processing when the card is presented again: Entry Point's
    Start B (Book B, 3.2; the kernel's ONLINE REQUEST outcome asked for it with the issuer's
    online response data) - protocol activation, SELECT the same application, EXTERNAL
    AUTHENTICATE with 91 (when sent), then the issuer scripts (71, then 72) - and report the
    Issuer Script Results (9F5B) and the TVR byte 5 bits in ``result``. Never raises; the
    transaction's outcome does not change."""
    update = result.issuer_update
    if not update.get("pending"):
        return result
    ctx = TransactionContext(transport, config, result.amount, clear_pan=clear_pan,
                             result=result)
    if now:
        ctx.now = now
    ctx.sensitive = [d for d in (_pan_digits(result),) if d]
    timeout = config.issuer_update_timeout_seconds if card_timeout is None else card_timeout
    update["pending"] = False
    try:
        protocol_activation(transport, timeout)
        if on_card:
            on_card()
        aid = bytes.fromhex(update["aid"])
        resp = ctx.exchange(CommandApdu(0x00, 0xA4, 0x04, 0x00, aid, 0),
                            "issuer update: SELECT " + update["aid"])
        if resp.sw != SW.OK:
            update["result"] = f"the card answered SELECT with {resp.sw:04X}"
            return result
        if update.get("issuer_authentication_data"):
            update["issuer_authentication"] = external_authenticate(
                ctx, bytes.fromhex(update["issuer_authentication_data"]))
            if result.online:  # the card itself has now judged the ARPC
                result.online["arpc_verified"] = update["issuer_authentication"]
        before = len(result.issuer_script_results)
        for key, before_final in (("scripts_71", True), ("scripts_72", False)):
            templates = [t for raw in update.get(key, ()) for t in decode(bytes.fromhex(raw))]
            issuer_script_processing(ctx, templates, before_final)
        scripts = result.issuer_script_results[before:]
        update["script_results"] = scripts.hex().upper()
        update["result"] = "delivered"
        result.reason = result.reason.replace(ISSUER_UPDATE_WAITING, "issuer update delivered")
    except NoCardError as exc:
        update["result"] = f"card not presented again ({exc})"
    except CardRemovedError as exc:
        update["result"] = f"card removed during issuer update ({exc})"
    except TransportError as exc:
        update["result"] = f"communication error during issuer update ({exc})"
    except Exception as exc:  # never an exception out of a tap
        update["result"] = f"internal error: {_error_text(exc, clear_pan)}"
    return result


def _error_text(exc: Exception, clear_pan: bool) -> str:
    """A bug of ours as the record tells it: type and message, PANs masked."""
    return f"{type(exc).__name__}: {str(exc) if clear_pan else mask_text(str(exc))}"


def _pan_digits(result: TransactionResult) -> str:
    pan = result.card_data.get(0x5A)
    if pan:
        return pan.hex().upper().rstrip("F")
    t2 = result.card_data.get(0x57, b"").hex().upper()
    return t2.split("D")[0] if t2 else ""
