"""The card on an NFC reader in card-emulation (listen) mode, through nfcpy: the ISO 14443-4
card side of :mod:`.isodep` on ``clf.listen(LocalTarget('106A'))`` and ``clf.exchange``.

Spec: ``nfc:<nfcpy path>`` -
``nfc:udp[:HOST[:PORT]]`` (nfcpy's UDP radio simulation; the card binds HOST:PORT, HOST
127.0.0.1 by default),
``nfc:usb[:VID[:PID]]`` / ``nfc:usb[:BUS[:DEV]]`` / ``nfc:tty:PORT:DRIVER``,
``nfc:sim:CHIP[:HOST[:PORT]]`` (nfcpy's driver on a simulated chip, :mod:`emvtap.chipsim`;
the card binds HOST:PORT).

Devices (docs/architecture.md, Virtual hardware):
- ``udp``: the reader's RATS reaches us; we answer the ATS.
- PN531/PN532/PN533 (SCL3711, PN532 boards) and Sony RC-S380: the chip answers RATS itself
  with the ATS we give it (``LocalTarget.rats_res``) and hands over the first I-block
  (``tt4_cmd``). The emulated UID is ``08`` + 3 random bytes (a random UID, ISO/IEC 14443-3).
- ACR122U cannot emulate a card (nfcpy's acr122 driver refuses every listen).

nfcpy's udp driver, measured:
- it binds the port with no SO_REUSEADDR: two cards on one port collide and ``listen``
  returns at once, which this link reports as an error instead of spinning;
- every ``listen`` closes and re-binds the socket, and a ``listen`` that expires between
  SENS_RES and SEL_REQ drops the reader's activation (the reader then waits 0.5-1 s for its
  next poll). With the reader polling once a second, 0.5 s listens lose the activation
  almost every time: here a udp ``listen`` lasts 5 s, and :meth:`NfcTargetLink.stop` ends it
  at once with a frame to the card's own port instead;
- it turns the port number into a service name when /etc/services has one (30865 → "csync2")
  and then fails on ``int()``: such ports are refused up front.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from typing import Any

from emvtap.endpoints import CardLike, nfcpy_path

from .base import LinkError, process_guarded
from .isodep import DEFAULT_ATS, FieldOff, FrameTimeout, IsoDepCard, SessionEnd

__all__ = ["NfcTargetLink"]

log = logging.getLogger("emvtap.link.nfc")

#: SENS_RES (ATQA) of a single-size-UID Type A card, as sent (LSB first): 0x0004.
SENS_RES = bytes.fromhex("0400")
#: SEL_RES (SAK): ISO/IEC 14443-4 compliant (b6), not an NFC-DEP target.
SEL_RES = bytes.fromhex("20")


class _ClfFrameIO:
    """nfcpy's ``clf.exchange`` as a :class:`~.isodep.FrameIO`."""

    def __init__(self, clf: Any) -> None:
        import nfc.clf

        self.clf = clf
        self._timeout_error = nfc.clf.TimeoutError
        self._broken_link = nfc.clf.BrokenLinkError
        self._communication_error = nfc.clf.CommunicationError

    def exchange(self, frame: bytes | None, timeout: float) -> bytes | None:
        data = None if frame is None else bytearray(frame)
        try:
            answer = self.clf.exchange(data, timeout)
        except self._timeout_error:
            raise FrameTimeout from None
        except self._broken_link as exc:
            raise FieldOff(str(exc)) from None
        except self._communication_error as exc:
            # a garbled frame: no block for us this time (the reader will repeat or NAK)
            log.debug("frame error %s", exc)
            raise FrameTimeout from None
        except OSError as exc:  # the reader end of the udp simulation went away
            raise FieldOff(str(exc)) from None
        return None if answer is None else bytes(answer)


