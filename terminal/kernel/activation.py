"""Kernel activation (EMV Contactless Book B, 3.4; Book A, 5 "the transaction flow"): the
kernel Entry Point chose starts with GET PROCESSING OPTIONS and takes the path the card's
answer calls for - the quick path (:mod:`terminal.kernel.quick_path`) when the card answered
with a cryptogram, the EMV full path (:mod:`terminal.kernel.full_path`) when it answered with
AIP/AFL only and the kernel allows it (:data:`terminal.kernel.kernels.KERNEL_PROFILES`).
"""

from __future__ import annotations

from emvtap.bits import TTQ, TVR, is_set, set_bits
from emvtap.capk import CapkStore
from terminal.context import TransactionContext
from terminal.entry_point import PreProcessingIndicators
from terminal.kernel.common import initiate_application_processing
from terminal.kernel.full_path import full_path
from terminal.kernel.kernels import KernelProfile
from terminal.kernel.quick_path import quick_path
from terminal.outcome import KernelOutcome, Outcome

__all__ = ["activate_kernel"]


def activate_kernel(ctx: TransactionContext, profile: KernelProfile,
                    indicators: PreProcessingIndicators, capks: CapkStore) -> KernelOutcome:
    """Start the kernel after final selection (Book B, 3.4): GPO with the PDOL from the FCI
    and the combination's TTQ, then the path the card's answer calls for. Returns the
    kernel's outcome; raises :class:`~terminal.kernel.common.KernelAbort` when the card's
    data cannot be used."""
    ttq = indicators.ttq
    if ctx.merchant_forced_online:
        # Book 4, 6.3.5 / TVR byte 4 b4; on the quick path the card must give an ARQC.
        ctx.result.set_tvr(TVR.MERCHANT_FORCED_ONLINE)
        ctx.step("merchant forced the transaction online")
        ttq = set_bits(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED)
    initiate_application_processing(ctx, ctx.card.get(0x9F38, b""), ttq)
    if 0x9F26 in ctx.card or (profile.quick_path_name and not profile.full_path):
        if profile.quick_path_name is None:
            return KernelOutcome(Outcome.END_APPLICATION,
                                 f"kernel {profile.kernel_id}: the card answered GPO with a "
                                 "cryptogram; this kernel has no quick path")
        if 0x9F26 not in ctx.card and not profile.full_path:
            ctx.result.path = profile.quick_path_name
            return KernelOutcome(Outcome.END_APPLICATION,
                                 f"{profile.name}: the card answered GPO without a cryptogram "
                                 "(no full path in this kernel)")
        return quick_path(ctx, profile, ttq, capks)
    if profile.full_path_ttq_bit is not None and not is_set(ttq, profile.full_path_ttq_bit):
        return KernelOutcome(Outcome.END_APPLICATION,
                             f"{profile.name}: the card asks for the full path but the "
                             f"reader's TTQ does not offer it ({profile.full_path_ttq_bit.name})")
    return full_path(ctx, capks, indicators)
