"""Entry Point (EMV Contactless Book B): pre-processing, protocol activation, combination
selection over the PPSE (or, without one, over the list of AIDs), final combination selection.

One function per Book B procedure. Each one either returns what the next one needs or raises
:class:`EntryPointError` with the Outcome and a reason a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from emvtap.apdu import SW, CommandApdu
from emvtap.bits import TTQ, is_set, set_bits
from emvtap.perso import PPSE_NAME
from emvtap.tlv import Tlv, TlvError, decode, find, find_all
from terminal.config import Combination, TerminalConfig
from terminal.context import TransactionContext
from terminal.outcome import Outcome
from terminal.transport.base import Transport

__all__ = [
    "PSE_NAME",
    "Candidate",
    "EntryPointError",
    "PreProcessingIndicators",
    "build_candidate_list",
    "candidates_from_aid_list",
    "candidates_from_pse",
    "final_selection",
    "pre_processing",
    "protocol_activation",
    "requested_kernel_id",
    "select_ppse",
]

#: The contact Payment System Environment (Book 1, 12.2.2), read only when configured.
PSE_NAME = b"1PAY.SYS.DDF01"


class EntryPointError(Exception):
    """Entry Point ends the transaction; ``outcome`` says how (Book B, 3.3 / 3.4)."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass(frozen=True)
class PreProcessingIndicators:
    """Book B, 3.1.1 / Table 3-3: Entry Point Pre-Processing Indicators, per combination."""

    combination: Combination
    contactless_application_not_allowed: bool
    status_check_requested: bool
    zero_amount: bool
    cvm_required_limit_exceeded: bool
    floor_limit_exceeded: bool
    ttq: bytes
    why_not_allowed: str = ""


def pre_processing(config: TerminalConfig, amount: int) -> list[PreProcessingIndicators]:
    """Book B, 3.1.1: per combination, compare the amount with its limits and build its TTQ.

    - 3.1.1.2 status check: the option is on and the amount is one unit of the currency;
    - 3.1.1.3 zero amount: not allowed → contactless not allowed, else Zero Amount;
    - 3.1.1.4 amount ≥ Reader Contactless Transaction Limit → contactless not allowed;
    - 3.1.1.5/6 amount > Reader Contactless Floor Limit (else Terminal Floor Limit 9F1B)
      → floor limit exceeded;
    - 3.1.1.7 amount ≥ Reader CVM Required Limit → CVM required limit exceeded;
    - 3.1.1.8 TTQ byte 2 b8/b7 reset, then b8 "online cryptogram required" for floor limit,
      status check or zero amount (an offline-only reader cannot do a zero amount: not
      allowed), b7 "CVM required" for the CVM limit.

    Raises TRY ANOTHER INTERFACE when no combination is allowed (Book B, 3.1.1.9).
    """
    out: list[PreProcessingIndicators] = []
    unit = 10 ** config.transaction_currency_exponent
    for comb in config.combinations:
        why = ""
        status_check = comb.status_check and amount == unit
        zero = amount == 0
        if zero and not comb.zero_amount_allowed:
            why = "zero amount not allowed"
        if comb.transaction_limit is not None and amount >= comb.transaction_limit:
            why = f"amount ≥ reader contactless transaction limit {comb.transaction_limit}"
        floor = comb.floor_limit if comb.floor_limit is not None else config.terminal_floor_limit
        floor_exceeded = floor is not None and amount > floor
        cvm = comb.cvm_required_limit is not None and amount >= comb.cvm_required_limit
        ttq = bytes([comb.ttq[0], comb.ttq[1] & 0x3F, *comb.ttq[2:]])  # b8, b7 transient
        if floor_exceeded or status_check:
            ttq = set_bits(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED)
        if zero and comb.zero_amount_allowed:
            if is_set(ttq, TTQ.OFFLINE_ONLY_READER):
                why = "zero amount on an offline-only reader"
            else:
                ttq = set_bits(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED)
        if cvm:
            ttq = set_bits(ttq, TTQ.CVM_REQUIRED)
        out.append(PreProcessingIndicators(comb, bool(why), status_check, zero, cvm,
                                           floor_exceeded, ttq, why))
    if all(i.contactless_application_not_allowed for i in out):
        reasons = sorted({i.why_not_allowed for i in out})
        raise EntryPointError(
            Outcome.TRY_ANOTHER_INTERFACE,
            f"amount {amount} is not allowed contactless for any application ("
            + "; ".join(reasons) + ")",
        )
    return out


