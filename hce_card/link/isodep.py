"""The card (PICC) side of ISO/IEC 14443-4, the half-duplex block transmission protocol
("ISO-DEP") that carries APDUs over a contactless link. nfcpy implements only the reader side;
this module is the other one, independent of any radio: it talks to a :class:`FrameIO`
(one frame out, the next frame in), so that it runs on nfcpy's ``listen``/``exchange`` and, in
unit tests, on a scripted reader.

References (ISO/IEC 14443-4:2016 numbering):
- 5.1 / 5.2  RATS and ATS: FSDI (the reader's frame size), CID; T0, TA(1), TB(1) (FWI, SFGI),
  TC(1) (CID/NAD support) of the ATS.
- 7.1        Block format: PCB, optional CID and NAD, INF, (CRC, added by the radio).
- 7.2 / 7.3  Frame waiting time: FWT = (256 × 16 / fc) × 2^FWI; S(WTX) with WTXM 1-59.
- 7.5.2      Chaining (b5 of the PCB of an I-block), acknowledged with R(ACK).
- 7.5.3      Block numbering rules (C: the PICC starts at 1; D: toggled on each I-block;
             E: toggled on an R(ACK) whose number differs, to continue chaining).
- 7.5.4      Block handling rules for the PICC (10: S(WTX) instead of an I- or R-block;
             11: R(ACK)/R(NAK) with the current number → re-send the last block;
             12: R(NAK) with another number → R(ACK); 13: R(ACK) with another number while
             chaining → next block).
- 8          S(DESELECT): answered with S(DESELECT), then the PICC is in the HALT state.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from .base import SW_NO_PRECISE_DIAGNOSIS, describe_command

__all__ = [
    "DEFAULT_ATS",
    "FSD_TABLE",
    "Ats",
    "FieldOff",
    "FrameIO",
    "FrameTimeout",
    "IsoDepCard",
    "SessionEnd",
    "ats_for",
    "fsd_from_rats",
]

log = logging.getLogger("emvtap.link.isodep")

#: FSDI/FSCI → frame size in bytes (ISO/IEC 14443-4, 5.1 table 1; 9-15 cap at 256 here).
FSD_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)
#: The ATS PN53x firmware sends by default (nfcpy ``rats_res``): FSCI 8 (256 bytes); TA(1) 80
#: (106 kbit/s only, same in both directions); TB(1) 70 (FWI 7, SFGI 0); TC(1) 02 (CID
#: supported, NAD not).
DEFAULT_ATS = bytes.fromhex("0578807002")
#: The carrier frequency fc in Hz, for the frame waiting time.
FC = 13.56e6
#: Longest FWT an ATS can ask for (FWI 14), and the WTX multiplier's range (7.3).
FWT_MAX = 4096 * 2**14 / FC
WTXM_MAX = 59
#: The longest command APDU (ISO/IEC 7816-4, 5.1: extended case 4, header 4 ‖ Lc 3 ‖ 65535
#: data ‖ Le 2): a chained command that grows past it is answered 6700 unread.
MAX_COMMAND_APDU = 4 + 3 + 0xFFFF + 2
SW_WRONG_LENGTH = b"\x67\x00"

_PCB_I, _PCB_R, _PCB_S = 0x02, 0xA2, 0xC2
_CHAINING, _CID_FOLLOWS, _NAD_FOLLOWS, _NAK = 0x10, 0x08, 0x04, 0x10
_S_WTX = 0x30


class FrameTimeout(Exception):
    """No frame from the reader within the wait asked for."""


class FieldOff(Exception):
    """The reader switched its field off or went away (nfcpy ``BrokenLinkError``)."""


class FrameIO(Protocol):
    """The radio, as the card sees it: send one frame (or nothing: ``None``) and wait up to
    *timeout* seconds for the next (``0``: send only, return ``None``).

    Raises :class:`FrameTimeout` or :class:`FieldOff`."""

    def exchange(self, frame: bytes | None, timeout: float) -> bytes | None: ...


class SessionEnd(Enum):
    DESELECTED = "deselected"  # S(DESELECT): the reader is done with us
    FIELD_OFF = "field off"  # the reader went away
    IDLE = "idle timeout"  # no frame for idle_timeout seconds
    REMOVED = "removed"  # the card was taken out of the field (tests)
    STOPPED = "stopped"  # the link is shutting down


@dataclass(frozen=True)
class Ats:
    """The parts of an ATS this side needs (ISO/IEC 14443-4, 5.2)."""

    raw: bytes
    fsc: int
    fwi: int
    cid_supported: bool
    nad_supported: bool
    historical_bytes: bytes

    @property
    def fwt(self) -> float:
        """Frame waiting time, seconds: (256 × 16 / fc) × 2^FWI (7.2)."""
        return 4096 * 2**self.fwi / FC

    @classmethod
    def parse(cls, ats: bytes) -> Ats:
        if not ats or ats[0] != len(ats) or len(ats) < 2:
            raise ValueError(f"ATS {ats.hex()}: TL must be the ATS length")
        t0 = ats[1]
        rest = list(ats[2:])
        ta = rest.pop(0) if t0 & 0x10 and rest else None
        tb = rest.pop(0) if t0 & 0x20 and rest else 0x40  # default FWI 4
        tc = rest.pop(0) if t0 & 0x40 and rest else 0x02  # default: CID supported
        del ta
        fwi = tb >> 4
        if fwi > 14:
            raise ValueError(f"ATS {ats.hex()}: FWI 15 is RFU")
        return cls(
            raw=bytes(ats),
            fsc=FSD_TABLE[min(t0 & 0x0F, 8)],
            fwi=fwi,
            cid_supported=bool(tc & 0x02),
            nad_supported=bool(tc & 0x01),
            historical_bytes=bytes(rest),
        )


def ats_for(historical_bytes: bytes = b"", *, fwi: int = 7, fsci: int = 8) -> bytes:
    """An ATS like :data:`DEFAULT_ATS` with other historical bytes, FWI or FSCI."""
    if not 0 <= fwi <= 14 or not 0 <= fsci <= 8:
        raise ValueError("FWI must be 0-14 and FSCI 0-8")
    body = bytes([0x70 | fsci, 0x80, fwi << 4, 0x02]) + historical_bytes
    return bytes([len(body) + 1]) + body


def fsd_from_rats(rats: bytes) -> tuple[int, int]:
    """(FSD, CID) from a RATS ``E0 <FSDI|CID>`` (ISO/IEC 14443-4, 5.1)."""
    if len(rats) < 2 or rats[0] != 0xE0:
        raise ValueError(f"not a RATS: {rats.hex()}")
    return FSD_TABLE[min(rats[1] >> 4, 8)], rats[1] & 0x0F


class _Worker:
    """Runs ``card.process`` off the protocol thread, so that the protocol thread can send
    S(WTX) while a slow command computes. One daemon thread: commands stay in order."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], bytes], _Result] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, result = job
            try:
                result.value = fn()
            except BaseException as exc:  # reported by the caller
                result.error = exc
            result.done.set()

    def submit(self, fn: Callable[[], bytes]) -> _Result:
        result = _Result()
        self._jobs.put((fn, result))
        return result

    def shutdown(self) -> None:
        self._jobs.put(None)


