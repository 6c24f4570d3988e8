"""One contactless transaction, end to end: Entry Point, the kernel, the online request and the
final outcome (EMV Contactless Book A, 5 "the transaction flow")."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from emvtap.capk import CapkStore
from emvtap.iso8583 import MessageFormatError
from terminal.config import TerminalConfig
from terminal.context import TransactionContext
from terminal.entry_point import (
    EntryPointError,
    build_candidate_list,
    candidates_from_aid_list,
    final_selection,
    pre_processing,
    select_ppse,
)
from terminal.kernel.common import KernelStop
from terminal.kernel.k7 import kernel_7
from terminal.online import ICC_DATA_TAGS, go_online
from terminal.outcome import Cvm, Outcome, TransactionResult
from terminal.transport.base import CardRemovedError, NoCardError, Transport, TransportError

__all__ = ["CVM_RESULTS", "KERNELS", "perform_transaction"]

Kernel = Callable[[TransactionContext, bytes, bytes, CapkStore], None]

#: Kernels by Kernel Identifier (Book B, 3.2.1.1).
KERNELS: dict[int, Kernel] = {7: kernel_7}

#: CVM Results 9F34 for each contactless CVM outcome (Book 4, A4; digest 5).
CVM_RESULTS: dict[Cvm, bytes] = {
    Cvm.NO_CVM: bytes.fromhex("1F0002"),
    Cvm.ONLINE_PIN: bytes.fromhex("020000"),
    Cvm.SIGNATURE: bytes.fromhex("1E0000"),
    Cvm.CDCVM: bytes.fromhex("010002"),
    Cvm.NA: bytes.fromhex("3F0000"),
}


def _parse_switch(switch: str) -> tuple[str, int]:
    host, _, port = switch.rpartition(":")
    return host or "127.0.0.1", int(port)


def perform_transaction(
    transport: Transport,
    config: TerminalConfig,
    amount: int,
    *,
    capks: CapkStore | None = None,
    switch: str | None = None,
    clear_pan: bool = False,
    card_timeout: float | None = 30.0,
    now: datetime | None = None,
    unpredictable_number: bytes | None = None,
) -> TransactionResult:
    """Run one tap to its final outcome. Never raises for anything the card or the switch
    does: every path ends in an :class:`Outcome` with a reason."""
    ctx = TransactionContext(transport, config, amount, clear_pan=clear_pan)
    if now:
        ctx.now = now
    if unpredictable_number:
        ctx.unpredictable_number = unpredictable_number
    res = ctx.result
    res.amount = amount
    res.currency = config.transaction_currency_code.hex()[-3:]
    capks = capks or CapkStore.default(production=config.production)
    start = time.perf_counter()
    try:
        indicators = pre_processing(config, amount)
        try:
            transport.connect(card_timeout)
        except NoCardError as exc:
            raise EntryPointError("END APPLICATION", f"no card presented: {exc}") from exc
        ppse = select_ppse(ctx)
        candidates = (build_candidate_list(config, ppse, indicators) if ppse is not None
                      else candidates_from_aid_list(ctx, indicators))
        if not candidates:
            raise EntryPointError("END APPLICATION",
                                  "no application on the card matches a supported AID/kernel")
        cand, fci = final_selection(ctx, candidates)
        ctx.learn(fci)
        res.aid = cand.adf_name.hex().upper()
        res.label = cand.label
        res.kernel_id = cand.kernel_id
        kernel = KERNELS.get(cand.kernel_id)
        if kernel is None:
            raise EntryPointError("END APPLICATION",
                                  f"kernel {cand.kernel_id} is not implemented")
        kernel(ctx, ctx.card.get(0x9F38, b""), cand.indicators.ttq, capks)
        raise KernelStop("END APPLICATION", "kernel returned without an outcome")
    except (EntryPointError, KernelStop) as stop:
        res.end(Outcome(stop.outcome), stop.reason)
    except CardRemovedError as exc:
        res.end(Outcome.TRY_AGAIN, f"card removed from the field: present card again ({exc})")
    except TransportError as exc:
        res.end(Outcome.TRY_AGAIN, f"communication error: present card again ({exc})")
    finally:
        res.tap_seconds = time.perf_counter() - start
    res.card_data = dict(ctx.card)
    if res.outcome == Outcome.ONLINE_REQUEST:
        _online(ctx, switch or config.switch)
    else:
        res.final_outcome = res.outcome
    return res


def icc_data_for_online(ctx: TransactionContext) -> dict[int, bytes]:
    """DE 55 values: the card's data, the terminal's, and - for what the card used in its
    cryptogram - exactly the values sent in the PDOL."""
    res = ctx.result
    values = ctx.terminal_data() | {0x9F34: CVM_RESULTS[res.cvm]} | ctx.card
    values |= ctx.pdol_values
    return {t: values[t] for t in ICC_DATA_TAGS if t in values}


def _online(ctx: TransactionContext, switch: str) -> None:
    """Book A, 5.5: send the online request; the issuer's answer decides the final outcome."""
    res = ctx.result
    if not switch or switch == "none":
        res.final_outcome = Outcome.DECLINED
        res.reason += "; no switch configured: unable to go online"
        return
    try:
        host, port = _parse_switch(switch)
        response = go_online(ctx, icc_data_for_online(ctx), host, port,
                             ctx.config.online_timeout_seconds)
    except (OSError, ValueError, MessageFormatError) as exc:
        res.final_outcome = Outcome.DECLINED
        res.online = res.online or {"switch": switch}
        res.online["error"] = f"unable to go online: {exc}"
        res.reason += f"; unable to go online ({exc})"
        return
    if response.approved:
        res.final_outcome = Outcome.APPROVED
        res.reason += f"; issuer approved ({response.response_code})"
    else:
        res.final_outcome = Outcome.DECLINED
        res.reason += f"; issuer declined ({response.response_code})"
