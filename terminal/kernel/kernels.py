"""The kernels this reader runs, as data (EMV Contactless Book B, 3.2.1: Entry Point starts
the kernel named by the Kernel Identifier), and the one procedure that starts any of them:
GET PROCESSING OPTIONS, then the quick path when the card answered with a cryptogram, or the
EMV full path when it answered with AIP/AFL only and the kernel allows it.

=====  ==========================  ==========  =====================================  =======
kernel scheme / book                quick path  full path when GPO has no cryptogram   fDDA SDAD
=====  ==========================  ==========  =====================================  =======
2      Mastercard-style (C-2)      no          always (GPO returns AIP/AFL)           -
3      Visa qVSDC (C-3)            yes         no (C-3 has none: END APPLICATION)     95, 05
7      UnionPay QuickPass (C-7)    yes         if TTQ byte 1 b7 "full PBOC supported" 05
=====  ==========================  ==========  =====================================  =======

Kernel 2 here is the EMV full path over a Mastercard card, not an implementation of Book C-2
(no relay resistance, no Mastercard data storage, no torn-transaction log).
"""

from __future__ import annotations

from dataclasses import dataclass

from emvtap.bits import TTQ, TVR, Bit, is_set, set_bits
from emvtap.capk import CapkStore
from emvtap.oda import SDAD_FORMAT, VISA_FDDA_SDAD_FORMAT
from terminal.context import TransactionContext
from terminal.entry_point import PreProcessingIndicators
from terminal.kernel.common import KernelStop, initiate_application_processing
from terminal.kernel.emv import emv_full_path
from terminal.kernel.quick import quick_path

__all__ = ["KERNEL_PROFILES", "KernelProfile", "run_kernel"]


@dataclass(frozen=True)
class KernelProfile:
    """What distinguishes one kernel from another on this code."""

    kernel_id: int
    name: str
    quick_path_name: str | None  # None: no quick path
    full_path: bool
    full_path_ttq_bit: Bit | None  # the reader must set it to accept the full path
    fdda_formats: tuple[int, ...] = (SDAD_FORMAT,)
    cid_from_iad: bool = False  # the CID may be absent: the CVR in the IAD says it
    fdda_idn_is_atc: bool = False  # the fDDA ICC Dynamic Number is the ATC (C-3, C-7)


KERNEL_PROFILES: dict[int, KernelProfile] = {
    2: KernelProfile(2, "Mastercard (EMV full path)", None, True, None),
    3: KernelProfile(3, "Visa qVSDC", "qVSDC quick path", False, None,
                     (VISA_FDDA_SDAD_FORMAT, SDAD_FORMAT), cid_from_iad=True,
                     fdda_idn_is_atc=True),
    7: KernelProfile(7, "UnionPay QuickPass", "qPBOC quick path", True,
                     TTQ.FULL_PBOC_SUPPORTED, fdda_idn_is_atc=True),
}


def run_kernel(ctx: TransactionContext, profile: KernelProfile,
               indicators: PreProcessingIndicators, capks: CapkStore) -> None:
    """Start the kernel after final selection (Book B, 3.5): GPO with the PDOL from the FCI
    and the combination's TTQ, then the path the card's answer calls for. Ends with
    KernelStop."""
    ttq = indicators.ttq
    if ctx.merchant_forced_online:
        # Book 4, 6.3.5 / TVR byte 4 b4; on the quick path the card must give an ARQC.
        ctx.result.set_tvr(TVR.MERCHANT_FORCED_ONLINE)
        ctx.step("merchant forced the transaction online")
        ttq = set_bits(ttq, TTQ.ONLINE_CRYPTOGRAM_REQUIRED)
    initiate_application_processing(ctx, ctx.card.get(0x9F38, b""), ttq)
    if 0x9F26 in ctx.card or (profile.quick_path_name and not profile.full_path):
        if profile.quick_path_name is None:
            raise KernelStop("END APPLICATION", f"kernel {profile.kernel_id}: the card answered "
                                                "GPO with a cryptogram; this kernel has no "
                                                "quick path")
        if 0x9F26 not in ctx.card and not profile.full_path:
            ctx.result.path = profile.quick_path_name
            raise KernelStop("END APPLICATION", f"{profile.name}: the card answered GPO without "
                                                "a cryptogram (no full path in this kernel)")
        quick_path(ctx, profile, ttq, capks)
    elif profile.full_path_ttq_bit is not None and not is_set(ttq, profile.full_path_ttq_bit):
        raise KernelStop("END APPLICATION", f"{profile.name}: the card asks for the full path "
                                            f"but the reader's TTQ does not offer it "
                                            f"({profile.full_path_ttq_bit.name})")
    else:
        emv_full_path(ctx, capks, indicators)
    raise KernelStop("END APPLICATION", "kernel returned without an outcome")
