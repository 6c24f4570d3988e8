"""nfcpy readers: PN53x (SCL3711, PN532 boards), Sony RC-S380, ACR122U over raw USB (pcscd must
not hold it), and nfcpy's ``udp`` radio simulation for tests.

Spec: ``nfc:<nfcpy path>`` - ``nfc:usb[:VID[:PID]]``, ``nfc:usb[:BUS[:DEV]]``,
``nfc:tty:PORT:DRIVER``, ``nfc:udp[:HOST[:PORT]]`` (the card side binds PORT),
``nfc:sim:CHIP[:HOST[:PORT]]`` (nfcpy's driver on a simulated chip, :mod:`emvtap.chipsim`).

nfcpy does the reader side of ISO 14443-4 (RATS, chaining, WTX, R(NAK) retries) in
``Type4Tag.transceive``; this driver adds what a payment terminal needs
(docs/architecture.md, Virtual hardware):
- its own ``on-discover``: nfcpy's default drops every target whose SEL_RES has the NFC-DEP bit
  (0x40), i.e. most phones with P2P on; we take any target that speaks ISO 14443-4 (0x20);
- no ``beep-on-connect``, and ``tag.ndef`` is never touched (a payment card has no NDEF, and
  the NDEF probe would send SELECTs of its own);
- a card pulled mid-APDU surfaces as ``Type4TagCommandError`` (errno 0, after the retries) or
  a raw ``nfc.clf.TimeoutError``/``BrokenLinkError``: both are :class:`CardRemovedError`;
- GET RESPONSE / 6Cxx in :mod:`.base` (nfcpy's ``check_status`` would raise on them instead).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Any

from emvtap.endpoints import nfcpy_path

from .base import BaseTransport, CardRemovedError, NoCardError, TransportError

__all__ = ["NfcTransport", "atr_from_ats"]

log = logging.getLogger(__name__)

#: S(DESELECT) without CID (ISO/IEC 14443-4, 8).
S_DESELECT = b"\xc2"


#: The longest one command may take, S(WTX) extensions included: ISO/IEC 14443-4 7.3 lets a
#: card extend its frame waiting time frame after frame, so the bound is the terminal's
#: (EMV Contactless Book A: the reader bounds the transaction; a card that keeps asking for
#: time is treated as gone - TRY AGAIN). An RSA signature on a slow card takes about a second.
MAX_COMMAND_SECONDS = 5.0


def atr_from_ats(ats: bytes) -> bytes:
    """The ATR a PC/SC reader reports for an ISO 14443-4 Type A card: ``3B 8n 80 01``, the
    ATS historical bytes (n of them, at most 15) and TCK (PC/SC Part 3, 3.1.3.2.3.1), so
    that ``nfc:`` and ``pcsc:`` readers give the kernel the same ATR for the same card."""
    historical = b""
    if len(ats) >= 2:
        t0 = ats[1]
        interface = bin(t0 & 0x70).count("1")
        historical = ats[2 + interface :][:15]
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


def _accept_iso_dep(target: Any) -> bool:
    """on-discover: any Type A target that speaks ISO 14443-4 (SEL_RES b6), P2P phones too."""
    sel_res = getattr(target, "sel_res", None)
    if sel_res:
        return bool(sel_res[0] & 0x20)
    return getattr(target, "sensb_res", None) is not None  # Type B is ISO-DEP by definition


class NfcTransport(BaseTransport):
    """An nfcpy reader.

    :param rest: the nfcpy path (what follows ``nfc:``).
    :param targets: the technologies polled (nfcpy bit rate/type strings).
    :param poll_interval: seconds between polls while no card answers.
    """

    def __init__(
        self,
        rest: str = "usb",
        *,
        targets: tuple[str, ...] = ("106A",),
        poll_interval: float = 0.05,
        max_command_seconds: float = MAX_COMMAND_SECONDS,
    ) -> None:
        super().__init__()
        self.path = nfcpy_path(rest, f"nfc:{rest}")
        self.spec = f"nfc:{rest}"
        self.targets = targets
        self.poll_interval = poll_interval
        self.max_command_seconds = max_command_seconds
        self.ats: bytes | None = None
        self.atr: bytes | None = None
        self.uid: bytes | None = None
        self._clf: Any = None
        self._tag: Any = None
        self._cancel = threading.Event()

    def _open(self) -> Any:
        if self._clf is None:
            import nfc

            clf = nfc.ContactlessFrontend()
            try:
                if self.path.startswith("sim:"):
                    from emvtap.chipsim import open_frontend, parse_sim_path

                    clf = open_frontend(parse_sim_path(self.path), "initiator")
                    found = True
                else:
                    found = clf.open(self.path)
            except OSError as exc:
                raise TransportError(f"{self.spec}: cannot open the reader: {exc}") from exc
            if not found:
                raise TransportError(
                    f"{self.spec}: no nfcpy reader found (python -m nfc lists them; for an "
                    "ACR122U or PN533, blacklist the pn533/nfc kernel modules and stop pcscd)"
                )
            self._clf = clf
        return self._clf

    def probe(self) -> None:
        """Open the nfcpy device (the udp driver only binds its socket)."""
        self._open()

    def connect(self, timeout: float | None = None) -> bytes:
        """Poll until an ISO-DEP card is activated; return its ATR (:func:`atr_from_ats`)."""
        import nfc.tag.tt4

        if self._tag is not None:
            self.disconnect()
        clf = self._open()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._cancel.clear()
        captured: dict[str, bytes] = {}

        def expired() -> bool:
            return self._cancel.is_set() or (deadline is not None and time.monotonic() >= deadline)

        plain_exchange = clf.exchange

        def recording_exchange(data: Any, timeout: float) -> Any:
            answer = plain_exchange(data, timeout)
            if data is not None and len(data) == 2 and data[0] == 0xE0 and answer:
                captured["ats"] = bytes(answer)  # Type4ATag keeps the ATS to itself
            return answer

        options = {
            "targets": list(self.targets),
            "on-discover": _accept_iso_dep,
            "on-connect": lambda tag: False,  # we drive the card; no presence loop
            "beep-on-connect": False,
            "iterations": 1,
            "interval": self.poll_interval,
        }
        delay = self.poll_interval
        clf.exchange = recording_exchange
        try:
            while not expired():
                try:
                    tag = clf.connect(rdwr=options, terminate=expired)
                except OSError as exc:  # the udp peer is not listening yet
                    log.debug("%s: %s", self.spec, exc)
                    tag = None
                if isinstance(tag, nfc.tag.tt4.Type4Tag):
                    self._tag = tag
                    self.ats = captured.get("ats", b"")
                    self.atr = atr_from_ats(self.ats)
                    self.uid = bytes(getattr(tag, "identifier", b""))
                    self.exchanges = []
                    log.debug("%s: %s activated, ATS %s", self.spec, tag, self.ats.hex())
                    return self.atr
                if tag:
                    log.info("%s: %s is not an ISO 14443-4 card; ignored", self.spec, tag)
                if tag is False or tag is None:
                    # nothing in the field, or the radio refused (udp: no card bound yet):
                    # poll again, as any reader polls its field
                    remaining = None if deadline is None else deadline - time.monotonic()
                    wait = delay if remaining is None else max(0.0, min(delay, remaining))
                    if self._cancel.wait(wait):
                        break
                    delay = min(delay * 2, 0.5)
        finally:
            del clf.exchange  # back to the class method
        if self._cancel.is_set():
            raise NoCardError(f"{self.spec}: waiting for a card was cancelled")
        raise NoCardError(f"{self.spec}: no card within {timeout} s")

    def cancel(self) -> None:
        """From another thread: end a pending :meth:`connect` with :class:`NoCardError`."""
        self._cancel.set()

    def _send(self, apdu: bytes) -> bytes:
        import nfc.clf
        import nfc.tag

        if self._tag is None:
            raise CardRemovedError(f"{self.spec}: no card connected (removed or never presented)")
        clf = self._clf
        deadline = time.monotonic() + self.max_command_seconds

        def bounded_exchange(data: Any, timeout: float) -> Any:
            # every frame of this command, S(WTX) answers included, within one deadline
            if time.monotonic() >= deadline:
                raise nfc.clf.TimeoutError(
                    f"the card kept the command for more than {self.max_command_seconds:g} s")
            return type(clf).exchange(clf, data,
                                     max(0.001, min(timeout, deadline - time.monotonic())))

        clf.exchange = bounded_exchange
        try:
            response = self._tag.transceive(bytearray(apdu))
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            self._tag = None
            raise CardRemovedError(f"{self.spec}: card left the field ({exc!r})") from exc
        except OSError as exc:
            self._tag = None
            if exc.errno == errno.ECONNREFUSED:  # udp: the card side is gone
                raise CardRemovedError(f"{self.spec}: card left the field ({exc})") from exc
            raise TransportError(f"{self.spec}: reader failed: {exc}") from exc
        finally:
            del clf.exchange  # back to the class method
        if response is None:
            self._tag = None
            raise CardRemovedError(f"{self.spec}: no response (card left the field)")
        return bytes(response)

    def disconnect(self) -> None:
        """S(DESELECT) the card (best effort) and switch the field off."""
        tag, self._tag = self._tag, None
        if self._clf is None:
            return
        if tag is not None:
            try:
                self._clf.exchange(bytearray(S_DESELECT), 0.1)
            except Exception as exc:  # the card may be gone: nothing to release
                log.debug("%s: DESELECT: %r", self.spec, exc)
        try:
            self._clf.device.mute()
        except Exception as exc:
            log.debug("%s: field off: %r", self.spec, exc)

    def close(self) -> None:
        self.disconnect()
        clf, self._clf = self._clf, None
        if clf is not None:
            clf.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
