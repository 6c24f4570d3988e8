"""Entry Point (EMV Contactless Book B): pre-processing, combination selection over the PPSE,
final selection."""

from __future__ import annotations

from dataclasses import dataclass

from emvtap.apdu import SW, CommandApdu
from emvtap.bits import TTQ, set_bits
from emvtap.perso import PPSE_NAME
from emvtap.tlv import Tlv, TlvError, decode, find, find_all
from terminal.config import Combination, TerminalConfig
from terminal.context import TransactionContext

__all__ = [
    "Candidate",
    "EntryPointError",
    "PreProcessingIndicators",
    "build_candidate_list",
    "final_selection",
    "pre_processing",
    "select_ppse",
]


class EntryPointError(Exception):
    """Entry Point ends the transaction; ``outcome`` says how (Book B, 3.3 / 3.4)."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass(frozen=True)
class PreProcessingIndicators:
    """Book B, 3.1.1.2 Entry Point Pre-Processing Indicators, per combination."""

    combination: Combination
    contactless_application_not_allowed: bool
    status_check_requested: bool
    zero_amount: bool
    cvm_required_limit_exceeded: bool
    floor_limit_exceeded: bool
    ttq: bytes


def pre_processing(config: TerminalConfig, amount: int) -> list[PreProcessingIndicators]:
    """Book B, 3.1.1: compare the amount with each combination's limits and build its TTQ.

    - amount ≥ Reader Contactless Transaction Limit → contactless not allowed;
    - amount ≥ Reader CVM Required Limit → TTQ byte 2 b7 "CVM required";
    - amount > Reader Contactless Floor Limit, a zero amount, or a status check → TTQ byte 2
      b8 "online cryptogram required" (zero amount not allowed → contactless not allowed).
    Raises TRY ANOTHER INTERFACE when no combination is allowed (Book B, 3.1.1.13).
    """
    out: list[PreProcessingIndicators] = []
    for comb in config.combinations:
        not_allowed = comb.transaction_limit is not None and amount >= comb.transaction_limit
        zero = amount == 0
        if zero and not comb.zero_amount_allowed:
            not_allowed = True
        cvm = comb.cvm_required_limit is not None and amount >= comb.cvm_required_limit
        floor = comb.floor_limit is not None and amount > comb.floor_limit
        ttq = bytes([comb.ttq[0], comb.ttq[1] & 0x3F, *comb.ttq[2:]])  # b8, b7 transient
        if cvm:
            ttq = set_bits(ttq, TTQ.CVM_REQUIRED)
        if floor or zero or comb.status_check:
            ttq = set_bits(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED)
        out.append(PreProcessingIndicators(comb, not_allowed, comb.status_check, zero, cvm,
                                           floor, ttq))
    if all(i.contactless_application_not_allowed for i in out):
        raise EntryPointError(
            "TRY ANOTHER INTERFACE",
            f"amount {amount} is not allowed contactless for any application "
            "(reader contactless transaction limit or zero amount)",
        )
    return out


@dataclass(frozen=True)
class Candidate:
    """Book B, 3.3.2.5: an entry of the Candidate List."""

    adf_name: bytes
    kernel_id: int
    priority: int
    label: str
    indicators: PreProcessingIndicators
    order: int

    @property
    def sort_key(self) -> tuple[int, int]:
        # Priority 1 is highest; 0 (no priority) sorts after every numbered priority.
        return (self.priority or 16, self.order)


def select_ppse(ctx: TransactionContext) -> list[Tlv] | None:
    """Book B, 3.3.2.2: SELECT 2PAY.SYS.DDF01; ``None`` when the card has no PPSE."""
    resp = ctx.exchange(CommandApdu(0x00, 0xA4, 0x04, 0x00, PPSE_NAME, 0), "SELECT PPSE")
    if resp.sw != SW.OK:
        ctx.result.step(f"PPSE not available ({resp.sw:04X}): using the list of AIDs")
        return None
    try:
        fci = decode(resp.data)
    except TlvError as exc:
        raise EntryPointError("END APPLICATION", f"PPSE FCI is not BER-TLV: {exc}") from exc
    if find(fci, 0x6F) is None or find(fci, 0xBF0C) is None:
        ctx.result.step("PPSE FCI has no 6F/BF0C: using the list of AIDs")
        return None
    return fci


def build_candidate_list(
    config: TerminalConfig,
    ppse_fci: list[Tlv],
    indicators: list[PreProcessingIndicators],
) -> list[Candidate]:
    """Book B, 3.3.2.5: every 61 entry whose ADF name matches an allowed combination, with
    the kernel from 9F2A (or the AID's default kernel), ordered by priority 87."""
    candidates: list[Candidate] = []
    for order, entry in enumerate(find_all(ppse_fci, 0x61)):
        kids = entry.children or ()
        adf = next((k.value for k in kids if k.tag == 0x4F), None)
        if not adf or not 5 <= len(adf) <= 16:
            continue
        label_b = next((k.value for k in kids if k.tag == 0x50), b"")
        prio_b = next((k.value for k in kids if k.tag == 0x87), b"")
        kid_b = next((k.value for k in kids if k.tag == 0x9F2A), b"")
        requested_kernel = kid_b[0] if kid_b else config.kernel_for(adf)
        for ind in indicators:
            comb = ind.combination
            if ind.contactless_application_not_allowed or not comb.matches(adf):
                continue
            if requested_kernel is not None and requested_kernel != comb.kernel_id:
                continue
            candidates.append(Candidate(
                adf, comb.kernel_id, prio_b[0] & 0x0F if prio_b else 0,
                label_b.decode("ascii", "replace"), ind, order,
            ))
            break
    return sorted(candidates, key=lambda c: c.sort_key)


def candidates_from_aid_list(
    ctx: TransactionContext, indicators: list[PreProcessingIndicators]
) -> list[Candidate]:
    """Book B, 3.3.3 (and Book 1, 12.3.3 list of AIDs): without a PPSE, try each supported
    AID directly; candidates are the ones the card selects."""
    out: list[Candidate] = []
    for order, ind in enumerate(indicators):
        if ind.contactless_application_not_allowed:
            continue
        out.append(Candidate(ind.combination.aid, ind.combination.kernel_id, 0,
                             ind.combination.label, ind, order))
    return out


def final_selection(
    ctx: TransactionContext, candidates: list[Candidate]
) -> tuple[Candidate, list[Tlv]]:
    """Book B, 3.4: SELECT the highest-priority candidate; if the card refuses it (blocked,
    not found, malformed FCI), remove it and try the next."""
    reasons: list[str] = []
    for cand in candidates:
        resp = ctx.exchange(CommandApdu(0x00, 0xA4, 0x04, 0x00, cand.adf_name, 0),
                            f"SELECT {cand.adf_name.hex().upper()}")
        if resp.sw != SW.OK:
            reasons.append(f"{cand.adf_name.hex().upper()}: SELECT answered {resp.sw:04X}")
            continue
        try:
            fci = decode(resp.data)
        except TlvError as exc:
            reasons.append(f"{cand.adf_name.hex().upper()}: FCI is not BER-TLV ({exc})")
            continue
        df_name = find(fci, 0x84)
        if find(fci, 0x6F) is None or df_name is None:
            reasons.append(f"{cand.adf_name.hex().upper()}: FCI without 6F/84")
            continue
        return cand, fci
    raise EntryPointError(
        "END APPLICATION",
        "no application could be selected" + (f" ({'; '.join(reasons)})" if reasons else ""),
    )
