"""The software card: application selection and command dispatch (ISO 7816-4; EMV 4.4 Book 1,
11-12), over a profile and persistent state, with no knowledge of the link it is reached by.

Every malformed or unexpected command gets the status word a real card gives, and an internal
error answers 6F00 without touching state: the card never crashes and never loses its ATC.
A blocked card (CARD BLOCK, Book 3 6.5.3) answers every SELECT with 6A81; a blocked
application answers its SELECT with 6283 (Book 1 12.2.3) and refuses GPO.

An application the TSP marked as limited-use (an HCE wallet, ``hce_card/wallet.py``) holds no
master key: the card drops whatever sits in the profile's key slots and computes only with
the limited-use keys of its state.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from emvtap.apdu import SW, ApduError, CommandApdu, ResponseApdu
from emvtap.masking import redact_hex, redact_tlv_bytes
from emvtap.perso import PPSE_NAME
from emvtap.profile import ApplicationProfile, CardKeys, CardProfile
from emvtap.tlv import TlvError, decode, flatten
from hce_card.application import PaymentApplication
from hce_card.commands import handle
from hce_card.session import Session
from hce_card.state import StateStore
from hce_card.wallet import is_wallet, parse_batch, profile_batch, wallet_status

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


class PpseApplication:
    """The Proximity Payment System Environment (EMV Contactless Book B, 3.3): its FCI lists
    the payment applications."""

    aid = PPSE_NAME

    def __init__(self, fci: bytes) -> None:
        self.fci = fci

    def select(self) -> ResponseApdu:
        return ResponseApdu(self.fci, SW.OK)

    def handle(self, cmd: CommandApdu) -> ResponseApdu:
        """The PPSE is only selected and read: every other command answers 6D00."""
        return ResponseApdu(b"", SW.INS_NOT_SUPPORTED)


class HceCard:
    """A card: ``process(apdu) -> response`` over its applications."""

    atr = contactless_atr(b"emvtap")

    def __init__(
        self,
        profile: CardProfile,
        store: StateStore | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        cdcvm: Callable[[], bool] = lambda: False,
    ) -> None:
        self.profile = profile
        self.store = store or StateStore()
        self.ppse = PpseApplication(profile.ppse_fci)
        self.payment_applications = [
            PaymentApplication(profile, _without_master_keys(app), self.store, random_bytes,
                               cdcvm)
            for app in profile.applications
        ]
        self.applications: list[CardApplication] = [self.ppse, *self.payment_applications]
        self.store.adopt_legacy(profile.applications[0].aid)
        for app in self.payment_applications:
            if app.wallet:
                first = profile_batch(app.app)
                if self.store.app(app.aid).no_password_limit is not None:
                    # a limit the network pushed since provisioning outranks the profile's
                    first = replace(first, no_password_limit=None)
                self.store.add_batch(app.aid, first)
                self.store.import_inbox(app.aid, parse_batch)
        self.selected: CardApplication | None = None
        self._last_partial: tuple[bytes, int] | None = None
        self._pans = sorted({profile.pan, *([profile.token.span] if profile.token else []),
                             *(_record_pans(a) for a in profile.applications)} - {""})

    def wallet_status(self) -> dict[str, str]:
        """AID → the limited-use key status of each HCE wallet application."""
        return {app.aid.hex().upper(): str(wallet_status(self.store, app.aid))
                for app in self.payment_applications if app.wallet}

    @property
    def last_reason(self) -> str:
        """Why the selected application decided as it did in this tap (for the CLI)."""
        app = self.selected
        return app.session.reason if isinstance(app, PaymentApplication) else ""

    @classmethod
    def from_files(cls, profile_path: str | Path, state_path: str | Path | None,
                   cdcvm: Callable[[], bool] = lambda: False) -> HceCard:
        return cls(CardProfile.load(profile_path), StateStore(state_path), cdcvm=cdcvm)

    def reset(self) -> None:
        """Power on / warm reset: no application selected, no transaction in progress."""
        for app in self.payment_applications:
            app.session = Session()
        self.selected = None
        self._last_partial = None

    def process(self, apdu: bytes) -> bytes:
        try:
            response = self._process(apdu)
        except Exception:  # the card must answer, whatever went wrong inside it
            log.exception("internal error on command %s", redact_hex(apdu[:5], self._pans))
            response = ResponseApdu(b"", SW.NO_PRECISE_DIAGNOSIS)
        if log.isEnabledFor(logging.DEBUG):  # track 2, name and PAN never in clear
            shown = ResponseApdu(redact_tlv_bytes(response.data), response.sw).encode()
            log.debug("C-APDU %s -> R-APDU %s", redact_hex(apdu, self._pans),
                      redact_hex(shown, self._pans))
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
        selected = self.selected
        if selected is None:
            return ResponseApdu(b"", SW.CONDITIONS_NOT_SATISFIED)
        if isinstance(selected, PaymentApplication):
            return handle(selected, cmd)  # the command table (hce_card.commands)
        assert isinstance(selected, PpseApplication)
        return selected.handle(cmd)

    def select(self, cmd: CommandApdu) -> ResponseApdu:
        """SELECT by DF name (ISO 7816-4, 7.1.1; Book 1, 11.3.2): P1 04, P2 00 first or only
        occurrence, 02 next occurrence; a partial name selects the applications it begins."""
        if cmd.cla != 0x00:
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        if cmd.p1 != 0x04 or cmd.p2 not in (0x00, 0x02):
            return ResponseApdu(b"", SW.INCORRECT_P1P2)
        if not 1 <= len(cmd.data) <= 16:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        if self.store.state.card_blocked:
            self.selected = None
            return ResponseApdu(b"", SW.FUNCTION_NOT_SUPPORTED)
        matches = [i for i, a in enumerate(self.applications) if a.aid.startswith(cmd.data)]
        start = 0
        if cmd.p2 == 0x02 and self._last_partial and self._last_partial[0] == cmd.data:
            start = self._last_partial[1] + 1
        chosen = next((i for i in matches if i >= start), None)
        if chosen is None:
            self.selected = None  # ISO 7816-4 7.1.1: a failed SELECT leaves nothing selected
            return ResponseApdu(b"", SW.FILE_NOT_FOUND)
        self._last_partial = (bytes(cmd.data), chosen)
        self.selected = self.applications[chosen]
        return self.selected.select()


def _without_master_keys(app: ApplicationProfile) -> ApplicationProfile:
    """An HCE wallet application as the card holds it: the key slots emptied (docs/domain.md,
    Device types: short-lived keys only)."""
    if not is_wallet(app):
        return app
    if any(app.keys.ac + app.keys.smi + app.keys.smc):
        log.warning("application %s is limited-use: ignoring the master keys in its profile",
                    app.aid.hex().upper())
    return replace(app, keys=CardKeys(b"", b"", b""))


def _record_pans(app: ApplicationProfile) -> str:
    """The PAN (5A) in the application's records, for masking in logs."""
    for rec in app.records:
        try:
            pan = flatten(decode(rec.data)).get(0x5A)
        except TlvError:
            continue
        if pan:
            return pan.hex().upper().rstrip("F")
    return ""
