"""The online link: the authorization request (ISO 8583 0100 with ICC data in DE 55) built
from the tap, sent to the switch, and the response read back (EMV 4.4 Book 4, 12.2; the field
table is in ``emvtap.iso8583``)."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime
from typing import Any

from emvtap import iso8583
from emvtap.tlv import Tlv, TlvError, decode, find, find_all
from terminal.context import TransactionContext

__all__ = ["ICC_DATA_TAGS", "OnlineResponse", "authorization_request", "go_online"]

#: Data elements the terminal sends in DE 55 (Book 4, 12.2.2 and the issuer's CVN 01 needs).
ICC_DATA_TAGS: tuple[int, ...] = (
    0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A,
    0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F66, 0x9F6C, 0x5F34,
)

#: POS entry mode DE 22: 07 contactless chip, third digit 1 = terminal can accept PINs.
POS_ENTRY_CONTACTLESS_CHIP = "071"

_stan = itertools.count(int.from_bytes(os.urandom(2), "big") % 900000 + 1)


def _track2_text(track2: bytes) -> str:
    return track2.hex().upper().rstrip("F").replace("D", "=")


def authorization_request(ctx: TransactionContext, icc_values: dict[int, bytes],
                          pin_block: bytes | None = None) -> dict[str, Any]:
    """The 0100 for this tap (DE 2, 3, 4, 7, 11, 12, 13, 14, 22, 23, 35, 37, 41, 42, 49, 55)."""
    card = ctx.card
    pan = card[0x5A].hex().upper().rstrip("F") if 0x5A in card else \
        _track2_text(card[0x57]).split("=")[0]
    t2 = _track2_text(card[0x57]) if 0x57 in card else ""
    expiry = card[0x5F24].hex()[:4] if 0x5F24 in card else t2.split("=")[1][:4]
    now_utc = datetime.now(UTC)
    stan = f"{next(_stan) % 1000000:06d}"
    de55 = b"".join(Tlv.primitive(t, icc_values[t]).encode() for t in ICC_DATA_TAGS
                    if t in icc_values)
    fields: dict[str, Any] = {
        "t": "0100",
        "2": pan,
        "3": "000000",
        "4": f"{ctx.amount:012d}",
        "7": now_utc.strftime("%m%d%H%M%S"),
        "11": stan,
        "12": ctx.now.strftime("%H%M%S"),
        "13": ctx.now.strftime("%m%d"),
        "14": expiry,
        "22": POS_ENTRY_CONTACTLESS_CHIP,
        "23": f"{int(card.get(0x5F34, bytes(1)).hex()):03d}",
        "37": ctx.now.strftime("%y%j") + f"{int(stan):06d}"[-7:],
        "41": ctx.config.terminal_id[:8].ljust(8),
        "42": ctx.config.merchant_id[:15].ljust(15),
        "49": ctx.config.transaction_currency_code.hex()[-3:],
        "55": de55,
    }
    if t2:
        fields["35"] = t2
    if pin_block:
        fields["52"] = pin_block
    return fields


class OnlineResponse:
    """The 0110 as the kernel needs it: response code, ARPC (91) and issuer scripts (71/72)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.response_code: str = str(fields.get("39", ""))
        self.authorization_code: str = str(fields.get("38", "")).strip()
        icc: list[Tlv] = []
        raw = fields.get("55")
        if raw:
            try:
                icc = decode(bytes(raw))
            except TlvError:
                icc = []
        arpc = find(icc, 0x91)
        self.issuer_authentication_data: bytes | None = arpc.value if arpc else None
        self.scripts_71 = [t.encode() for t in find_all(icc, 0x71)]
        self.scripts_72 = [t.encode() for t in find_all(icc, 0x72)]

    @property
    def approved(self) -> bool:
        return self.response_code in ("00", "10", "11")


def go_online(ctx: TransactionContext, icc_values: dict[int, bytes], host: str, port: int,
              timeout: float) -> OnlineResponse:
    """Send the 0100 and wait for the 0110. Network errors propagate to the caller, who turns
    them into "unable to go online"."""
    request = authorization_request(ctx, icc_values)
    start = time.perf_counter()
    fields = iso8583.exchange(host, port, request, timeout=timeout)
    elapsed = time.perf_counter() - start
    resp = OnlineResponse(fields)
    ctx.result.online = {
        "switch": f"{host}:{port}",
        "request": iso8583.redacted(request),
        "response": iso8583.redacted(fields),
        "response_code": resp.response_code,
        "approved": resp.approved,
        "arpc": resp.issuer_authentication_data.hex().upper()
        if resp.issuer_authentication_data else None,
        "arpc_verified": None,
        "scripts": len(resp.scripts_71) + len(resp.scripts_72),
        "ms": round(elapsed * 1000, 3),
    }
    return resp
