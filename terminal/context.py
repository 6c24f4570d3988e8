"""The state of one transaction on the terminal side: terminal data, card data, and the APDU
exchange with its trace (the transport/application split of EMV 4.4 Book 1, 9 vs Book 3)."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emvtap.apdu import CommandApdu, ResponseApdu, status_meaning
from emvtap.masking import mask_tag_value, redact_hex, redact_tlv_bytes
from emvtap.tags import pretty
from emvtap.tlv import Tlv, TlvError, decode, find_all
from terminal.config import Combination, TerminalConfig
from terminal.outcome import TransactionResult
from terminal.redaction import CardholderData
from terminal.transport.base import Transport

__all__ = ["Authoriser", "PinEntry", "TransactionContext", "bcd_amount"]

#: The acquirer link as the kernel sees it: an ISO 8583 0100 (field dict) in, the 0110 out.
#: Raises ``OSError``/``TimeoutError``/``ValueError`` when the host cannot be reached.
Authoriser = Callable[[dict[str, Any]], dict[str, Any]]
#: The PIN pad: returns the PIN the cardholder entered, or ``None`` when it was bypassed.
PinEntry = Callable[[], str | None]


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
    #: data elements read from the card (PAN, track 2: kept out of reprs, as below)
    card: dict[int, bytes] = field(default_factory=dict, repr=False)
    records: dict[tuple[int, int], bytes] = field(default_factory=dict, repr=False)
    pdol_values: dict[int, bytes] = field(default_factory=dict)  # as sent in GPO
    pdol_data: bytes = b""  # the PDOL data as sent (CDA hashes it)
    cdol1_values: dict[int, bytes] = field(default_factory=dict)  # as sent in GENERATE AC 1
    cdol1_data: bytes = b""
    #: PAN strings to mask in APDU hex
    sensitive: list[str] = field(default_factory=list, repr=False)
    #: PANs and track 2 seen anywhere in the card's answers, parsed or not (the record masks
    #: them: terminal/redaction.py)
    cardholder: CardholderData = field(default_factory=CardholderData, repr=False)
    #: Every primitive data object the card gave (FCI, GPO, records, GET DATA): tag → the
    #: answer it came in and its value, for the redundancy rule (Book 3, 10.2).
    received: dict[int, tuple[str, bytes]] = field(default_factory=dict, repr=False)
    combination: Combination | None = None
    #: Data objects the terminal produces during the transaction (9F45, 9F4C, 8A, 91, 98 ...).
    kernel_data: dict[int, bytes] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.SystemRandom)
    pin_entry: PinEntry | None = None
    authorise: Authoriser | None = None
    merchant_forced_online: bool = False
    #: 9F33 for this transaction: below the CVM required limit the CVM byte is "no CVM" only.
    terminal_capabilities: bytes | None = None
    online_pin_block: bytes | None = field(default=None, repr=False)
    #: ``time.perf_counter()`` when the card was activated (the tap is timed from here).
    card_presented_at: float | None = None

    @property
    def application_version(self) -> bytes:
        """9F09 for the selected combination (Book 3, 10.4.1)."""
        if self.combination is not None and self.combination.application_version:
            return self.combination.application_version
        return self.config.application_version

    @property
    def floor_limit(self) -> int | None:
        """Reader Contactless Floor Limit of the combination, else Terminal Floor Limit 9F1B
        (Book B, 3.1.1.5-6)."""
        if self.combination is not None and self.combination.floor_limit is not None:
            return self.combination.floor_limit
        return self.config.terminal_floor_limit

    def terminal_data(self) -> dict[int, bytes]:
        """Terminal-sourced data elements for the DOLs (Book 3, Annex A)."""
        c = self.config
        data = {
            0x9F02: bcd_amount(self.amount),
            0x9F03: bcd_amount(0),
            0x81: self.amount.to_bytes(4, "big") if self.amount < 2**32 else b"\xFF" * 4,
            0x9F1A: c.terminal_country_code,
            0x5F2A: c.transaction_currency_code,
            0x5F36: bytes([c.transaction_currency_exponent]),
            0x9A: bytes.fromhex(self.now.strftime("%y%m%d")),
            0x9F21: bytes.fromhex(self.now.strftime("%H%M%S")),
            0x9C: bytes([self.transaction_type]),
            0x9F37: self.unpredictable_number,
            0x95: self.result.tvr,
            0x9B: self.result.tsi,
            0x9F33: self.terminal_capabilities or c.terminal_capabilities,
            0x9F40: c.additional_terminal_capabilities,
            0x9F35: c.terminal_type,
            0x9F1E: c.ifd_serial_number.encode()[:8].ljust(8, b" "),
            0x9F15: c.merchant_category_code,
            0x9F16: c.merchant_id.encode()[:15].ljust(15, b" "),
            0x9F1C: c.terminal_id.encode()[:8].ljust(8, b" "),
            0x9F4E: c.merchant_name_location.encode()[:20],
            0x9F09: self.application_version,
            0x9F34: self.result.cvm_results,
        }
        if self.floor_limit is not None:
            data[0x9F1B] = min(self.floor_limit, 2**32 - 1).to_bytes(4, "big")
        return data | self.kernel_data

    def dol_values(self) -> dict[int, bytes]:
        """Everything a card DOL (CDOL1/2, DDOL, TDOL) may ask for: terminal data first, then
        the card's own data elements (Book 3, 5.4: the DOL names data from either side)."""
        return self.card | self.terminal_data()

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
        if not self.clear_pan:  # before any hex of this answer is written, parsed or not
            self.cardholder.note(resp.data)
        try:
            tlvs = decode(resp.data) if resp.data else []
            decoded = pretty(tlvs, mask=None if self.clear_pan else mask_tag_value)
            self._note_sensitive(tlvs)  # before any hex of this response is written
        except TlvError as exc:
            decoded = f"(not BER-TLV: {exc})"
        entry: dict[str, Any] = {
            "name": name,
            "c": self._hex(raw),
            "r": self._hex(resp.data if self.clear_pan else redact_tlv_bytes(resp.data)),
            "sw": f"{resp.sw:04X}",
            "sw_meaning": status_meaning(resp.sw),
            "ms": round(elapsed * 1000, 3),
            "decoded": decoded,
        }
        self.result.apdus.append(entry)
        return resp

    def _hex(self, data: bytes) -> str:
        if self.clear_pan:
            return data.hex().upper()
        return self.cardholder.mask(redact_hex(data, self.sensitive))

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
        self._note_sensitive(tlvs)

    def _note_sensitive(self, tlvs: list[Tlv]) -> None:
        """Remember the PANs (5A, 57) seen, so that no later hex of the trace shows them."""
        for t in find_all(tlvs, 0x5A) + find_all(tlvs, 0x57):
            digits = t.value.hex().upper().split("D")[0].rstrip("F")
            if digits and digits not in self.sensitive:
                self.sensitive.append(digits)
            if t.tag == 0x57:
                self.cardholder.add_track2(t.value.hex())
            else:
                self.cardholder.add_pan(digits)

    def pan(self) -> str:
        """The application PAN digits (5A, else from track 2 57)."""
        if 0x5A in self.card:
            return self.card[0x5A].hex().upper().rstrip("F")
        return self.card.get(0x57, b"").hex().upper().split("D")[0]

    def step(self, text: str) -> None:
        self.result.step(text)
