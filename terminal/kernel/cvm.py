"""Cardholder verification with the CVM List (EMV 4.4 Book 3, 10.5 and Annex C3; Book 4,
6.3.4 and A4 CVM Results), as tables: the CVM codes the reader knows, what it needs from the
Terminal Capabilities (9F33 byte 2) for each, and the CVM conditions.

This reader has no offline PIN (it is a contactless reader: VERIFY is not part of any path it
runs), so the offline PIN codes are recognised but never supported: a rule that needs one
fails with TVR "PIN entry required and PIN pad not present or not working".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emvtap.bits import AIP, TSI, TVR, is_set
from emvtap.pinblock import encipher_pin_block
from terminal.context import TransactionContext
from terminal.outcome import Cvm

__all__ = [
    "CVM_CONDITIONS",
    "CVM_METHODS",
    "CvmMethod",
    "cardholder_verification",
    "online_pin_block",
]

NO_CVM_PERFORMED = bytes.fromhex("3F0000")
RESULT_UNKNOWN, RESULT_FAILED, RESULT_SUCCESSFUL = 0x00, 0x01, 0x02


@dataclass(frozen=True)
class CvmMethod:
    """One CVM code (Book 3, Annex C3, CVM Code b6-b1)."""

    name: str
    capability: int  # 9F33 byte 2 bits the terminal needs (Book 4, A2)
    cvm: Cvm  # what the POS has to do (Book A Outcome Parameter Set, CVM)
    needs_pin: bool
    result: int  # 9F34 byte 3 when performed: 00 unknown (online PIN, signature), 02 success
    supported_here: bool = True  # False: recognised but this reader cannot perform it


#: Book 3, Annex C3: the CVM codes this reader recognises.
CVM_METHODS: dict[int, CvmMethod] = {
    0x00: CvmMethod("fail CVM processing", 0x00, Cvm.NA, False, RESULT_FAILED),
    0x01: CvmMethod("plaintext PIN verified by the ICC", 0x80, Cvm.NA, True, RESULT_FAILED,
                    supported_here=False),
    0x02: CvmMethod("enciphered PIN verified online", 0x40, Cvm.ONLINE_PIN, True,
                    RESULT_UNKNOWN),
    0x03: CvmMethod("plaintext PIN verified by the ICC and signature", 0xA0, Cvm.NA, True,
                    RESULT_FAILED, supported_here=False),
    0x04: CvmMethod("enciphered PIN verified by the ICC", 0x10, Cvm.NA, True, RESULT_FAILED,
                    supported_here=False),
    0x05: CvmMethod("enciphered PIN verified by the ICC and signature", 0x30, Cvm.NA, True,
                    RESULT_FAILED, supported_here=False),
    0x1E: CvmMethod("signature (paper)", 0x20, Cvm.SIGNATURE, False, RESULT_UNKNOWN),
    0x1F: CvmMethod("no CVM required", 0x08, Cvm.NO_CVM, False, RESULT_SUCCESSFUL),
}

#: Transaction types (9C) the conditions look at (Book 3, Annex C3; ISO 8583 processing code).
CASH, CASHBACK = 0x01, 0x09


@dataclass(frozen=True)
class _RuleContext:
    ctx: TransactionContext
    method: CvmMethod | None
    x: int
    y: int

    @property
    def unattended(self) -> bool:
        """Book 4, A1: Terminal Type second digit 4-6 is unattended."""
        return self.ctx.config.terminal_type[0] & 0x0F in (4, 5, 6)

    @property
    def in_application_currency(self) -> bool:
        app_currency = self.ctx.card.get(0x9F42)
        return app_currency == self.ctx.config.transaction_currency_code

    def terminal_supports(self) -> bool:
        m = self.method
        caps = self.ctx.terminal_capabilities or self.ctx.config.terminal_capabilities
        return m is not None and m.supported_here and (caps[1] & m.capability) == m.capability


#: Book 3, Annex C3: CVM Condition Codes → (meaning, is the condition satisfied).
CVM_CONDITIONS: dict[int, tuple[str, Callable[[_RuleContext], bool]]] = {
    0x00: ("always", lambda r: True),
    0x01: ("if unattended cash", lambda r: r.ctx.transaction_type == CASH and r.unattended),
    0x02: ("if not unattended cash and not manual cash and not purchase with cashback",
           lambda r: r.ctx.transaction_type not in (CASH, CASHBACK)),
    0x03: ("if terminal supports the CVM", lambda r: r.terminal_supports()),
    0x04: ("if manual cash", lambda r: r.ctx.transaction_type == CASH and not r.unattended),
    0x05: ("if purchase with cashback", lambda r: r.ctx.transaction_type == CASHBACK),
    0x06: ("if in the application currency and under X",
           lambda r: r.in_application_currency and r.ctx.amount < r.x),
    0x07: ("if in the application currency and over X",
           lambda r: r.in_application_currency and r.ctx.amount > r.x),
    0x08: ("if in the application currency and under Y",
           lambda r: r.in_application_currency and r.ctx.amount < r.y),
    0x09: ("if in the application currency and over Y",
           lambda r: r.in_application_currency and r.ctx.amount > r.y),
}


def online_pin_block(ctx: TransactionContext, pin: str) -> bytes:
    """ISO 9564-1 format 0 PIN block (PIN field ⊕ PAN field), enciphered with the terminal's
    PIN encryption key (3DES) for DE 52."""
    return encipher_pin_block(ctx.config.pin_encryption_key, pin, ctx.pan())


def _perform(ctx: TransactionContext, method: CvmMethod) -> bool:
    """Perform one supported CVM; False when it failed (Book 3, 10.5.2 online PIN: a bypassed
    PIN entry fails the CVM)."""
    if method.cvm != Cvm.ONLINE_PIN:
        return True
    if not ctx.config.pin_pad:
        ctx.result.set_tvr(TVR.PIN_PAD_NOT_PRESENT)
        ctx.step("online PIN required but the PIN pad is not present")
        return False
    pin = ctx.pin_entry() if ctx.pin_entry else None
    if not pin:
        ctx.result.set_tvr(TVR.PIN_NOT_ENTERED)
        ctx.step("online PIN required but no PIN was entered (bypassed)")
        return False
    try:
        ctx.online_pin_block = online_pin_block(ctx, pin)
    except ValueError as exc:
        ctx.result.set_tvr(TVR.PIN_NOT_ENTERED)
        ctx.step(f"online PIN not usable: {exc}")
        return False
    ctx.result.set_tvr(TVR.ONLINE_PIN_ENTERED)
    return True


def cardholder_verification(ctx: TransactionContext) -> Cvm:
    """Book 3, 10.5: walk the CVM List 8E. For each rule whose condition holds, perform the
    CVM; when it fails, go on only if the rule says "apply the next rule if this one fails"
    (b7). Sets CVM Results 9F34, TVR byte 3 and TSI "cardholder verification performed".

    Without AIP "cardholder verification supported" nothing is done (9F34 = 3F0000). A
    missing or empty CVM List sets TVR "ICC data missing" and performs no CVM.
    """
    res = ctx.result
    if not is_set(ctx.card.get(0x82, b""), AIP.CARDHOLDER_VERIFICATION_SUPPORTED):
        res.cvm_results = NO_CVM_PERFORMED
        ctx.step("AIP: cardholder verification not supported; no CVM performed")
        return Cvm.NO_CVM
    cvm_list = ctx.card.get(0x8E)
    if cvm_list is None or len(cvm_list) < 10 or len(cvm_list) % 2:
        res.set_tvr(TVR.ICC_DATA_MISSING)
        res.cvm_results = NO_CVM_PERFORMED
        ctx.step("CVM List (8E) missing, empty or malformed: ICC data missing")
        return Cvm.NO_CVM
    res.set_tsi(TSI.CARDHOLDER_VERIFICATION_PERFORMED)
    x, y = int.from_bytes(cvm_list[0:4], "big"), int.from_bytes(cvm_list[4:8], "big")
    rules = [cvm_list[i:i + 2] for i in range(8, len(cvm_list), 2)]
    last: bytes | None = None
    for rule in rules:
        code, apply_next, condition = rule[0] & 0x3F, bool(rule[0] & 0x40), rule[1]
        method = CVM_METHODS.get(code)
        cond = CVM_CONDITIONS.get(condition)
        if cond is None or not cond[1](_RuleContext(ctx, method, x, y)):
            continue
        last = rule
        if method is None:
            res.set_tvr(TVR.UNRECOGNISED_CVM)
            ctx.step(f"CVM rule {rule.hex().upper()}: unrecognised CVM code {code:02X}")
        elif code == 0x00:
            ctx.step(f"CVM rule {rule.hex().upper()}: fail CVM processing")
        elif not _RuleContext(ctx, method, x, y).terminal_supports():
            if method.needs_pin:
                res.set_tvr(TVR.PIN_PAD_NOT_PRESENT)
            ctx.step(f"CVM rule {rule.hex().upper()}: {method.name} not supported by this "
                     "reader")
        elif _perform(ctx, method):
            res.cvm_results = bytes([rule[0], rule[1], method.result])
            ctx.step(f"CVM rule {rule.hex().upper()} ({cond[0]}): {method.name}")
            return method.cvm
        if not apply_next:
            break
    res.set_tvr(TVR.CARDHOLDER_VERIFICATION_FAILED)
    if last is None:
        res.cvm_results = bytes([0x3F, 0x00, RESULT_FAILED])
        ctx.step("no CVM rule applies: cardholder verification was not successful")
    else:
        res.cvm_results = bytes([last[0], last[1], RESULT_FAILED])
        ctx.step("cardholder verification was not successful")
    return Cvm.NA
