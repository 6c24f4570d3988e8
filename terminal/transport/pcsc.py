"""PC/SC readers through pyscard's ``smartcard.scard`` (the PC/SC API itself, so that every
return code can be mapped): ACR122U and any CCID contactless reader via pcscd, and pcscd's
virtual reader ``vpcd`` in tests.

Spec: ``pcsc:`` (first reader), ``pcsc:N`` (index into the reader list), ``pcsc:<name>`` (exact
reader name, or a case-insensitive substring matching exactly one reader).

Facts this driver is built on (see docs/architecture.md, Virtual hardware):
- pcscd polls readers every 400 ms, so insertion is reported 30-400 ms after it happens; we wait
  with ``SCardGetStatusChange`` and a timeout, never by polling ``SCardConnect``.
- Nothing in the PC/SC stack answers ``61xx`` or ``6Cxx`` for us (done in ``base``).
- No call in the stack has a timeout of its own: ``SCardTransmit`` to a card that never answers
  blocks for ever. ``apdu_timeout`` bounds it from a worker thread; a context whose call timed out
  is abandoned (pcsc-lite serialises calls per context) and a fresh one made on the next connect.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from smartcard import scard

from .base import BaseTransport, CardRemovedError, NoCardError, TransportError

__all__ = [
    "ACR122U_FEEDBACK",
    "GET_UID",
    "PcscTransport",
    "list_readers",
    "resolve_reader",
    "wait_for_card_state",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class _CallTimeout(Exception):
    pass


class _Worker:
    """One daemon thread that runs PC/SC calls for a caller that waits with a timeout.

    A daemon thread (not ``concurrent.futures``, whose workers are joined at interpreter exit)
    so that a call stuck in pcscd for ever cannot keep the process from exiting. The hand-off
    is a queue and a lock, ~0.05 ms per call.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], list[Any], threading.Lock] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, box, done = job
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:  # handed to the caller
                box.append((False, exc))
            done.release()

    def call(self, fn: Callable[..., T], args: tuple[Any, ...], timeout: float) -> T:
        box: list[Any] = []
        done = threading.Lock()
        done.acquire()
        self._jobs.put((fn, args, box, done))
        if not done.acquire(timeout=timeout):
            raise _CallTimeout
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def shutdown(self) -> None:
        self._jobs.put(None)


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


#: PC/SC return codes meaning "the card is gone or stopped answering mid-tap". For a
#: contactless card each of these is a card that left the field (EMV Contactless Book A,
#: Outcome Try Again); vpcd reports a card whose socket closed mid-APDU as NOT_TRANSACTED.
CARD_GONE = frozenset(
    _code(c)
    for c in (
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_W_RESET_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_W_UNRESPONSIVE_CARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_E_NOT_TRANSACTED,
        scard.SCARD_E_COMM_DATA_LOST,
        scard.SCARD_F_COMM_ERROR,
        scard.SCARD_E_INVALID_HANDLE,  # pcscd dropped our handle after the card went away
    )
)
#: While waiting for a card, these mean "not (yet) a card we can talk to": keep waiting.
NOT_READY = frozenset(
    _code(c)
    for c in (
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_W_UNRESPONSIVE_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_E_NOT_TRANSACTED,
        scard.SCARD_E_PROTO_MISMATCH,
        scard.SCARD_F_COMM_ERROR,
    )
)
_NO_SERVICE = frozenset(_code(c) for c in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED))

SHARE_MODES = {"shared": scard.SCARD_SHARE_SHARED, "exclusive": scard.SCARD_SHARE_EXCLUSIVE}
DISPOSITIONS = {
    "leave": scard.SCARD_LEAVE_CARD,
    "reset": scard.SCARD_RESET_CARD,
    "unpower": scard.SCARD_UNPOWER_CARD,
}


#: PC/SC Part 3, 3.2.2.1.3 GET DATA: the UID of a contactless card, answered by the reader.
GET_UID = bytes.fromhex("FFCA000000")

#: ACR122U API manual 5.1: the reader's firmware version ("ACR122U2xx"), answered by the reader.
GET_FIRMWARE_VERSION = bytes.fromhex("FF00480000")

#: ACR122U "Bi-color LED and Buzzer Control" pseudo-APDUs (FF 00 40 P2 04 T1 T2 N BUZZER),
#: by outcome. P2 bits: 0 final red, 1 final green, 2 red mask, 3 green mask, 4 initial red
#: blink state, 5 initial green blink state, 6 red blink, 7 green blink; T1/T2 in 100 ms.
ACR122U_FEEDBACK: dict[str, bytes] = {
    # green for 500 ms with one beep, then both off
    "APPROVED": bytes.fromhex("FF0040AC0405010101"),
    # red twice with two beeps
    "DECLINED": bytes.fromhex("FF00405C0402020201"),
    # one short red blink and beep: present the card again / look at the terminal
    "OTHER": bytes.fromhex("FF00405C0402010101"),
}


