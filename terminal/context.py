"""The state of one transaction on the terminal side: terminal data, card data, and the APDU
exchange with its trace (the transport/application split of EMV 4.4 Book 1, 9 vs Book 3)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

from emvtap.apdu import CommandApdu, ResponseApdu, status_meaning
from emvtap.masking import mask_tag_value, redact_hex
from emvtap.tags import pretty
from emvtap.tlv import Tlv, TlvError, decode
from terminal.config import TerminalConfig
from terminal.outcome import TransactionResult
from terminal.transport.base import Transport

__all__ = ["TransactionContext", "bcd_amount"]


def bcd_amount(amount: int) -> bytes:
    """n 12 amount (Book 3, Annex A: 9F02 is 6 bytes BCD, minor units)."""
    if not 0 <= amount < 10**12:
        raise ValueError(f"amount {amount} does not fit n12")
    return bytes.fromhex(f"{amount:012d}")


@dataclass
class TransactionContext:
    transport: Transport
    config: TerminalConfig
    amount: int
    transaction_type: int = 0x00
    now: datetime = field(default_factory=datetime.now)
    unpredictable_number: bytes = field(default_factory=lambda: secrets.token_bytes(4))
    clear_pan: bool = False
    result: TransactionResult = field(default_factory=TransactionResult)
    card: dict[int, bytes] = field(default_factory=dict)  # data elements read from the card
    records: dict[tuple[int, int], bytes] = field(default_factory=dict)
    pdol_values: dict[int, bytes] = field(default_factory=dict)  # as sent in GPO
    sensitive: list[str] = field(default_factory=list)  # PAN strings to mask in APDU hex

    def terminal_data(self) -> dict[int, bytes]:
        """Terminal-sourced data elements for the DOLs (Book 3, Annex A)."""
        c = self.config
        return {
            0x9F02: bcd_amount(self.amount),
            0x9F03: bcd_amount(0),
            0x9F1A: c.terminal_country_code,
            0x5F2A: c.transaction_currency_code,
            0x5F36: bytes([c.transaction_currency_exponent]),
            0x9A: bytes.fromhex(self.now.strftime("%y%m%d")),
            0x9F21: bytes.fromhex(self.now.strftime("%H%M%S")),
            0x9C: bytes([self.transaction_type]),
            0x9F37: self.unpredictable_number,
            0x95: self.result.tvr,
            0x9B: self.result.tsi,
            0x9F33: c.terminal_capabilities,
            0x9F40: c.additional_terminal_capabilities,
            0x9F35: c.terminal_type,
            0x9F1E: c.ifd_serial_number.encode()[:8].ljust(8, b" "),
            0x9F15: c.merchant_category_code,
            0x9F16: c.merchant_id.encode()[:15].ljust(15, b" "),
            0x9F1C: c.terminal_id.encode()[:8].ljust(8, b" "),
            0x9F4E: c.merchant_name_location.encode()[:20],
            0x9F09: c.application_version,
        }

    def exchange(self, cmd: CommandApdu, name: str) -> ResponseApdu:
        """Send one command, record it (masked) in the trace, return the response.

        Transport errors (card removed) propagate: the kernel turns them into TRY AGAIN.
        """
        raw = cmd.encode()
        start = time.perf_counter()
        try:
            answer = self.transport.transmit(raw)
        finally:
            elapsed = time.perf_counter() - start
        resp = ResponseApdu.decode(answer)
        entry = {
            "name": name,
            "c": self._hex(raw),
            "r": self._hex(resp.data),
            "sw": f"{resp.sw:04X}",
            "sw_meaning": status_meaning(resp.sw),
            "ms": round(elapsed * 1000, 3),
        }
        try:
            tlvs = decode(resp.data) if resp.data else []
            entry["decoded"] = pretty(tlvs, mask=None if self.clear_pan else mask_tag_value)
        except TlvError as exc:
            entry["decoded"] = f"(not BER-TLV: {exc})"
        self.result.apdus.append(entry)
        return resp

    def _hex(self, data: bytes) -> str:
        return data.hex().upper() if self.clear_pan else redact_hex(data, self.sensitive)

    def learn(self, tlvs: list[Tlv]) -> None:
        """Keep the primitive card data elements (first occurrence wins, Book 3, 10.2: a
        redundant data element is an error the kernel reports separately)."""
        stack = list(tlvs)
        while stack:
            t = stack.pop(0)
            if t.children is not None:
                stack[0:0] = list(t.children)
            else:
                self.card.setdefault(t.tag, t.value)
                if t.tag in (0x5A, 0x57):
                    self.sensitive.append(t.value.hex().upper().split("D")[0].rstrip("F"))
