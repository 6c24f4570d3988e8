"""Issuer script commands with secure messaging (EMV 4.4 Book 3 6.5.1, 6.5.2, 6.5.3, 6.5.10,
10.10; Book 2 9.2 and 9.3; PUT DATA from the PBOC / CCD card specifications, JR/T 0025.5).

Every command carries a MAC over CLA INS P1 P2 Lc ‖ ATC ‖ AC ‖ data (Book 2 9.2.1: method 2
padding, MAC algorithm 3, the leftmost 4-8 bytes; Lc counts the MAC), where ATC and AC are those
of the last ARQC - in this tap (templates 71/72) or of the transaction a re-presented card went
online with (issuer update processing, C-3). The key is the script integrity session key of the
card's CVN (:mod:`emvtap.cryptogram_versions`), or the one a limited-use key batch carried
for that ATC.

Checks in order: P1/P2 (6A86), length (6700), a transaction to authenticate against (6985), a
key to verify with (6982), the MAC (6988, and "script failed" for the next CVR), then the
command's own data (6A80 / 6A88). Nothing changes unless everything passed; the change and the
script counter are one durable write.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.cryptogram import verify_script_mac
from emvtap.des import des3_decrypt
from hce_card.risk import PUT_DATA_PARAMETERS
from hce_card.session import Phase
from hce_card.wallet import TransactionKeys

if TYPE_CHECKING:
    from hce_card.application import PaymentApplication

log = logging.getLogger("emvtap.card")

__all__ = [
    "SCRIPT_COMMAND_NAMES",
    "SCRIPT_RULES",
    "ScriptError",
    "issuer_script_command",
    "parse_pin_block",
]

#: INS → (name, CLA bytes) - CLA 84 (proprietary, secure messaging); PUT DATA also 04.
SCRIPT_COMMAND_NAMES: dict[int, tuple[str, frozenset[int]]] = {
    0x1E: ("APPLICATION BLOCK", frozenset({0x84})),
    0x18: ("APPLICATION UNBLOCK", frozenset({0x84})),
    0x16: ("CARD BLOCK", frozenset({0x84})),
    0x24: ("PIN CHANGE/UNBLOCK", frozenset({0x84})),
    0xDA: ("PUT DATA", frozenset({0x04, 0x84})),
}

DEFAULT_MAC_LENGTH = 4


class ScriptError(Exception):
    """A script command whose MAC verified but whose content the card refuses."""

    def __init__(self, sw: int, reason: str) -> None:
        super().__init__(reason)
        self.sw = sw


@dataclass(frozen=True)
class Changes:
    app: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScriptContext:
    app: PaymentApplication
    cmd: CommandApdu
    payload: bytes  # command data without the MAC
    keys: TransactionKeys
    atc: bytes
    arqc: bytes


@dataclass(frozen=True)
class ScriptRule:
    p1p2_ok: Callable[[int, int], bool]
    data: str  # "none" | "some"
    action: Callable[[ScriptContext], Changes]


# --- the commands ---------------------------------------------------------------------------


def _application_block(ctx: ScriptContext) -> Changes:
    """Book 3 6.5.1: the application answers SELECT with 6283 and refuses GPO from now on."""
    return Changes(app={"application_blocked": True})


def _application_unblock(ctx: ScriptContext) -> Changes:
    """Book 3 6.5.2."""
    return Changes(app={"application_blocked": False})


def _card_block(ctx: ScriptContext) -> Changes:
    """Book 3 6.5.3: every application of the card is disabled; SELECT answers 6A81."""
    return Changes(card={"card_blocked": True})


def parse_pin_block(block: bytes) -> str:
    """An ISO 9564-1 format 2 PIN block: ``2`` ‖ PIN length (4-12) ‖ PIN digits ‖ F fill."""
    text = block.hex().upper()
    if len(block) != 8 or text[0] != "2":
        raise ScriptError(SW.WRONG_DATA, "not an ISO 9564 format 2 PIN block")
    n = int(text[1], 16)
    pin, fill = text[2 : 2 + n], text[2 + n :]
    if not 4 <= n <= 12 or not pin.isdigit() or fill != "F" * len(fill):
        raise ScriptError(SW.WRONG_DATA, "malformed PIN block")
    return pin


def _decipher(ctx: ScriptContext) -> bytes:
    """Book 2 9.3 (confidentiality): 3DES ECB under the script confidentiality session key of
    the plaintext length ‖ data ‖ method 2 padding (the VIS layout pyemv's ``VISA`` mode
    builds)."""
    key = ctx.keys.confidentiality_key(ctx.atc, ctx.arqc)
    if key is None:
        raise ScriptError(SW.SECURITY_STATUS_NOT_SATISFIED, "no confidentiality key")
    if len(ctx.payload) % 8:
        raise ScriptError(SW.WRONG_LENGTH, "enciphered data is not a multiple of 8 bytes")
    plain = des3_decrypt(key, ctx.payload)
    n = plain[0]
    padding = plain[1 + n :]
    if 1 + n > len(plain) or padding[:1] != b"\x80" or any(padding[1:]):
        raise ScriptError(SW.WRONG_DATA, "enciphered data has a bad length or padding")
    return plain[1 : 1 + n]


def _pin_change_unblock(ctx: ScriptContext) -> Changes:
    """Book 3 6.5.10: P2 00 resets the PIN try counter; P2 02 also sets a new PIN (its PIN
    block enciphered); P2 01 sets a new PIN given the current one (new ‖ current block)."""
    st = ctx.app.state
    changes: dict[str, Any] = {"pin_try_counter": st.pin_try_limit}
    if ctx.cmd.p2 == 0x00:
        return Changes(app=changes)
    plain = _decipher(ctx)
    expected = 16 if ctx.cmd.p2 == 0x01 else 8
    if len(plain) != expected:
        raise ScriptError(SW.WRONG_DATA, f"PIN data is {len(plain)} bytes, not {expected}")
    new = plain[:8]
    parse_pin_block(new)
    if ctx.cmd.p2 == 0x01:
        parse_pin_block(plain[8:])
        current = plain[8:].hex().upper().encode()
        if not st.pin_block or not hmac.compare_digest(current, st.pin_block.encode()):
            raise ScriptError(SW.WRONG_DATA, "current PIN does not match")
    return Changes(app=changes | {"pin_block": new.hex().upper()})


def _put_data(ctx: ScriptContext) -> Changes:
    """PUT DATA (P1 P2 = the tag): one of :data:`PUT_DATA_PARAMETERS`, of its length; the
    e-cash elements only on an application with e-cash."""
    tag = (ctx.cmd.p1 << 8) | ctx.cmd.p2
    parameter = PUT_DATA_PARAMETERS[tag]
    if len(ctx.payload) != parameter.length:
        raise ScriptError(SW.WRONG_LENGTH, f"{parameter.name} is {parameter.length} bytes")
    if parameter.numeric and not ctx.payload.hex().isdigit():
        raise ScriptError(SW.WRONG_DATA, f"{parameter.name} is not BCD")
    data = dict(ctx.app.state.data)
    data[f"{tag:X}"] = ctx.payload.hex().upper()
    return Changes(app={"data": data})


def _put_data_target(app: PaymentApplication, p1: int, p2: int) -> bool:
    tag = (p1 << 8) | p2
    if tag not in PUT_DATA_PARAMETERS:
        return False
    return not (tag in (0x9F79, 0x9F77, 0x9F78, 0x9F6D) and "ecash" not in app.app.extra)


#: INS → rule (Book 3 6.5: APPLICATION BLOCK / UNBLOCK and CARD BLOCK take P1 P2 = 00 00 and
#: no data but the MAC; PIN CHANGE/UNBLOCK P1 00, P2 00/01/02).
SCRIPT_RULES: dict[int, ScriptRule] = {
    0x1E: ScriptRule(lambda p1, p2: (p1, p2) == (0, 0), "none", _application_block),
    0x18: ScriptRule(lambda p1, p2: (p1, p2) == (0, 0), "none", _application_unblock),
    0x16: ScriptRule(lambda p1, p2: (p1, p2) == (0, 0), "none", _card_block),
    0x24: ScriptRule(lambda p1, p2: p1 == 0 and p2 in (0, 1, 2), "pin", _pin_change_unblock),
    0xDA: ScriptRule(lambda p1, p2: True, "some", _put_data),
}


def _fail(app: PaymentApplication, sw: int, reason: str) -> ResponseApdu:
    app.store.update_app(app.aid, script_failed=True)
    log.warning("issuer script command refused (%04X): %s", sw, reason)
    return ResponseApdu(b"", sw)


def issuer_script_command(app: PaymentApplication, cmd: CommandApdu) -> ResponseApdu:
    """One issuer script command (``86`` of template 71/72) - see the module docstring."""
    rule = SCRIPT_RULES[cmd.ins]
    name = SCRIPT_COMMAND_NAMES[cmd.ins][0]
    if not rule.p1p2_ok(cmd.p1, cmd.p2):
        return ResponseApdu(b"", SW.INCORRECT_P1P2)
    if cmd.ins == 0xDA and not _put_data_target(app, cmd.p1, cmd.p2):
        return ResponseApdu(b"", SW.REFERENCED_DATA_NOT_FOUND)
    mac_length = int(app.app.extra.get("script_mac_length", DEFAULT_MAC_LENGTH))
    payload, mac = cmd.data[:-mac_length], cmd.data[-mac_length:]
    wants_data = rule.data == "some" or (rule.data == "pin" and cmd.p2 != 0)
    if len(cmd.data) < mac_length or bool(payload) != wants_data:
        return ResponseApdu(b"", SW.WRONG_LENGTH)
    context = app.state.online
    if context is None or app.session.phase is Phase.INITIATED:
        return ResponseApdu(b"", SW.CONDITIONS_NOT_SATISFIED)
    atc, arqc = context.atc.to_bytes(2, "big"), bytes.fromhex(context.arqc)
    keys = app.keys_for(context.key)
    key = keys.integrity_key(atc, arqc)
    if key is None:
        return _fail(app, SW.SECURITY_STATUS_NOT_SATISFIED,
                     f"{name}: no script integrity key for ATC {context.atc:04X}")
    header = cmd.header + bytes([len(cmd.data)])
    if not verify_script_mac(key, header, atc, arqc, payload, mac):
        return _fail(app, SW.SM_DATA_INCORRECT, f"{name}: MAC does not verify")
    try:
        changes = rule.action(ScriptContext(app, cmd, payload, keys, atc, arqc))
    except ScriptError as exc:
        return _fail(app, exc.sw, f"{name}: {exc}")
    app_changes = changes.app | {"script_commands": app.state.script_commands + 1}
    app.store.update_card_and_app(app.aid, changes.card, app_changes)
    log.info("issuer script: %s done (ATC %04X)", name, context.atc)
    return ResponseApdu(b"", SW.OK)
