"""The online link: the authorisation request (ISO 8583 0100 with ICC data in DE 55) built
from the tap, sent to the switch, and the response read back (EMV 4.4 Book 4, 12.2; Book 3,
10.8-10.9; the field table is in ``emvtap.iso8583``).

The kernel reaches the acquirer through an :data:`~terminal.context.Authoriser` - by default
:func:`switch_authoriser` over TCP; tests and replays pass their own.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime
from typing import Any

from emvtap import iso8583
from emvtap.endpoints import parse_host_port
from emvtap.iso8583 import MessageFormatError, TokenData, encode_token_data
from emvtap.tlv import Tlv, TlvError, decode, find, find_all
from terminal.context import Authoriser, TransactionContext
from terminal.outcome import Cvm

__all__ = [
    "APPROVAL_CODES",
    "ICC_DATA_TAGS",
    "OnlineResponse",
    "OnlineUnavailable",
    "SwitchAuthoriser",
    "build_authorisation_request",
    "icc_data_for_online",
    "request_online_authorisation",
    "switch_authoriser",
]

#: Data elements the terminal sends in DE 55 (Book 4, 12.2.2 and the issuer's CVN 01 needs).
ICC_DATA_TAGS: tuple[int, ...] = (
    0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A,
    0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F66, 0x9F6C, 0x5F34, 0x9F6E,
)

#: DE 39 response codes that approve (ISO 8583:1987 Annex; 10 partial, 11 VIP approval).
APPROVAL_CODES = frozenset({"00", "10", "11"})

#: POS entry mode DE 22: 07 contactless chip, third digit 1 = terminal can accept PINs.
POS_ENTRY_CONTACTLESS_CHIP = "071"

_stan = itertools.count(int.from_bytes(os.urandom(2), "big") % 900000 + 1)


class OnlineUnavailable(Exception):
    """The terminal could not get an answer from the host ("unable to go online")."""


def _track2_text(track2: bytes) -> str:
    return track2.hex().upper().rstrip("F").replace("D", "=")


def icc_data_for_online(ctx: TransactionContext) -> dict[int, bytes]:
    """DE 55 values: the card's data and the terminal's - and, for what the card put under
    its cryptogram, exactly the values it was sent (PDOL in GPO, CDOL1 in GENERATE AC 1)."""
    values = ctx.terminal_data() | ctx.card | ctx.pdol_values | ctx.cdol1_values
    return {t: values[t] for t in ICC_DATA_TAGS if t in values}


def build_authorisation_request(ctx: TransactionContext, icc_values: dict[int, bytes],
                                pin_block: bytes | None = None) -> dict[str, Any]:
    """Build the 0100 for this tap (DE 2, 3, 4, 7, 11, 12, 13, 14, 22, 23, 35, 37, 41, 42,
    48, 49, [52], 55); :func:`request_online_authorisation` sends it."""
    card = ctx.card
    pan = ctx.pan()
    t2 = _track2_text(card[0x57]) if 0x57 in card else ""
    if 0x5F24 in card:
        expiry = card[0x5F24].hex()[:4]
    elif "=" in t2:
        expiry = t2.split("=")[1][:4]
    else:
        expiry = "0000"
    now_utc = datetime.now(UTC)
    stan = f"{next(_stan) % 1000000:06d}"
    de55 = b"".join(Tlv.primitive(t, icc_values[t]).encode() for t in ICC_DATA_TAGS
                    if t in icc_values)
    psn = card.get(0x5F34, bytes(1)).hex()
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
        "23": f"{int(psn):03d}" if psn.isdigit() else "000",
        "37": ctx.now.strftime("%y%j") + f"{int(stan):07d}",
        "41": ctx.config.terminal_id[:8].ljust(8),
        "42": ctx.config.merchant_id[:15].ljust(15),
        "48": encode_token_data(TokenData(channel="P",
                                          device_verified=ctx.result.cvm == Cvm.CDCVM)),
        "49": ctx.config.transaction_currency_code.hex()[-3:],
        "55": de55,
    }
    if t2:
        fields["35"] = t2
    if pin_block:
        fields["52"] = pin_block
    return fields


class OnlineResponse:
    """The 0110 as the kernel needs it: response code, ARC, ARPC (91) and issuer scripts
    (71/72, each kept whole and in order: a template may hold several 86 commands)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.response_code: str = str(fields.get("39", ""))
        self.authorization_code: str = str(fields.get("38", "")).strip()
        self.icc_error: str | None = None
        icc: list[Tlv] = []
        raw = fields.get("55")
        if raw:
            try:
                icc = decode(bytes(raw))
            except (TlvError, TypeError, ValueError) as exc:
                self.icc_error = f"DE 55 of the response is not BER-TLV: {exc}"
        arpc = find(icc, 0x91)
        self.issuer_authentication_data: bytes | None = arpc.value if arpc else None
        self.scripts_71: list[Tlv] = find_all(icc, 0x71)
        self.scripts_72: list[Tlv] = find_all(icc, 0x72)

    @property
    def approved(self) -> bool:
        return self.response_code in APPROVAL_CODES

    @property
    def authorisation_response_code(self) -> bytes:
        """8A: the two characters of DE 39 (Book 4, A: an 2)."""
        code = (self.response_code or "  ")[:2].ljust(2)
        return code.encode("ascii", "replace")


