"""What the issuer sends back to the card: issuer authentication (ARPC in 91) and issuer
scripts (templates 71 and 72) with their results (EMV 4.4 Book 3, 10.9-10.10 and 6.5.4; Book 4,
A5 Issuer Script Results; docs/emv-notes.md, Issuer scripts).

Used by the full path while the card is still in the field, and by issuer update processing
when the card is presented again after a quick-path online approval (C-3/C-7).
"""

from __future__ import annotations

from emvtap.apdu import ApduError, CommandApdu
from emvtap.bits import TSI, TVR
from emvtap.tlv import Tlv
from terminal.context import TransactionContext

__all__ = [
    "SCRIPT_FAILED",
    "SCRIPT_NOT_PERFORMED",
    "SCRIPT_SUCCESSFUL",
    "external_authenticate",
    "issuer_script_processing",
    "script_command_succeeded",
]

#: Book 4, A5: Issuer Script Results byte 1, high nibble.
SCRIPT_NOT_PERFORMED, SCRIPT_FAILED, SCRIPT_SUCCESSFUL = 0x00, 0x10, 0x20


def script_command_succeeded(sw: int) -> bool:
    """Book 3, 10.10: a script command succeeded when SW1 is 90, 62 or 63 (warnings count as
    success); anything else ends that script."""
    return sw >> 8 in (0x90, 0x62, 0x63)


def external_authenticate(ctx: TransactionContext, issuer_authentication_data: bytes) -> bool:
    """Book 3, 6.5.4 / 10.9: EXTERNAL AUTHENTICATE with the Issuer Authentication Data (91).
    Sets TSI "issuer authentication was performed"; a status other than 9000 sets TVR
    "issuer authentication failed". Returns whether the card accepted it."""
    resp = ctx.exchange(CommandApdu(0x00, 0x82, 0x00, 0x00, issuer_authentication_data),
                        "EXTERNAL AUTHENTICATE")
    ctx.result.set_tsi(TSI.ISSUER_AUTHENTICATION_PERFORMED)
    if resp.sw != 0x9000:
        ctx.result.set_tvr(TVR.ISSUER_AUTHENTICATION_FAILED)
        ctx.step(f"issuer authentication failed: EXTERNAL AUTHENTICATE answered {resp.sw:04X}")
        return False
    ctx.step("issuer authentication succeeded (EXTERNAL AUTHENTICATE 9000)")
    return True


def _script_result(ctx: TransactionContext, template: Tlv, number: int) -> tuple[int, bytes]:
    """Run one script template; returns (result byte 1, script identifier)."""
    kids = template.children
    if not kids:
        ctx.step(f"issuer script {number}: template {template.tag:X} is empty or malformed")
        return SCRIPT_FAILED, bytes(4)
    script_id = next((k.value for k in kids if k.tag == 0x9F18), b"")
    script_id = script_id[:4].rjust(4, b"\x00") if script_id else bytes(4)
    commands = [k.value for k in kids if k.tag == 0x86]
    if not commands:
        ctx.step(f"issuer script {script_id.hex().upper()}: no 86 command in it")
        return SCRIPT_FAILED, script_id
    for seq, raw in enumerate(commands, 1):
        nibble = min(seq, 0x0F)
        try:
            cmd = CommandApdu.decode(raw)
        except ApduError as exc:
            ctx.step(f"issuer script {script_id.hex().upper()} command {seq} is not an APDU "
                     f"({exc})")
            return SCRIPT_FAILED | nibble, script_id
        resp = ctx.exchange(cmd, f"ISSUER SCRIPT {script_id.hex().upper()} #{seq}")
        if not script_command_succeeded(resp.sw):
            ctx.step(f"issuer script {script_id.hex().upper()} command {seq} answered "
                     f"{resp.sw:04X}: script ended")
            return SCRIPT_FAILED | nibble, script_id
    return SCRIPT_SUCCESSFUL, script_id


def issuer_script_processing(ctx: TransactionContext, templates: list[Tlv],
                             before_final_generate_ac: bool) -> None:
    """Book 3, 10.10: send the commands of each script (71 before the final GENERATE AC, 72
    after it) in order; a failing command ends its script. Appends 5 bytes per script to the
    Issuer Script Results (9F5B: result ‖ script identifier), sets TSI "script processing
    performed" and, on a failure, TVR byte 5 b6 (before) or b5 (after the final GENERATE AC).
    """
    if not templates:
        return
    res = ctx.result
    res.set_tsi(TSI.SCRIPT_PROCESSING_PERFORMED)
    for number, template in enumerate(templates, 1):
        result, script_id = _script_result(ctx, template, number)
        res.issuer_script_results += bytes([result]) + script_id
        if result & 0xF0 == SCRIPT_FAILED:
            res.set_tvr(TVR.SCRIPT_FAILED_BEFORE_FINAL_GENAC if before_final_generate_ac
                        else TVR.SCRIPT_FAILED_AFTER_FINAL_GENAC)
    ctx.kernel_data[0x9F5B] = res.issuer_script_results
