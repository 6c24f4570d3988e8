"""The card data both paths rest on, checked once it is all read (EMV 4.4 Book 3, 10.2):
the mandatory data objects are present - else "ICC data missing" and the application ends -
and the PAN the terminal will report and send online is the one a certificate vouches for
(:func:`terminal.kernel.binding.pan_binding`)."""

from __future__ import annotations

from collections.abc import Mapping

from emvtap.bits import TVR
from emvtap.masking import mask_pan
from terminal.context import TransactionContext
from terminal.kernel.binding import pan_binding
from terminal.kernel.common import KernelAbort

__all__ = ["check_application_data"]


def check_application_data(ctx: TransactionContext, mandatory: Mapping[int, str]) -> None:
    """Book 3, 10.2: every tag of ``mandatory`` (tag → name) is in the card data, else TVR
    "ICC data missing" and :class:`KernelAbort`; then the PAN binding. Records the PAN in the
    result, masked unless the tap shows PANs in clear."""
    missing = [f"{name} ({tag:X})" for tag, name in mandatory.items() if tag not in ctx.card]
    if missing:
        ctx.result.set_tvr(TVR.ICC_DATA_MISSING)
        raise KernelAbort("ICC data missing: " + ", ".join(missing))
    pan_binding(ctx)
    pan = ctx.pan()
    ctx.result.pan_masked = pan if ctx.clear_pan else mask_pan(pan)
