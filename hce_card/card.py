"""The software card: application selection and command dispatch (ISO 7816-4; EMV 4.4 Book 1,
11-12), over a profile and persistent state, with no knowledge of the link it is reached by.

Every malformed or unexpected command gets the status word a real card gives, and an internal
error answers 6F00 without touching state: the card never crashes and never loses its ATC.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from emvtap.apdu import SW, ApduError, CommandApdu, ResponseApdu
from emvtap.masking import redact_hex
from emvtap.perso import PPSE_NAME
from emvtap.profile import CardProfile
from hce_card.qpboc import QuickPassApplication
from hce_card.state import StateStore

log = logging.getLogger("emvtap.card")

__all__ = ["CardApplication", "HceCard", "PpseApplication", "contactless_atr"]

#: Class bytes this card understands: interindustry (00), proprietary (80), secure messaging
#: (84, 04/0C for PUT DATA style commands).
_CLASSES = frozenset({0x00, 0x80, 0x84, 0x04, 0x0C, 0x8C})


def contactless_atr(historical: bytes) -> bytes:
    """The ATR a PC/SC reader builds for an ISO 14443-4 type A card (PC/SC part 3, 3.1.3.2.3)."""
    body = bytes([0x3B, 0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes([tck])


class CardApplication(Protocol):
    aid: bytes

    def select(self) -> ResponseApdu: ...

    def handle(self, cmd: CommandApdu) -> ResponseApdu: ...


class PpseApplication:
    """The Proximity Payment System Environment (EMV Contactless Book B, 3.3): its FCI lists
    the payment applications."""

    aid = PPSE_NAME

    def __init__(self, fci: bytes) -> None:
        self.fci = fci

    def select(self) -> ResponseApdu:
        return ResponseApdu(self.fci, SW.OK)

    def handle(self, cmd: CommandApdu) -> ResponseApdu:
        return ResponseApdu(b"", SW.INS_NOT_SUPPORTED)


class HceCard:
    """A card: ``process(apdu) -> response`` over its applications."""

    atr = contactless_atr(b"emvtap")

    def __init__(
        self,
        profile: CardProfile,
        store: StateStore | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.profile = profile
        self.store = store or StateStore()
        self.applications: list[CardApplication] = [PpseApplication(profile.ppse_fci)]
        self.applications += [
            QuickPassApplication(profile, app, self.store, random_bytes)
            for app in profile.applications
        ]
        self.selected: CardApplication | None = None
        self._last_partial: tuple[bytes, int] | None = None
        self._pans = [profile.pan] + ([profile.token.span] if profile.token else [])

    @classmethod
    def from_files(cls, profile_path: str | Path, state_path: str | Path | None) -> HceCard:
        return cls(CardProfile.load(profile_path), StateStore(state_path))

    def reset(self) -> None:
        """Power on / warm reset: no application selected."""
        self.selected = None
        self._last_partial = None

    def process(self, apdu: bytes) -> bytes:
        try:
            response = self._process(apdu)
        except Exception:  # the card must answer, whatever went wrong inside it
            log.exception("internal error on command %s", redact_hex(apdu[:5], self._pans))
            response = ResponseApdu(b"", SW.NO_PRECISE_DIAGNOSIS)
        log.debug("C-APDU %s -> R-APDU %s", redact_hex(apdu, self._pans),
                  redact_hex(response.encode(), self._pans))
        return response.encode()

    def _process(self, apdu: bytes) -> ResponseApdu:
        try:
            cmd = CommandApdu.decode(apdu)
        except ApduError:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        if cmd.cla not in _CLASSES:
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        if cmd.ins == 0xA4:
            return self.select(cmd)
        if self.selected is None:
            return ResponseApdu(b"", SW.CONDITIONS_NOT_SATISFIED)
        return self.selected.handle(cmd)

    def select(self, cmd: CommandApdu) -> ResponseApdu:
        """SELECT by DF name (ISO 7816-4, 7.1.1; Book 1, 11.3.2): P1 04, P2 00 first or only
        occurrence, 02 next occurrence; a partial name selects the applications it begins."""
        if cmd.cla != 0x00:
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        if cmd.p1 != 0x04 or cmd.p2 not in (0x00, 0x02):
            return ResponseApdu(b"", SW.INCORRECT_P1P2)
        if not 1 <= len(cmd.data) <= 16:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        matches = [i for i, a in enumerate(self.applications) if a.aid.startswith(cmd.data)]
        start = 0
        if cmd.p2 == 0x02 and self._last_partial and self._last_partial[0] == cmd.data:
            start = self._last_partial[1] + 1
        chosen = next((i for i in matches if i >= start), None)
        if chosen is None:
            return ResponseApdu(b"", SW.FILE_NOT_FOUND)
        self._last_partial = (bytes(cmd.data), chosen)
        self.selected = self.applications[chosen]
        return self.selected.select()
