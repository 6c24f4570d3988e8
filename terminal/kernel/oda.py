"""Offline data authentication on the terminal side (EMV 4.4 Book 2, 5-6; Book 3, 10.3;
Contactless C-3/C-7 fDDA): choose the method, choose the CA key, recover the issuer and ICC
keys, check the signature, and say precisely what failed.

The cryptography is :mod:`emvtap.oda`; this module adds what belongs to the terminal: the CAPK
list with its revocation list and production mode, the card data that feeds each check, the
INTERNAL AUTHENTICATE command, and a reason text for every failure.
"""

from __future__ import annotations

from emvtap import oda
from emvtap.apdu import SW, CommandApdu
from emvtap.bits import AIP, is_set
from emvtap.capk import CapkError, CapkStore, CaPublicKey
from emvtap.dol import AflError, parse_afl, parse_dol
from emvtap.tlv import TlvError, decode, find
from terminal.context import TransactionContext
from terminal.kernel.common import build_dol

__all__ = [
    "ODA_METHODS",
    "OdaFailure",
    "certification_authority_public_key",
    "combined_dda_ac_verification",
    "dynamic_data_authentication",
    "fast_dynamic_data_authentication",
    "recover_icc_key",
    "recover_issuer_key",
    "select_oda_method",
    "static_data_authentication",
]


class OdaFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Book 3, 10.3: methods in the order the terminal prefers them, with the AIP bit (card) and
#: the Terminal Capabilities byte 3 bit (terminal, Book 4 A2) that must both be set.
ODA_METHODS: tuple[tuple[str, object, int], ...] = (
    ("CDA", AIP.CDA_SUPPORTED, 0x08),
    ("DDA", AIP.DDA_SUPPORTED, 0x40),
    ("SDA", AIP.SDA_SUPPORTED, 0x80),
)


def select_oda_method(aip: bytes, terminal_capabilities: bytes) -> str | None:
    """Book 3, 10.3: CDA if card and terminal both support it, else DDA, else SDA, else none
    (the caller sets TVR "offline data authentication was not performed")."""
    for name, bit, term_mask in ODA_METHODS:
        if is_set(aip, bit) and len(terminal_capabilities) == 3 \
                and terminal_capabilities[2] & term_mask:
            return name
    return None


def _need(ctx: TransactionContext, tag: int, name: str) -> bytes:
    value = ctx.card.get(tag)
    if value is None:
        raise OdaFailure(f"{name} ({tag:X}) missing")
    return value


def _rid(ctx: TransactionContext) -> bytes:
    aid = ctx.card.get(0x84) or ctx.card.get(0x4F, b"")
    if len(aid) < 5:
        raise OdaFailure("no AID to take the RID from")
    return aid[:5]


def certification_authority_public_key(ctx: TransactionContext, capks: CapkStore
                                       ) -> CaPublicKey:
    """Book 2, 5.2 / 6.2: the CA key by RID and 8F. An index the terminal does not hold, and
    a test key while the terminal runs in production mode, both fail ODA."""
    index_b = _need(ctx, 0x8F, "CA public key index")
    if len(index_b) != 1:
        raise OdaFailure(f"CA public key index (8F) is {len(index_b)} bytes, not 1")
    try:
        return capks.require(_rid(ctx), index_b[0])
    except CapkError as exc:
        raise OdaFailure(str(exc)) from exc


def recover_issuer_key(ctx: TransactionContext, capks: CapkStore) -> oda.IssuerPublicKey:
    """Book 2, 5.3 / 6.3: the issuer public key from 90/92/9F32 under the CA key, with the CA
    revocation list and the certificate expiry."""
    capk = certification_authority_public_key(ctx, capks)
    pan = _need(ctx, 0x5A, "Application PAN")
    try:
        return oda.recover_issuer_public_key(
            capk, _need(ctx, 0x90, "issuer public key certificate"), ctx.card.get(0x92, b""),
            _need(ctx, 0x9F32, "issuer public key exponent"), pan, ctx.now.date(), store=capks)
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc


def _static_data(ctx: TransactionContext) -> bytes:
    """Book 3, 10.3: the records the AFL marks for ODA ‖ the values named by 9F4A."""
    try:
        afl = parse_afl(ctx.card[0x94])
        return oda.static_data_to_be_authenticated(afl, ctx.records, ctx.card[0x82],
                                                   ctx.card.get(0x9F4A))
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc
    except (AflError, KeyError) as exc:
        raise OdaFailure(f"static data: {exc}") from exc