def _error(what: str, hresult: int) -> str:
    return f"{what}: {scard.SCardGetErrorMessage(hresult).strip()} (0x{_code(hresult):08X})"


def _establish() -> int:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        hint = (
            " - is pcscd running? (scripts/pcscd-start.sh)" if _code(hresult) in _NO_SERVICE else ""
        )
        raise TransportError(_error("SCardEstablishContext", hresult) + hint)
    return context


def _list(context: int) -> list[str]:
    hresult, readers = scard.SCardListReaders(context, [])
    if _code(hresult) == _code(scard.SCARD_E_NO_READERS_AVAILABLE):
        return []
    if hresult != scard.SCARD_S_SUCCESS:
        raise TransportError(_error("SCardListReaders", hresult))
    return list(readers)


def list_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows, in pcscd's order."""
    context = _establish()
    try:
        return _list(context)
    finally:
        scard.SCardReleaseContext(context)


def wait_for_card_state(reader: str, *, present: bool, timeout: float) -> float:
    """Block until pcscd reports a card in *reader* (``present=True``) or none; return the
    seconds waited. ``SCardGetStatusChange`` answers at pcscd's next poll (400 ms), so nothing
    sleeps or polls here. Raises :class:`TimeoutError`, or :class:`TransportError` when pcscd
    fails."""
    context = _establish()
    start = time.monotonic()
    deadline = start + timeout
    state = scard.SCARD_STATE_UNAWARE
    try:
        while True:
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            hresult, states = scard.SCardGetStatusChange(context, wait_ms, [(reader, state)])
            if hresult == scard.SCARD_S_SUCCESS:
                event_state = states[0][1]
                if bool(event_state & scard.SCARD_STATE_PRESENT) == present:
                    return time.monotonic() - start
                state = event_state & ~scard.SCARD_STATE_CHANGED
            elif _code(hresult) != _code(scard.SCARD_E_TIMEOUT):
                raise TransportError(_error(f"SCardGetStatusChange({reader})", hresult))
            if time.monotonic() >= deadline:
                what = "a card" if present else "no card"
                raise TimeoutError(f"pcscd did not report {what} in {reader!r} within {timeout} s")
    finally:
        scard.SCardReleaseContext(context)