class NfcTargetLink:
    """Serve *card* as an ISO 14443-4 Type A card on an nfcpy device, tap after tap.

    :param rest: the nfcpy path (what follows ``nfc:``).
    :param ats: the ATS (its FWI decides when S(WTX) is needed: 38.7 ms with the default).
    :param listen_timeout: seconds per ``clf.listen`` call (the stop flag is looked at between);
        default 5 s on udp (which :meth:`stop` interrupts), 1 s on a device.
    :param idle_timeout: seconds without a frame after which a session is over.
    :param uid: the 4-byte UID (``08`` + 3 bytes, ISO/IEC 14443-3 random UID); random if None.
    :param sel_res: SAK; ``60`` looks like a phone (ISO-DEP and NFC-DEP), ``20`` a card.
    """

    def __init__(
        self,
        card: CardLike,
        rest: str = "udp",
        *,
        ats: bytes = DEFAULT_ATS,
        listen_timeout: float | None = None,
        idle_timeout: float = 5.0,
        uid: bytes | None = None,
        sel_res: bytes = SEL_RES,
        stop_event: threading.Event | None = None,
        **isodep_options: Any,
    ) -> None:
        self.card = card
        self.path = nfcpy_path(rest, f"nfc:{rest}")
        if self.path.startswith("sim:"):
            from emvtap.chipsim import CHIPS, parse_sim_path

            chip = parse_sim_path(self.path).chip
            if not CHIPS[chip][1]:
                raise ValueError(f"'nfc:{rest}': the {chip} cannot emulate a card")
        self.name = f"nfc:{self.path}"
        self.ats = bytes(ats)
        self.is_udp = self.path.split(":", 1)[0] == "udp"
        if listen_timeout is None:
            listen_timeout = 5.0 if self.is_udp else 1.0
        self.listen_timeout = listen_timeout
        self.uid = uid if uid is not None else b"\x08" + os.urandom(3)
        if len(self.uid) != 4 or self.uid[0] != 0x08:
            raise ValueError("the emulated UID is 4 bytes starting with 08 (random UID)")
        if len(sel_res) != 1 or not sel_res[0] & 0x20:
            raise ValueError("SEL_RES must be 1 byte with b6 (ISO/IEC 14443-4) set")
        self.sel_res = bytes(sel_res)
        self.stopped = stop_event if stop_event is not None else threading.Event()
        #: Set while the card is listening for a reader (on udp: once the port is bound).
        self.listening = threading.Event()
        #: Set while a reader has the card activated.
        self.active = threading.Event()
        #: How each session ended, in order (see :meth:`wait_for_sessions`).
        self.sessions: list[SessionEnd] = []
        self._session_ended = threading.Condition()
        self._present = threading.Event()
        self._present.set()
        self._thread: threading.Thread | None = None
        self._udp_addr: tuple[str, int] | None = None
        self.isodep = IsoDepCard(
            lambda apdu: process_guarded(self.card, apdu, self.name),
            self.ats,
            name=self.name,
            idle_timeout=idle_timeout,
            should_stop=self.stopped.is_set,
            is_removed=lambda: not self._present.is_set(),
            **isodep_options,
        )

    # -- control from other threads -----------------------------------------------------

    def stop(self) -> None:
        """Stop serving (from any thread, or a signal handler); seen within ~0.25 s."""
        self.stopped.set()
        self._present.set()
        self._interrupt_listen()

    def _interrupt_listen(self) -> None:
        """End a pending udp ``listen`` now: any 106A frame that is not part of the
        activation makes nfcpy's udp ``listen`` return it (as a Type 2 command, ignored)."""
        if self._udp_addr is None:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(b"106A 00", self._udp_addr)
            except OSError as exc:
                log.debug("%s: could not interrupt listen: %s", self.name, exc)

    def close(self, timeout: float = 5.0) -> None:
        """Stop and wait for the serving thread. On udp the interrupting frame is sent again
        while waiting: one that reaches the port while nfcpy re-binds it is lost."""
        self.stop()
        if self._thread is not None:
            deadline = time.monotonic() + timeout
            while self._thread.is_alive() and time.monotonic() < deadline:
                self._thread.join(0.1)
                self._interrupt_listen()
            if self._thread.is_alive():
                raise LinkError(f"{self.name}: serving thread did not stop within {timeout} s")

    def remove_card(self) -> None:
        """Take the card out of the field: a command in progress gets no answer, the radio
        closes, and the card stays away until :meth:`insert_card`."""
        self._present.clear()
        if not self.active.is_set():
            self._interrupt_listen()

    def insert_card(self) -> None:
        self._present.set()

    def wait_for_sessions(self, count: int, timeout: float) -> bool:
        """Wait until *count* sessions have ended; False on timeout."""
        with self._session_ended:
            return self._session_ended.wait_for(lambda: len(self.sessions) >= count, timeout)

    def _session_over(self, end: SessionEnd) -> None:
        with self._session_ended:
            self.sessions.append(end)
            self._session_ended.notify_all()

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.serve, name=self.name, daemon=True)
        self._thread.start()
        return self._thread

    def __enter__(self) -> NfcTargetLink:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- serving ------------------------------------------------------------------------

    def _open(self) -> Any:
        import nfc

        try:
            if self.path.startswith("sim:"):
                from emvtap.chipsim import open_frontend, parse_sim_path

                return open_frontend(parse_sim_path(self.path), "target")
            clf = nfc.ContactlessFrontend()
            if not clf.open(self.path):
                raise LinkError(f"{self.name}: no nfcpy device at {self.path!r}")
        except OSError as exc:
            raise LinkError(f"{self.name}: cannot open {self.path!r}: {exc}") from exc
        return clf

    def serve(self) -> None:
        """Listen, serve a session, listen again - until stopped (or Ctrl-C)."""
        import nfc.clf

        clf = None
        try:
            clf = self._open()
            if self.is_udp:
                self._udp_addr = (clf.device.addr[0], int(clf.device.addr[1]))
                self._signal_when_bound(clf.device)
            io = _ClfFrameIO(clf)
            target = nfc.clf.LocalTarget("106A")
            target.sens_res = bytearray(SENS_RES)
            target.sdd_res = bytearray(self.uid)
            target.sel_res = bytearray(self.sel_res)
            target.rats_res = bytearray(self.ats)  # PN53x / RC-S380 answer RATS with it
            while not self.stopped.is_set():
                if not self._present.is_set():
                    self.listening.clear()
                    clf.device.mute()
                    self._present.wait()
                    continue
                if not self.is_udp:
                    self.listening.set()  # a chip listens from TgInitAsTarget on
                started = time.monotonic()
                activated = clf.listen(target, self.listen_timeout)
                if self.stopped.is_set() or not self._present.is_set():
                    continue
                if activated is None:
                    if time.monotonic() - started < self.listen_timeout / 2:
                        raise LinkError(
                            f"{self.name}: listen() returned at once - is another card "
                            "already bound to this port?"
                        )
                    continue
                first = activated.tt4_cmd
                if not first:
                    log.debug("%s: not an ISO-DEP activation (%s); ignored", self.name, activated)
                    continue
                self._session(io, bytes(first))
        except KeyboardInterrupt:
            log.info("%s: stopped by Ctrl-C", self.name)
        except OSError as exc:  # the device went away (unplugged, USB error)
            raise LinkError(f"{self.name}: device failed: {exc}") from exc
        finally:
            self.listening.clear()
            self.active.clear()
            self.stopped.set()
            self.isodep.close()
            if clf is not None:
                clf.close()

    def _signal_when_bound(self, device: Any) -> None:
        """Set :attr:`listening` only once the udp socket is bound (each ``listen`` re-binds
        it), so that a reader started right after ``listening.wait()`` is not lost. Replaces
        nfcpy 1.0.4's ``udp.Device._bind_socket`` (pinned in pyproject.toml), which binds
        0.0.0.0 whatever the path says: the card binds the path's host (127.0.0.1 by default)
        and is not reachable from other hosts unless asked to be."""

        def bind(time_to_return: float) -> bool:
            while time.time() < time_to_return:
                try:
                    device.socket.bind((device.addr[0], device.addr[1]))
                    return True
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        return False
                    raise
            return False

        def bind_then_signal(time_to_return: float) -> bool:
            bound = bind(time_to_return)
            if bound:
                self.listening.set()
            return bound

        device._bind_socket = bind_then_signal

    def _session(self, io: _ClfFrameIO, first: bytes) -> None:
        self.active.set()
        try:
            if first[0] == 0xE0:  # RATS (udp): answer with our ATS; the next frame is a block
                ats = self.isodep.activate(first)
                try:
                    block = io.exchange(ats, self.isodep.idle_timeout)
                except (FrameTimeout, FieldOff) as exc:
                    log.info("%s: no block after the ATS (%s)", self.name, exc)
                    self._session_over(SessionEnd.IDLE)
                    return
                assert block is not None
            else:  # the reader chip answered RATS itself
                self.isodep.activated_by_reader_chip()
                block = first
            log.info("%s: activated by a reader", self.name)
            end = self.isodep.run(io, block)
            log.info("%s: session ended (%s)", self.name, end.value)
            self._session_over(end)
        finally:
            self.active.clear()
