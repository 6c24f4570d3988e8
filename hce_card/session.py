"""The transaction session of a payment application: its phase and what the card remembers
from one command to the next within a tap (cleared by SELECT and by a reset)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from emvtap.bits import CryptogramType
from emvtap.cryptogram_versions import IssuerResponse
from hce_card.state import AppState
from hce_card.wallet import TransactionKeys

__all__ = ["Phase", "Session"]


class Phase(Enum):
    SELECTED = "selected"
    INITIATED = "initiated"
    QUICK_DONE = "quick path done"
    ONLINE = "online"
    COMPLETED = "completed"


@dataclass
class Session:
    """What lives from SELECT to the end of the tap (cleared by SELECT or reset)."""

    phase: Phase = Phase.SELECTED
    pdol_data: bytes = b""
    values: dict[int, bytes] = field(default_factory=dict)  # terminal data so far
    atc: int = 0
    keys: TransactionKeys | None = None
    before: AppState | None = None  # the state before this transaction (CVR "last" bits)
    card_auth_data: bytes = b""  # 9F69 of this transaction
    cdol1_data: bytes = b""
    first_cid: CryptogramType | None = None
    first_ac: bytes = b""
    dda_performed: bool = False
    external_authentication: IssuerResponse | None = None
    reason: str = ""  # why the card decided as it did (logged, shown by the CLI)

    @property
    def atc_bytes(self) -> bytes:
        return self.atc.to_bytes(2, "big")
