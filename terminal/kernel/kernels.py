"""The kernels this reader runs, as data (EMV Contactless Book B, 3.2.1: Entry Point starts
the kernel named by the Kernel Identifier). :func:`terminal.kernel.activation.activate_kernel`
starts any of them: GET PROCESSING OPTIONS, then the quick path when the card answered with a
cryptogram, or the EMV full path when it answered with AIP/AFL only and the kernel allows it.

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

from emvtap.bits import TTQ, Bit
from emvtap.oda import SDAD_FORMAT, VISA_FDDA_SDAD_FORMAT

__all__ = ["KERNEL_PROFILES", "KernelProfile"]


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