class SwitchAuthoriser:
    """The default acquirer link: one ISO 8583 exchange with ``HOST:PORT`` per request
    (2-byte length framing, :func:`emvtap.iso8583.exchange`)."""

    def __init__(self, switch: str, timeout: float) -> None:
        self.host, self.port = parse_host_port(switch, default_host="127.0.0.1")
        self.timeout = timeout

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def __call__(self, fields: dict[str, Any]) -> dict[str, Any]:
        return iso8583.exchange(self.host, self.port, fields, timeout=self.timeout)


def switch_authoriser(switch: str, timeout: float) -> Authoriser:
    """The TCP link to the switch at ``HOST:PORT`` (ValueError for a bad port)."""
    return SwitchAuthoriser(switch, timeout)


def request_online_authorisation(ctx: TransactionContext) -> OnlineResponse:
    """Book 3, 10.8 / Book A, 5.5: build and send the 0100, read the 0110; everything the host or
    the network can do wrong becomes :class:`OnlineUnavailable` with the reason."""
    res = ctx.result
    if ctx.authorise is None:
        raise OnlineUnavailable("no switch configured")
    request = build_authorisation_request(ctx, icc_data_for_online(ctx), ctx.online_pin_block)
    res.online = {"switch": getattr(ctx.authorise, "target", "in-process host"),
                  "request": iso8583.redacted(request)}
    start = time.perf_counter()
    try:
        fields = ctx.authorise(request)
    except (OSError, ValueError, MessageFormatError) as exc:
        res.online["error"] = f"unable to go online: {exc}"
        raise OnlineUnavailable(str(exc) or type(exc).__name__) from exc
    elapsed = time.perf_counter() - start
    if not isinstance(fields, dict) or str(fields.get("t", "0110")) != "0110":
        res.online["error"] = "the host answered something other than a 0110"
        raise OnlineUnavailable("the host answered something other than a 0110")
    resp = OnlineResponse(fields)
    res.online |= {
        "response": iso8583.redacted(fields),
        "response_code": resp.response_code,
        "authorization_code": resp.authorization_code,
        "approved": resp.approved,
        "arpc": resp.issuer_authentication_data.hex().upper()
        if resp.issuer_authentication_data else None,
        "arpc_verified": None,
        "scripts": len(resp.scripts_71) + len(resp.scripts_72),
        "ms": round(elapsed * 1000, 3),
    }
    if resp.icc_error:
        res.online["icc_error"] = resp.icc_error
    return resp
