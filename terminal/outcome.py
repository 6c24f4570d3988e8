"""Outcomes and the record of one transaction (EMV Contactless Book A, 6.2 Outcome; Book 3,
Annex C TVR/TSI)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from emvtap.bits import TSI, TVR, Bit, CryptogramType, names, set_bits

__all__ = ["CVM_RESULTS", "Cvm", "KernelOutcome", "Outcome", "TransactionResult"]


class Outcome(enum.StrEnum):
    """Book A, 6.2.2: what the kernel tells the reader to do."""

    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    ONLINE_REQUEST = "ONLINE REQUEST"
    TRY_ANOTHER_INTERFACE = "TRY ANOTHER INTERFACE"
    END_APPLICATION = "END APPLICATION"
    TRY_AGAIN = "TRY AGAIN"
    SELECT_NEXT = "SELECT NEXT"


class Cvm(enum.StrEnum):
    """Book A, 6.2.2 Outcome Parameter Set, CVM."""

    NO_CVM = "NO CVM"
    ONLINE_PIN = "ONLINE PIN"
    SIGNATURE = "OBTAIN SIGNATURE"
    CDCVM = "CONFIRMATION CODE VERIFIED"
    NA = "N/A"


#: CVM Results 9F34 for each contactless CVM outcome of the quick path (Book 4, A4; online PIN
#: "02 00 00", CDCVM "01 00 02" as Kernel 2 reports it).
CVM_RESULTS: dict[Cvm, bytes] = {
    Cvm.NO_CVM: bytes.fromhex("1F0002"),
    Cvm.ONLINE_PIN: bytes.fromhex("020000"),
    Cvm.SIGNATURE: bytes.fromhex("1E0000"),
    Cvm.CDCVM: bytes.fromhex("010002"),
    Cvm.NA: bytes.fromhex("3F0000"),
}


@dataclass(frozen=True)
class KernelOutcome:
    """What a kernel hands back to the reader when it ends (Book A, 6.2: the Outcome and,
    here, the reason a person reads). ``final_outcome`` is set when the kernel itself already
    went online with the card in the field (the full path: GENERATE AC 2 decided)."""

    outcome: Outcome
    reason: str
    final_outcome: Outcome | None = None

    def __post_init__(self) -> None:
        for value in (self.outcome, self.final_outcome):
            if value is not None and not isinstance(value, Outcome):
                raise TypeError(f"a kernel outcome is an Outcome member, not {value!r}")


@dataclass
class TransactionResult:
    """Everything the terminal knows at the end of a tap, for the human trace and the JSON."""

    outcome: Outcome = Outcome.END_APPLICATION
    reason: str = ""
    amount: int = 0
    currency: str = ""
    aid: str = ""
    label: str = ""
    kernel_id: int | None = None
    path: str = ""  # "qPBOC quick path", "EMV full path", ...
    pan_masked: str = ""
    cvm: Cvm = Cvm.NA
    oda_method: str = "none"  # fDDA, SDA, DDA, CDA, none
    oda_result: str = "not performed"  # "ok" | "failed: <reason>" | "not performed"
    tvr: bytes = b"\x00" * 5
    tsi: bytes = b"\x00" * 2
    cryptogram_type: CryptogramType | None = None
    cryptogram: str = ""
    atc: str = ""
    ctq: str = ""
    cvm_results: bytes = b"\x3F\x00\x00"  # 9F34 (Book 4, A4): 3F0000 = no CVM performed
    issuer_script_results: bytes = b""  # 9F5B, 5 bytes per script (Book 4, A5)
    online: dict[str, Any] = field(default_factory=dict)
    #: Issuer update on "tap again" (C-3/C-7): what is waiting for the card and what happened.
    issuer_update: dict[str, Any] = field(default_factory=dict)
    final_outcome: Outcome | None = None  # after the online response
    apdus: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    tap_seconds: float = 0.0
    #: kept for online/issuer update (PAN, track 2: kept out of reprs)
    card_data: dict[int, bytes] = field(default_factory=dict, repr=False)

    def set_tvr(self, *bits: Bit) -> None:
        self.tvr = set_bits(self.tvr, *bits)

    def set_tsi(self, *bits: Bit) -> None:
        self.tsi = set_bits(self.tsi, *bits)

    def step(self, text: str) -> None:
        self.steps.append(text)

    @property
    def outcome_after_online(self) -> Outcome:
        """The outcome the POS acts on: the final one after an online request, else the
        kernel's."""
        return self.final_outcome or self.outcome

    @property
    def cryptogram_type_name(self) -> str:
        """AAC, TC or ARQC; empty when the card gave no cryptogram."""
        return "" if self.cryptogram_type is None else self.cryptogram_type.name

    def end(self, outcome: Outcome, reason: str) -> TransactionResult:
        self.outcome = outcome
        self.reason = reason
        return self

    def to_json(self) -> dict[str, Any]:
        """The redacted JSON record of the tap (PAN masked, no keys)."""
        return {
            "outcome": str(self.outcome),
            "final_outcome": str(self.final_outcome) if self.final_outcome else None,
            "reason": self.reason,
            "amount": self.amount,
            "currency": self.currency,
            "aid": self.aid,
            "label": self.label,
            "kernel": self.kernel_id,
            "path": self.path,
            "pan": self.pan_masked,
            "cvm": str(self.cvm),
            "oda": {"method": self.oda_method, "result": self.oda_result},
            "tvr": self.tvr.hex().upper(),
            "tvr_bits": names(self.tvr, TVR),
            "tsi": self.tsi.hex().upper(),
            "tsi_bits": names(self.tsi, TSI),
            "cryptogram": {"type": self.cryptogram_type_name, "value": self.cryptogram,
                           "atc": self.atc},
            "ctq": self.ctq,
            "cvm_results": self.cvm_results.hex().upper(),
            "issuer_script_results": self.issuer_script_results.hex().upper(),
            "online": self.online,
            "issuer_update": self.issuer_update,
            "steps": self.steps,
            "tap_seconds": round(self.tap_seconds, 6),
            "apdus": self.apdus,
        }