def protocol_activation(transport: Transport, card_timeout: float | None) -> None:
    """Book B, 3.2: the reader waits up to ``card_timeout`` seconds for one card in the field
    and activates it (ISO/IEC 14443 activation is the transport's); NoCardError when none
    comes."""
    transport.connect(card_timeout)


@dataclass(frozen=True)
class Candidate:
    """Book B, 3.3.2.5: an entry of the Candidate List."""

    adf_name: bytes
    kernel_id: int
    priority: int
    label: str
    indicators: PreProcessingIndicators
    order: int
    extended_selection: bytes = b""

    @property
    def sort_key(self) -> tuple[int, int]:
        # Priority 1 is highest; 0 (no priority) sorts after every numbered priority.
        return (self.priority or 16, self.order)

    @property
    def select_name(self) -> bytes:
        """Book B, 3.3.2.5 step E / 3.4.1: ADF name ‖ Extended Selection when the combination
        supports it."""
        return self.adf_name + self.extended_selection


def _select_directory(
    ctx: TransactionContext, name: bytes, label: str, fallback: str = ""
) -> list[Tlv] | None:
    """SELECT a payment system directory (PPSE or PSE) by name and decode its FCI; ``None``,
    with the reason in the steps, when the card refuses it or the FCI is not BER-TLV."""
    resp = ctx.exchange(CommandApdu(0x00, 0xA4, 0x04, 0x00, name, 0), f"SELECT {label}")
    if resp.sw != SW.OK:
        ctx.step(f"{label} not available ({resp.sw:04X}){fallback}")
        return None
    try:
        return decode(resp.data)
    except TlvError as exc:
        ctx.step(f"{label} FCI is not BER-TLV ({exc}){fallback}")
        return None


def select_ppse(ctx: TransactionContext) -> list[Tlv] | None:
    """Book B, 3.3.2.2: SELECT 2PAY.SYS.DDF01; ``None`` when the card has no usable PPSE
    (Book B, 3.3.2.3: a card without one is selected from the list of AIDs)."""
    fci = _select_directory(ctx, PPSE_NAME, "PPSE", ": using the list of AIDs")
    if fci is None:
        return None
    if find(fci, 0x6F) is None or find(fci, 0xBF0C) is None:
        ctx.step("PPSE FCI has no 6F/BF0C: using the list of AIDs")
        return None
    return fci


def requested_kernel_id(kernel_identifier: bytes) -> int | None:
    """Book B, 3.3.2.5 step C: the Requested Kernel ID from 9F2A. Byte 1 b8-b7 00/01 is an
    EMVCo (international) kernel whose ID is byte 1 b6-b1; 10/11 a domestic kernel (3 bytes,
    kept whole so it matches no EMVCo kernel). Empty or 00: the AID's default kernel."""
    if not kernel_identifier or kernel_identifier[0] == 0:
        return None
    if kernel_identifier[0] >> 6 in (0, 1):
        return kernel_identifier[0] & 0x3F
    return int.from_bytes(kernel_identifier[:3], "big") | 0x1000000


def build_candidate_list(
    config: TerminalConfig,
    ppse_fci: list[Tlv],
    indicators: list[PreProcessingIndicators],
) -> list[Candidate]:
    """Book B, 3.3.2.5: every 61 entry whose ADF name matches an allowed combination, with
    the kernel from 9F2A (or the AID's default kernel), ordered by priority 87 (Book B,
    3.3.3: highest priority first, the card's order among equals)."""
    return _candidates(config, find_all(ppse_fci, 0x61), indicators)


def _candidates(config: TerminalConfig, entries: list[Tlv],
                indicators: list[PreProcessingIndicators]) -> list[Candidate]:
    candidates: list[Candidate] = []
    for order, entry in enumerate(entries):
        kids = entry.children or ()
        adf = next((k.value for k in kids if k.tag == 0x4F), None)
        if not adf or not 5 <= len(adf) <= 16:
            continue
        label_b = next((k.value for k in kids if k.tag == 0x50), b"")
        prio_b = next((k.value for k in kids if k.tag == 0x87), b"")
        kid_b = next((k.value for k in kids if k.tag == 0x9F2A), b"")
        ext_b = next((k.value for k in kids if k.tag == 0x9F29), b"")
        requested = requested_kernel_id(kid_b)
        if requested is None:
            requested = config.kernel_for(adf)
        for ind in indicators:
            comb = ind.combination
            if ind.contactless_application_not_allowed or not comb.matches(adf):
                continue
            if requested is not None and requested != comb.kernel_id:
                continue
            candidates.append(Candidate(
                adf, comb.kernel_id, prio_b[0] & 0x0F if prio_b else 0,
                label_b.decode("ascii", "replace"), ind, order,
                ext_b if comb.extended_selection else b"",
            ))
            break
    return sorted(candidates, key=lambda c: c.sort_key)