def resolve_reader(selector: str, readers: list[str]) -> str:
    """The reader named by *selector*: ``""`` the first, digits an index, else an exact name or
    a case-insensitive substring that matches exactly one reader."""
    if not readers:
        raise TransportError("no PC/SC reader attached (pcscd lists none)")
    if selector == "":
        return readers[0]
    if selector.isdigit():
        index = int(selector)
        if index >= len(readers):
            raise TransportError(f"no PC/SC reader {index}; readers: {readers}")
        return readers[index]
    if selector in readers:
        return selector
    matches = [r for r in readers if selector.lower() in r.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise TransportError(f"no PC/SC reader matches {selector!r}; readers: {readers}")
    raise TransportError(f"{selector!r} matches several readers, name one: {matches}")


class PcscTransport(BaseTransport):
    """A PC/SC reader slot.

    :param selector: what follows ``pcsc:`` in the spec.
    :param share: ``"shared"`` (default) or ``"exclusive"`` (``SCardConnect`` share mode).
    :param disposition: what :meth:`disconnect` does to the card: ``"leave"`` (default),
        ``"reset"`` or ``"unpower"``. "leave" because a contactless card gets a fresh
        activation when it comes back into the field anyway, and pcscd powers an unused card
        down by itself ~1.2 s after the last disconnect (the next connect powers it on again).
        Measured with vpcd: a reset or unpower sent to a card that has just left the field makes
        pcscd report the slot empty without a card event and miss the next card for seconds.
    :param apdu_timeout: seconds one ``SCardTransmit`` may take before the card is declared
        gone (:class:`CardRemovedError`); ``None`` trusts the reader's own timeouts.
    """

    def __init__(
        self,
        selector: str = "",
        *,
        share: str = "shared",
        disposition: str = "leave",
        apdu_timeout: float | None = 10.0,
    ) -> None:
        super().__init__()
        if share not in SHARE_MODES:
            raise ValueError(f"share must be one of {sorted(SHARE_MODES)}, not {share!r}")
        if disposition not in DISPOSITIONS:
            raise ValueError(f"disposition must be one of {sorted(DISPOSITIONS)}")
        self.selector = selector
        self.spec = f"pcsc:{selector}"
        self.share = share
        self.disposition = disposition
        self.apdu_timeout = apdu_timeout
        self.reader: str | None = None
        self.atr: bytes | None = None
        self.protocol: int | None = None
        self._context: int | None = None
        self._card: int | None = None
        self._worker: _Worker | None = None
        self._lost = False  # the last card was lost mid-tap and must be presented again
        self._firmware: bytes | None = None  # FF 00 48 00 00 answer of the connected card's reader

    # -- context ------------------------------------------------------------------------

    def _ensure_context(self) -> int:
        if self._context is None:
            self._context = _establish()
        return self._context

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a PC/SC call that may block on the card, bounded by ``apdu_timeout``."""
        if self.apdu_timeout is None:
            return fn(*args)
        if self._worker is None:
            self._worker = _Worker(f"pcsc-call {self.selector}")
        try:
            return self._worker.call(fn, args, self.apdu_timeout)
        except _CallTimeout:
            self._lost = self._card is not None
            self._abandon()
            raise CardRemovedError(
                f"{self.reader}: no answer from the card within {self.apdu_timeout} s"
            ) from None

    def _abandon(self) -> None:
        """Forget a context whose call is stuck in pcscd; never touch it again."""
        log.warning("abandoning PC/SC context of %s after a call that did not return", self.reader)
        # The stuck worker keeps its job; it exits after it if the call ever returns.
        if self._worker is not None:
            self._worker.shutdown()
        self._worker = None
        self._context = None
        self._card = None

    def readers(self) -> list[str]:
        return _list(self._ensure_context())

    def probe(self) -> None:
        """The selector names exactly one reader pcscd lists (:func:`resolve_reader`)."""
        self.reader = resolve_reader(self.selector, self.readers())

    # -- Transport ----------------------------------------------------------------------

    def connect(self, timeout: float | None = None) -> bytes:
        """Wait for a card in the reader (``SCardGetStatusChange``), connect with T=0 or T=1
        and return the ATR. Raises :class:`NoCardError` when *timeout* seconds pass first, or
        when :meth:`cancel` is called from another thread.

        After a :class:`CardRemovedError` the card must be presented again (EMV Contactless
        Book A, Try Again): a card pcscd still lists from before the loss is not taken; we
        wait until pcscd reports a card event (its event counter in the upper 16 bits of the
        reader state moves), which it does within one 400 ms poll of the card going away.
        """
        if self._card is not None:
            self.disconnect()
        context = self._ensure_context()
        self.reader = resolve_reader(self.selector, _list(context))
        deadline = None if timeout is None else time.monotonic() + timeout
        state = scard.SCARD_STATE_UNAWARE
        lost_events: int | None = None
        while True:
            if deadline is None:
                wait_ms = scard.INFINITE
            else:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            hresult, states = scard.SCardGetStatusChange(context, wait_ms, [(self.reader, state)])
            code = _code(hresult)
            if code == _code(scard.SCARD_E_TIMEOUT):
                again = " (the card that left must be presented again)" if self._lost else ""
                raise NoCardError(f"{self.reader}: no card within {timeout} s{again}")
            if code == _code(scard.SCARD_E_CANCELLED):
                raise NoCardError(f"{self.reader}: waiting for a card was cancelled")
            if hresult != scard.SCARD_S_SUCCESS:
                raise TransportError(_error(f"SCardGetStatusChange({self.reader})", hresult))
            _, event_state, _atr = states[0]
            if event_state & scard.SCARD_STATE_UNKNOWN:
                raise TransportError(f"reader {self.reader!r} disappeared")
            if self._lost and lost_events is None:
                lost_events = event_state >> 16
            if self._lost and (event_state >> 16) != lost_events:
                self._lost = False  # pcscd has seen the lost card go (or come anew)
            present = event_state & scard.SCARD_STATE_PRESENT
            if present and not event_state & scard.SCARD_STATE_MUTE and not self._lost:
                atr = self._try_connect(context)
                if atr is not None:
                    return atr
            if deadline is not None and time.monotonic() >= deadline:
                raise NoCardError(f"{self.reader}: no card within {timeout} s")
            state = event_state & ~scard.SCARD_STATE_CHANGED

    def _try_connect(self, context: int) -> bytes | None:
        hresult, card, protocol = scard.SCardConnect(
            context,
            self.reader,
            SHARE_MODES[self.share],
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if _code(hresult) in NOT_READY:
            log.debug("%s: card not ready (%s)", self.reader, _error("SCardConnect", hresult))
            return None
        if hresult != scard.SCARD_S_SUCCESS:
            raise TransportError(_error(f"SCardConnect({self.reader})", hresult))
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(card)
        if hresult != scard.SCARD_S_SUCCESS:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
            if _code(hresult) in NOT_READY:
                return None
            raise TransportError(_error("SCardStatus", hresult))
        self._card, self.protocol, self.atr = card, protocol, bytes(atr)
        self._firmware = None
        self.exchanges = []
        log.debug("%s: card connected, T=%d, ATR %s", self.reader, protocol - 1, self.atr.hex())
        return self.atr

    def cancel(self) -> None:
        """From another thread: make a pending :meth:`connect` give up (``SCardCancel``)."""
        if self._context is not None:
            scard.SCardCancel(self._context)

    def _send(self, apdu: bytes) -> bytes:
        if self._card is None:
            if self._lost:
                raise CardRemovedError(f"{self.reader}: the card left the field; connect again")
            raise TransportError(f"{self.spec}: transmit before connect")
        pci = scard.SCARD_PCI_T0 if self.protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        hresult, response = self._call(scard.SCardTransmit, self._card, pci, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            message = _error(f"SCardTransmit({self.reader})", hresult)
            if _code(hresult) in CARD_GONE:
                self._drop_card()
                raise CardRemovedError(message)
            raise TransportError(message)
        if not response:
            # vpcd answers "success, 0 bytes" when the card's socket closed mid-APDU; a real
            # reader answers nothing only when the card stopped answering. Either way: gone.
            self._drop_card()
            raise CardRemovedError(f"{self.reader}: the card sent no response (left the field)")
        return bytes(response)

    def _drop_card(self) -> None:
        self._lost = True
        card, self._card = self._card, None
        if card is not None:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)

    def disconnect(self) -> None:
        """Release the card with the configured disposition; ignore a card already gone."""
        card, self._card = self._card, None
        if card is not None:
            try:
                self._call(scard.SCardDisconnect, card, DISPOSITIONS[self.disposition])
            except CardRemovedError:
                pass

    # -- reader extras ------------------------------------------------------------------

    @property
    def is_acr122u(self) -> bool:
        """An ACR122U by its PC/SC name; on pcscd's virtual reader (vpcd, whose name says
        nothing), by the firmware version pseudo-APDU ``FF 00 48 00 00`` (ACR122U API manual,
        5.1) that an ACR122U personality of the card side answers, asked once per card. Other
        readers are never sent it."""
        if self.reader is None:
            return False
        if "ACR122" in self.reader.upper():
            return True
        if "VIRTUAL PCD" not in self.reader.upper():
            return False
        if self._card is not None and self._firmware is None:
            try:
                self._firmware = self._send(GET_FIRMWARE_VERSION)
            except TransportError:
                self._firmware = b""
        return bool(self._firmware and self._firmware.startswith(b"ACR122U"))

    def uid(self) -> bytes | None:
        """The card's UID through the reader's GET DATA pseudo-APDU (``FF CA 00 00 00``,
        PC/SC Part 3); ``None`` when the reader does not answer it with ``9000`` (vpcd hands it
        to the card). Not recorded in :attr:`exchanges`: it is not a card command."""
        response = self._send(GET_UID)
        return response[:-2] if len(response) >= 2 and response[-2:] == b"\x90\x00" else None

    def feedback(self, outcome: str) -> bool:
        """LED and buzzer for the *outcome* on an ACR122U (green and a beep for APPROVED,
        red and two beeps for DECLINED, a short red blink otherwise); silent on other
        readers. Best effort: returns whether the reader took the command.

        With a card connected the pseudo-APDU goes through ``SCardTransmit``; without one it
        needs a direct connection and ``SCardControl(SCARD_CTL_CODE(1))``, which libccid only
        allows with ``ifdDriverOptions 0x0001`` in its Info.plist."""
        if not self.is_acr122u:
            return False
        command = ACR122U_FEEDBACK.get(outcome, ACR122U_FEEDBACK["OTHER"])
        try:
            if self._card is not None:
                answer = self._send(command)
            else:
                answer = self._control_direct(command)
        except TransportError as exc:
            log.debug("%s: LED/buzzer command refused: %s", self.reader, exc)
            return False
        return answer[:1] == b"\x90"

    def _control_direct(self, command: bytes) -> bytes:
        context = self._ensure_context()
        hresult, card, _protocol = scard.SCardConnect(
            context, self.reader, scard.SCARD_SHARE_DIRECT, 0
        )
        if hresult != scard.SCARD_S_SUCCESS:
            raise TransportError(_error("SCardConnect(DIRECT)", hresult))
        try:
            hresult, answer = scard.SCardControl(card, scard.SCARD_CTL_CODE(1), list(command))
            if hresult != scard.SCARD_S_SUCCESS:
                raise TransportError(_error("SCardControl", hresult))
            return bytes(answer)
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)

    def close(self) -> None:
        """Disconnect and release the PC/SC context."""
        self.disconnect()
        context, self._context = self._context, None
        if context is not None:
            scard.SCardReleaseContext(context)
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None

    def __exit__(self, *exc_info: object) -> None:
        self.close()
