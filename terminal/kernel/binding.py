"""Unsigned data bound to its signed counterpart: where the card gives a value twice - once
under a signature or a certificate, once in the clear - the kernel checks that both say the
same before anything rests on the clear one.

==============================  ========================================  =================
unsigned                        signed                                    rule
==============================  ========================================  =================
PAN in track 2 (57)             Application PAN 5A, itself checked        :func:`pan_binding`
                                against the ICC certificate PAN (Book 2,
                                6.4 step 8)
ATC 9F36 of the GPO answer      ICC Dynamic Number in the fDDA signed     :func:`fdda_atc_binding`
                                dynamic data (C-3 / C-7 fDDA: the IDN is
                                the ATC)
CTQ 9F6C                        CTQ in the Card Authentication Related    :func:`fdda_ctq_binding`
                                Data 9F69 (fDDA version 01), covered by
                                the signature
ATC from GET DATA (velocity     ATC of the GENERATE AC answer, covered    :func:`cda_atc_binding`
checking, Book 3 10.6.3)        by the CDA transaction data hash (Book 2,
                                6.6.2)
==============================  ========================================  =================

A PAN mismatch ends the application (no PAN can be reported or sent online); the others are
a failed offline data authentication, with the TVR bit of the method.
"""

from __future__ import annotations

from terminal.context import TransactionContext
from terminal.kernel.common import KernelAbort
from terminal.kernel.oda import OdaFailure

__all__ = ["cda_atc_binding", "fdda_atc_binding", "fdda_ctq_binding", "pan_binding",
           "track2_pan"]

#: fDDA version 01: 9F69 = version (1) ‖ card unpredictable number (4) ‖ CTQ (2).
CARD_AUTH_DATA_CTQ = slice(5, 7)


def track2_pan(track2: bytes) -> str:
    """The PAN digits of Track 2 Equivalent Data (Book 3, Annex A: PAN ‖ D ‖ ...)."""
    return track2.hex().upper().split("D", 1)[0]


def pan_binding(ctx: TransactionContext) -> None:
    """EMV 4.4 Book 2, 6.4 (step 8: the PAN in the ICC certificate is the Application PAN 5A)
    and Book 3, Annex A (57 carries the same PAN): the PAN of Track 2 Equivalent Data must be
    the Application PAN, else the terminal would report - and send online - a PAN that no
    certificate vouches for. Ends the application on a mismatch."""
    track2, pan = ctx.card.get(0x57), ctx.card.get(0x5A)
    if track2 is None or pan is None:
        return
    if track2_pan(track2) != pan.hex().upper().rstrip("F"):
        raise KernelAbort("the PAN in track 2 equivalent data (57) is not the application PAN "
                          "(5A)")


def fdda_atc_binding(ctx: TransactionContext, icc_dynamic_data: bytes) -> None:
    """C-3 / C-7 fDDA: the ICC Dynamic Number of the signed dynamic data is the ATC, so the
    9F36 of the GPO answer must equal it (Book 2, 6.5.1 Table 18: ICC Dynamic Data = IDN
    length ‖ IDN). Raises :class:`OdaFailure` otherwise."""
    atc = ctx.card.get(0x9F36, b"")
    n = icc_dynamic_data[0] if icc_dynamic_data else 0
    idn = icc_dynamic_data[1:1 + n]
    if idn != atc:
        raise OdaFailure(f"the ATC (9F36 {atc.hex().upper()}) is not the ICC dynamic number "
                         f"the signature covers ({idn.hex().upper()})")


def fdda_ctq_binding(ctx: TransactionContext) -> None:
    """C-3 / C-7 fDDA version 01: the Card Authentication Related Data 9F69, which the
    signature covers, carries the CTQ the card decided with; the CTQ 9F6C of the GPO answer
    must be the same - and an absent 9F6C, which the kernel reads as 0000, is no exception
    (CTQ bits flipped or dropped in transit - CVM, online PIN, "go online" - are the published
    contactless limit bypass). Raises :class:`OdaFailure` otherwise."""
    auth = ctx.card.get(0x9F69)
    if auth is None or not auth or auth[0] != 0x01 or len(auth) < 7:
        return
    ctq = ctx.card.get(0x9F6C, b"\x00\x00")  # absent: the kernel acts on 0000
    signed = auth[CARD_AUTH_DATA_CTQ]
    if signed != ctq:
        raise OdaFailure(f"the CTQ (9F6C {ctq.hex().upper()}) is not the one in the signed card "
                         f"authentication data 9F69 ({signed.hex().upper()})")


def cda_atc_binding(ctx: TransactionContext, signed_atc: bytes) -> None:
    """Book 2, 6.6.2: the ATC of a GENERATE AC answer is covered by the CDA transaction data
    hash; an ATC the card gave before in the clear (GET DATA for velocity checking, Book 3,
    10.6.3, or the GPO answer) must be the same, or the velocity check rested on a value the
    card did not sign. Raises :class:`OdaFailure` otherwise."""
    earlier = ctx.received.get(0x9F36)
    if earlier is None:
        return
    where, atc = earlier
    if atc != signed_atc:
        raise OdaFailure(f"the ATC in the {where} ({atc.hex().upper()}) is not the signed ATC "
                         f"of GENERATE AC ({signed_atc.hex().upper()})")
