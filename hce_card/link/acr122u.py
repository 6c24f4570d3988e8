"""The card as an ACS ACR122U with the card in its field, towards pcscd and its clients
(``emvtap card run --link vpcd:… --personality acr122u``): what a PC/SC application sees of
a real ACR122U reading a contactless card, on pcscd's virtual reader.

- the ATR: the PC/SC Part 3 contactless ATR (3.1.3.2.3: ``3B 8n 80 01``, the ATS historical
  bytes, TCK), which the card's own ATR already is;
- the reader's pseudo-APDUs (class FF), answered by the reader and never seen by the card:
  ``FF CA 00 00 Le`` GET DATA UID and ``FF CA 01 00 Le`` the ATS historical bytes (PC/SC
  Part 3, 3.2.2.1.3), ``FF 00 48 00 00`` the firmware version, ``FF 00 40 P2 04 T1 T2 N B``
  the bi-color LED and buzzer with the ACR122U API manual's answer ``90`` + LED state (6.2),
  ``FF 00 00 00 Lc D4 …`` direct transmit to the PN532 (4.1): GetFirmwareVersion and
  InDataExchange to the card (``D4 40 01`` + APDU → ``D5 41 00`` + response);
- on removal (:meth:`~.vpcd.VpcdLink.remove_card`) the card leaves pcscd's slot: every
  pseudo-APDU then needs a direct connection, as on the real reader.

The LED and buzzer state machine is the simulated ACR122U's (:mod:`emvtap.chipsim.acr122`),
so the reader on PC/SC and the reader under nfcpy's driver answer alike.
"""

from __future__ import annotations

import logging
import os

from emvtap.chipsim.acr122 import Acr122Controller
from emvtap.chipsim.pn53x import FIRMWARE

from .base import CardLike

__all__ = ["PERSONALITIES", "Acr122uPersonality", "with_personality"]

log = logging.getLogger("emvtap.link.acr122u")

SW_OK = b"\x90\x00"
#: What the personality answers where the reader refuses (ACR122U API manual, 4: 63 00).
SW_FAILED = b"\x63\x00"
PERSONALITIES = ("acr122u",)


class _NoChip:
    """The controller's PN532 side is answered here, not by a simulated chip."""

    field = None


class Acr122uPersonality:
    """*card* behind an ACR122U: pseudo-APDUs answered by the reader, the rest by the card.

    :param uid: the card's UID as the reader reports it (4 bytes, ``08`` + 3 random bytes, as
        a phone's random UID; random if None).
    """

    def __init__(self, card: CardLike, uid: bytes | None = None) -> None:
        self.card = card
        self.uid = uid if uid is not None else b"\x08" + os.urandom(3)
        if len(self.uid) not in (4, 7, 10):
            raise ValueError("a Type A UID is 4, 7 or 10 bytes")
        self.reader = Acr122Controller(_NoChip())  # type: ignore[arg-type]
        #: Pseudo-APDUs answered by the reader, in order (for tests and logs).
        self.pseudo_apdus: list[bytes] = []

    @property
    def atr(self) -> bytes:
        return self.card.atr

    @property
    def historical_bytes(self) -> bytes:
        atr = self.card.atr
        return atr[4 : 4 + (atr[1] & 0x0F)] if len(atr) > 4 else b""

    def reset(self) -> None:
        self.card.reset()

    def process(self, apdu: bytes) -> bytes:
        if apdu[:1] != b"\xff":
            return self.card.process(apdu)
        self.pseudo_apdus.append(bytes(apdu))
        return self._pseudo_apdu(bytes(apdu))

    def _pseudo_apdu(self, apdu: bytes) -> bytes:
        if len(apdu) < 5:
            return b"\x67\x00"
        ins, p1 = apdu[1], apdu[2]
        if ins == 0xCA:
            return self._get_data(p1, apdu[3], apdu[4])
        if ins == 0x00 and p1 == 0x00 and apdu[3] == 0x00:
            return self._direct_transmit(apdu[5 : 5 + apdu[4]])
        if ins == 0x00 and p1 in (0x40, 0x48, 0x50, 0x51):
            return self.reader.pseudo_apdu(apdu)
        return SW_FAILED

    def _get_data(self, p1: int, p2: int, le: int) -> bytes:
        """PC/SC Part 3, 3.2.2.1.3: P1 00 the UID, 01 the historical bytes; Le 00 all of it,
        a shorter Le is 6C with the length."""
        if p2 != 0x00 or p1 not in (0x00, 0x01):
            return b"\x6a\x81"  # function not supported
        data = self.uid if p1 == 0x00 else self.historical_bytes
        if le and le != len(data):
            return bytes([0x6C, len(data)])
        return data + SW_OK

    def _direct_transmit(self, command: bytes) -> bytes:
        """The PN532's answer (ACR122U API manual 4.1, PN532 user manual 7)."""
        if command[:2] == b"\xd4\x02":  # GetFirmwareVersion
            return b"\xd5\x03" + FIRMWARE["pn532"] + SW_OK
        if command[:3] == b"\xd4\x40\x01" and len(command) > 3:  # InDataExchange, target 1
            return b"\xd5\x41\x00" + self.card.process(command[3:]) + SW_OK
        return SW_FAILED


def with_personality(card: CardLike, personality: str | None) -> CardLike:
    """*card* as *personality* presents it (None: the card alone)."""
    if personality is None:
        return card
    if personality == "acr122u":
        return Acr122uPersonality(card)
    raise ValueError(f"unknown reader personality {personality!r}; expected one of "
                     f"{', '.join(PERSONALITIES)}")