def candidates_from_aid_list(
    ctx: TransactionContext, indicators: list[PreProcessingIndicators]
) -> list[Candidate]:
    """Book B, 3.3.2.3 (and Book 1, 12.3.3 list of AIDs): without a PPSE, every allowed
    combination's AID is a candidate, in configuration order; final selection SELECTs them
    one after the other and keeps the first the card answers."""
    out: list[Candidate] = []
    for order, ind in enumerate(indicators):
        if ind.contactless_application_not_allowed:
            continue
        if any(c.adf_name == ind.combination.aid for c in out):
            continue
        out.append(Candidate(ind.combination.aid, ind.combination.kernel_id, 0,
                             ind.combination.label, ind, order))
    if out:
        ctx.step("candidates from the list of AIDs: "
                 + ", ".join(c.adf_name.hex().upper() for c in out))
    return out


def candidates_from_pse(
    ctx: TransactionContext, indicators: list[PreProcessingIndicators]
) -> list[Candidate] | None:
    """Book 1, 12.3.2: the contact Payment System Environment, for readers configured to try
    it (``use_pse``) when the card has no PPSE: SELECT 1PAY.SYS.DDF01, then READ RECORD 1, 2,
    ... of the directory SFI (88) until 6A83; the 61 entries become candidates exactly as
    PPSE entries would. ``None`` when the card has no usable PSE."""
    fci = _select_directory(ctx, PSE_NAME, "PSE")
    if fci is None:
        return None
    sfi_obj = find(fci, 0x88)
    if sfi_obj is None or len(sfi_obj.value) != 1 or not 1 <= sfi_obj.value[0] <= 30:
        ctx.step("PSE FCI has no usable directory SFI (88)")
        return None
    sfi = sfi_obj.value[0]
    entries: list[Tlv] = []
    for record in range(1, 256):
        rr = ctx.exchange(CommandApdu(0x00, 0xB2, record, (sfi << 3) | 0x04, b"", 0),
                          f"READ RECORD PSE SFI {sfi} record {record}")
        if rr.sw == SW.RECORD_NOT_FOUND:
            break
        if rr.sw != SW.OK:
            ctx.step(f"PSE directory record {record} answered {rr.sw:04X}")
            return None
        try:
            objs = decode(rr.data)
        except TlvError as exc:
            ctx.step(f"PSE directory record {record} is not BER-TLV ({exc})")
            return None
        entries += find_all(objs, 0x61)
    cfg = ctx.config
    return _candidates(cfg, entries, indicators)


def final_selection(
    ctx: TransactionContext, candidates: list[Candidate]
) -> tuple[Candidate, list[Tlv]]:
    """Book B, 3.4: SELECT the highest-priority candidate; if the card refuses it (blocked,
    not found, malformed FCI), remove it and try the next (Book B, 3.3.3.5 / 3.4.1.3)."""
    reasons: list[str] = []
    for cand in candidates:
        name = cand.select_name
        resp = ctx.exchange(CommandApdu(0x00, 0xA4, 0x04, 0x00, name, 0),
                            f"SELECT {name.hex().upper()}")
        if resp.sw != SW.OK:
            reasons.append(f"{name.hex().upper()}: SELECT answered {resp.sw:04X}")
            ctx.step(reasons[-1] + "; next candidate")
            continue
        try:
            fci = decode(resp.data)
        except TlvError as exc:
            reasons.append(f"{name.hex().upper()}: FCI is not BER-TLV ({exc})")
            ctx.step(reasons[-1] + "; next candidate")
            continue
        df_name = find(fci, 0x84)
        if find(fci, 0x6F) is None or df_name is None:
            reasons.append(f"{name.hex().upper()}: FCI without 6F/84")
            ctx.step(reasons[-1] + "; next candidate")
            continue
        return cand, fci
    raise EntryPointError(
        Outcome.END_APPLICATION,
        "no application could be selected" + (f" ({'; '.join(reasons)})" if reasons else ""),
    )