class _Result:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: bytes | None = None
        self.error: BaseException | None = None


class IsoDepCard:
    """One card's ISO-DEP side, session after session.

    :param process: the card, ``apdu -> response`` (data ‖ SW).
    :param ats: the ATS this card answers RATS with (or that the reader chip answered for us);
        its FWI sets the frame waiting time, hence when S(WTX) is needed.
    :param idle_timeout: seconds without a frame after which a session is considered over.
    :param wtx_after: fraction of FWT after which a still-computing command gets an S(WTX).
    :param wtxm: the WTX multiplier asked for (1-59): each S(WTX) buys ``wtxm × FWT``.
    :param should_stop: polled while waiting: a true value ends the session (``STOPPED``).
    :param is_removed: polled likewise: a true value ends it without a word (``REMOVED``).
    """

    def __init__(
        self,
        process: Callable[[bytes], bytes],
        ats: bytes = DEFAULT_ATS,
        *,
        name: str = "iso-dep",
        idle_timeout: float = 5.0,
        wtx_after: float = 0.5,
        wtxm: int = 13,
        max_command_seconds: float = 30.0,
        should_stop: Callable[[], bool] = lambda: False,
        is_removed: Callable[[], bool] = lambda: False,
        poll: float = 0.25,
    ) -> None:
        if not 1 <= wtxm <= WTXM_MAX:
            raise ValueError(f"WTXM must be 1-{WTXM_MAX}")
        self.process = process
        self.ats = Ats.parse(ats)
        self.name = name
        self.idle_timeout = idle_timeout
        self.wtx_after = wtx_after
        self.wtxm = wtxm
        self.max_command_seconds = max_command_seconds
        self.should_stop = should_stop
        self.is_removed = is_removed
        self.poll = poll
        self.commands = 0
        self.wtx_sent = 0
        self._worker: _Worker | None = None  # started with the first command
        self._reset_session(fsd=256, cid=0)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None

    # -- session state ------------------------------------------------------------------

    def _reset_session(self, fsd: int, cid: int) -> None:
        self.fsd = fsd
        self.cid = cid
        self.block_number = 1  # rule C
        self._rx_chain = bytearray()
        self._rx_overflow = False
        self._tx_rest = b""
        self._last_sent: bytes | None = None

    def activate(self, rats: bytes) -> bytes:
        """Take a RATS, start a session, return the ATS to send (5.1, 5.2)."""
        fsd, cid = fsd_from_rats(rats)
        self._reset_session(fsd, cid if self.ats.cid_supported else 0)
        log.debug("%s: RATS %s: FSD %d, CID %d", self.name, rats.hex(), fsd, cid)
        return self.ats.raw

    def activated_by_reader_chip(self, fsd: int = 256) -> None:
        """Start a session whose RATS the reader chip answered (PN53x, RC-S380): the FSD is
        not known to us; EMV PCDs use 256 (EMV Contactless Book D)."""
        self._reset_session(fsd, 0)

    # -- frames -------------------------------------------------------------------------

    def _frame(self, pcb: int, inf: bytes = b"", with_cid: bool = False) -> bytes:
        if with_cid:
            return bytes([pcb | _CID_FOLLOWS, self.cid]) + inf
        return bytes([pcb]) + inf

    def _max_inf(self, with_cid: bool) -> int:
        return self.fsd - 3 - (1 if with_cid else 0)  # PCB, CRC_A (2), CID

    def _next_i_block(self, with_cid: bool) -> bytes:
        size = self._max_inf(with_cid)
        chunk, self._tx_rest = self._tx_rest[:size], self._tx_rest[size:]
        pcb = _PCB_I | self.block_number | (_CHAINING if self._tx_rest else 0)
        return self._frame(pcb, chunk, with_cid)

    def run(self, io: FrameIO, first: bytes) -> SessionEnd:
        """Serve one session: *first* is the first block after activation (the first frame
        after the ATS, or the ``tt4_cmd`` a reader chip hands over). Returns why it ended."""
        frame = first
        try:
            while True:
                outcome = self._on_block(io, frame)
                if isinstance(outcome, SessionEnd):
                    return outcome
                frame = self._receive(io, outcome)
        except FrameTimeout:
            log.info("%s: no frame for %.1f s; session over", self.name, self.idle_timeout)
            return SessionEnd.IDLE
        except _Ended as ended:
            return ended.why

    def _receive(self, io: FrameIO, reply: bytes | None) -> bytes:
        """Send *reply* (if any) and wait for the next frame, in slices of ``poll`` seconds
        so that a stop or a removal is seen. Raises :class:`FrameTimeout` after
        ``idle_timeout``."""
        if reply is not None:
            self._last_sent = reply
        deadline = time.monotonic() + self.idle_timeout
        first = True
        while True:
            if self.is_removed():
                raise _Ended(SessionEnd.REMOVED)
            if self.should_stop():
                raise _Ended(SessionEnd.STOPPED)
            wait = min(self.poll, deadline - time.monotonic())
            if wait <= 0:
                raise FrameTimeout
            try:
                frame = io.exchange(reply if first else None, wait)
            except FrameTimeout:
                first = False
                continue
            except FieldOff:
                log.info("%s: field off", self.name)
                raise _Ended(SessionEnd.FIELD_OFF) from None
            if frame is None:
                raise FrameTimeout
            return frame

    def _on_block(self, io: FrameIO, frame: bytes) -> bytes | SessionEnd | None:
        """Handle one block from the reader; return the block to answer, no answer (None,
        for blocks to be ignored), or the end of the session."""
        if not frame:
            return None
        pcb = frame[0]
        with_cid = bool(pcb & _CID_FOLLOWS)
        offset = 1
        if with_cid:
            if len(frame) < 2 or (frame[1] & 0x0F) != self.cid:
                return None  # addressed to another card (or malformed): stay silent
            offset = 2
        elif self.cid != 0:
            return None  # a reader that gave us a CID must use it
        if pcb & 0xE2 == _PCB_I and not pcb & 0x20:
            if pcb & _NAD_FOLLOWS:
                offset += 1
            return self._on_i_block(io, pcb, frame[offset:], with_cid)
        if pcb & 0xE6 == _PCB_R:
            return self._on_r_block(pcb, with_cid)
        if pcb & 0xC7 == _PCB_S:
            if pcb & 0x30 == 0x00:  # S(DESELECT) (8): answer it, then HALT
                io_frame = self._frame(_PCB_S, b"", with_cid)
                self._last_sent = io_frame
                try:
                    io.exchange(io_frame, 0)
                except (FrameTimeout, FieldOff):
                    pass
                log.debug("%s: deselected", self.name)
                return SessionEnd.DESELECTED
            return None  # an S(WTX) response we did not wait for: ignore
        log.debug("%s: invalid block %s ignored", self.name, frame.hex())
        return None

    def _on_r_block(self, pcb: int, with_cid: bool) -> bytes | None:
        number = pcb & 0x01
        if number == self.block_number:  # rule 11
            return self._last_sent
        if pcb & _NAK:  # rule 12
            return self._frame(_PCB_R | self.block_number, b"", with_cid)
        if self._tx_rest:  # rules E and 13: the reader acknowledged our chained block
            self.block_number ^= 1
            return self._next_i_block(with_cid)
        return self._last_sent

    def _on_i_block(self, io: FrameIO, pcb: int, inf: bytes, with_cid: bool) -> bytes | None:
        self.block_number = pcb & 0x01  # rule D (equal to toggling for a conforming PCD)
        self._tx_rest = b""  # a new I-block ends whatever we were still sending
        if pcb & _CHAINING:  # 7.5.2: the reader chains a long command; acknowledge
            if len(self._rx_chain) + len(inf) > MAX_COMMAND_APDU:
                self._rx_overflow, self._rx_chain = True, bytearray()
            if not self._rx_overflow:
                self._rx_chain += inf
            return self._frame(_PCB_R | self.block_number, b"", with_cid)
        apdu = bytes(self._rx_chain + inf)
        overflow = self._rx_overflow or len(apdu) > MAX_COMMAND_APDU
        self._rx_chain, self._rx_overflow = bytearray(), False
        if overflow:
            log.warning("%s: chained command longer than %d bytes; answering 6700", self.name,
                        MAX_COMMAND_APDU)
            response: bytes | None = SW_WRONG_LENGTH
        else:
            response = self._compute(io, apdu, with_cid)
        if response is None:
            raise _Ended(SessionEnd.REMOVED)
        self._tx_rest = response
        return self._next_i_block(with_cid)

    def _compute(self, io: FrameIO, apdu: bytes, with_cid: bool) -> bytes | None:
        """Run the command; keep the reader waiting with S(WTX) while it computes (7.3)."""
        self.commands += 1
        log.debug("%s: command %s", self.name, describe_command(apdu))
        started = time.monotonic()
        if self._worker is None:
            self._worker = _Worker(f"{self.name} card")
        result = self._worker.submit(lambda: self.process(apdu))
        budget = self.ats.fwt * self.wtx_after
        while not result.done.wait(budget):
            if self.is_removed():
                return None
            if time.monotonic() - started > self.max_command_seconds:
                log.error(
                    "%s: %s still running after %.0f s; answering 6F00",
                    self.name,
                    describe_command(apdu),
                    self.max_command_seconds,
                )
                self._worker = _Worker(f"{self.name} card")  # the stuck one keeps its job
                return SW_NO_PRECISE_DIAGNOSIS
            self._request_wtx(io, with_cid)
            budget = min(self.ats.fwt * self.wtxm, FWT_MAX) * 0.75
        if self.is_removed():
            return None
        if result.error is not None:
            log.error("%s: card raised %r; answering 6F00", self.name, result.error)
            return SW_NO_PRECISE_DIAGNOSIS
        assert result.value is not None
        return result.value

    def _request_wtx(self, io: FrameIO, with_cid: bool) -> None:
        """S(WTX) request, then wait for the reader's S(WTX) response (7.3; rule 10)."""
        request = self._frame(0xF2, bytes([self.wtxm]), with_cid)
        self.wtx_sent += 1
        frame = self._receive(io, request)
        for _ in range(8):  # a reader that keeps NAKing is gone
            pcb = frame[0] if frame else 0
            if pcb & 0xF7 == 0xF2:
                return  # S(WTX) response
            if pcb & 0xE6 == _PCB_R and pcb & 0x01 == self.block_number:
                frame = self._receive(io, request)  # rule 11: it missed our request
                continue
            if pcb & 0xC7 == _PCB_S and pcb & 0x30 == 0:
                self._on_block(io, frame)
                raise _Ended(SessionEnd.DESELECTED)
            frame = self._receive(io, None)  # anything else: ignore
        raise _Ended(SessionEnd.FIELD_OFF)


class _Ended(Exception):
    def __init__(self, why: SessionEnd) -> None:
        super().__init__(why.value)
        self.why = why
