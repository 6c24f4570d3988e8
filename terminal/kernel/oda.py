"""Offline data authentication on the terminal side (EMV 4.4 Book 2, 5-6; Book 3, 10.3;
Contactless C-3/C-7 fDDA): choose the CA key, recover the issuer and ICC keys, check the
signature, and say precisely what failed."""

from __future__ import annotations

from emvtap import oda
from emvtap.capk import CapkStore
from emvtap.dol import AflError, parse_afl
from terminal.context import TransactionContext

__all__ = ["OdaFailure", "fast_dynamic_data_authentication", "recover_icc_key"]


class OdaFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _need(ctx: TransactionContext, tag: int, name: str) -> bytes:
    value = ctx.card.get(tag)
    if value is None:
        raise OdaFailure(f"{name} ({tag:X}) missing")
    return value


def recover_icc_key(ctx: TransactionContext, capks: CapkStore, aid: bytes) -> oda.IccPublicKey:
    """Book 2, 6.2-6.4: CA key by RID and 8F, issuer key from 90/92/9F32, ICC key from
    9F46/9F48/9F47 over the static data to be authenticated."""
    index = _need(ctx, 0x8F, "CA public key index")[0]
    rid = aid[:5]
    capk = capks.get(rid, index)
    if capk is None:
        raise OdaFailure(f"CA public key {rid.hex().upper()}/{index:02X} not known")
    if ctx.config.production and capk.test:
        raise OdaFailure(f"CA public key {rid.hex().upper()}/{index:02X} is a test key, "
                         "refused in production mode")
    pan = _need(ctx, 0x5A, "Application PAN")
    today = ctx.now.date()
    try:
        issuer_pk = oda.recover_issuer_public_key(
            capk, _need(ctx, 0x90, "issuer public key certificate"), ctx.card.get(0x92, b""),
            _need(ctx, 0x9F32, "issuer public key exponent"), pan, today, store=capks,
        )
        afl = parse_afl(ctx.card[0x94])
        static = oda.static_data_to_be_authenticated(
            afl, ctx.records, ctx.card[0x82], ctx.card.get(0x9F4A))
        return oda.recover_icc_public_key(
            issuer_pk, _need(ctx, 0x9F46, "ICC public key certificate"),
            ctx.card.get(0x9F48, b""), _need(ctx, 0x9F47, "ICC public key exponent"),
            static, pan, today,
        )
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc
    except AflError as exc:
        raise OdaFailure(f"AFL: {exc}") from exc


def fast_dynamic_data_authentication(ctx: TransactionContext, capks: CapkStore) -> bytes:
    """C-7 / C-3 fDDA: verify 9F4B over 9F37‖9F02‖5F2A‖9F69 (version 01; 9F37 alone for 00).

    Returns the ICC dynamic data; raises OdaFailure with the reason.
    """
    icc_pk = recover_icc_key(ctx, capks, ctx.card.get(0x84) or ctx.card.get(0x4F, b""))
    sdad = _need(ctx, 0x9F4B, "signed dynamic application data")
    card_auth = ctx.card.get(0x9F69)
    version = card_auth[0] if card_auth else 0
    values = ctx.terminal_data() | {k: v for k, v in ctx.card.items() if k == 0x9F69}
    try:
        terminal_data = oda.fdda_terminal_data(values, version=version)
        return oda.recover_dynamic_data(icc_pk, sdad, terminal_data)
    except oda.OdaError as exc:
        raise OdaFailure(str(exc)) from exc