def recover_icc_key(ctx: TransactionContext, capks: CapkStore) -> oda.IccPublicKey:
    """Book 2, 6.2-6.4: CA key by RID and 8F, issuer key from 90/92/9F32, ICC key from
    9F46/9F48/9F47 over the static data to be authenticated."""
    issuer_pk = recover_issuer_key(ctx, capks)
    try:
        return oda.recover_icc_public_key(
            issuer_pk, _need(ctx, 0x9F46, "ICC public key certificate"),
            ctx.card.get(0x9F48, b""), _need(ctx, 0x9F47, "ICC public key exponent"),
            _static_data(ctx), _need(ctx, 0x5A, "Application PAN"), ctx.now.date())
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc


def static_data_authentication(ctx: TransactionContext, capks: CapkStore) -> bytes:
    """Book 2, 5.4 / Book 3, 10.3: verify the Signed Static Application Data 93 under the
    issuer key; returns the Data Authentication Code (9F45)."""
    issuer_pk = recover_issuer_key(ctx, capks)
    ssad = _need(ctx, 0x93, "signed static application data")
    try:
        return oda.recover_ssad(issuer_pk, ssad, _static_data(ctx))
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc


def dynamic_data_authentication(ctx: TransactionContext, capks: CapkStore) -> bytes:
    """Book 2, 6.5 / Book 3, 6.5.9: INTERNAL AUTHENTICATE with the DDOL data (the card's 9F49,
    else the terminal's default DDOL, which must name the unpredictable number) and verify
    the Signed Dynamic Application Data. Returns the ICC Dynamic Number (9F4C)."""
    icc_pk = recover_icc_key(ctx, capks)
    ddol = ctx.card.get(0x9F49)
    if not ddol:
        ddol = ctx.config.default_ddol
        try:
            if all(e.tag != 0x9F37 for e in parse_dol(ddol)):
                raise OdaFailure("the default DDOL has no unpredictable number (9F37)")
        except TlvError as exc:
            raise OdaFailure(f"the default DDOL is malformed ({exc})") from exc
        ctx.step("card has no DDOL: using the terminal's default DDOL")
    data, _ = build_dol(ddol, ctx.dol_values(), "DDOL")
    resp = ctx.exchange(CommandApdu(0x00, 0x88, 0x00, 0x00, data, 0), "INTERNAL AUTHENTICATE")
    if resp.sw != SW.OK:
        raise OdaFailure(f"INTERNAL AUTHENTICATE answered {resp.sw:04X}")
    try:
        objs = decode(resp.data)
    except TlvError as exc:
        raise OdaFailure(f"INTERNAL AUTHENTICATE response is not BER-TLV ({exc})") from exc
    if len(objs) == 1 and objs[0].tag == 0x80:
        sdad = objs[0].value
    else:
        obj = find(objs, 0x9F4B)
        if obj is None:
            raise OdaFailure("INTERNAL AUTHENTICATE response has no signed dynamic data")
        sdad = obj.value
    try:
        dynamic = oda.recover_dynamic_data(icc_pk, sdad, data, (oda.SDAD_FORMAT,))
        return oda.parse_idn(dynamic)
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc


def fast_dynamic_data_authentication(ctx: TransactionContext, capks: CapkStore,
                                     formats: tuple[int, ...] = (oda.SDAD_FORMAT,
                                                                 oda.VISA_FDDA_SDAD_FORMAT)
                                     ) -> bytes:
    """C-7 / C-3 fDDA: verify 9F4B over 9F37‖9F02‖5F2A‖9F69 (version 01; 9F37 alone for 00),
    with the values exactly as sent in the PDOL. Returns the ICC dynamic data."""
    icc_pk = recover_icc_key(ctx, capks)
    sdad = _need(ctx, 0x9F4B, "signed dynamic application data")
    card_auth = ctx.card.get(0x9F69)
    version = card_auth[0] if card_auth else 0
    values = ctx.terminal_data() | ctx.pdol_values
    if card_auth is not None:
        values[0x9F69] = card_auth
    try:
        terminal_data = oda.fdda_terminal_data(values, version=version)
        return oda.recover_dynamic_data(icc_pk, sdad, terminal_data, formats, oda.FDDA_STEP)
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc


def combined_dda_ac_verification(ctx: TransactionContext, icc_pk: oda.IccPublicKey,
                                 response: bytes, cdol1_data: bytes,
                                 cdol2_data: bytes | None = None) -> oda.CdaResult:
    """Book 2, 6.6.2: the CDA signature on a GENERATE AC response - recovered over the
    unpredictable number, CID inside equal to 9F27, transaction data hash over PDOL data ‖
    CDOL1 data (‖ CDOL2 data) ‖ the response objects but 9F4B."""
    try:
        return oda.verify_cda(icc_pk, response, ctx.unpredictable_number, ctx.pdol_data,
                              cdol1_data, cdol2_data)
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc
