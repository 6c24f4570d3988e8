"""A simulated Sony RC-S380 (NFC Port-100 chip) at its USB interface: the object nfcpy's
``rcs380`` driver calls ``write(frame)`` and ``read(timeout)`` on. Its host frames are
``00 00 FF FF FF LEN(2, little endian) LCS D6 CMD … DCS 00`` (chip to host ``D7 CMD+1``) and the
ACK ``00 00 FF 00 FF 00``, as nfcpy's driver and its tests have them.

Unlike the PN53x, the Port-100 leaves the ISO/IEC 14443-3 Type A anticollision to the host:
the reader's driver sends SENS_REQ (26, 7 bits), SDD_REQ (93/95/97 20) and SEL_REQ
(93/95/97 70 …) with InCommRF, and the chip here answers them as a Type A card of the field
does (ISO/IEC 14443-3, 6.5: SENS_RES, the UID's cascade level with its BCC, SAK with the
cascade bit). As a target (TgCommRF with automatic anticollision) it hands the host the first
frame after selection (RATS).

Commands: InSetRF, InSetProtocol, InCommRF, SwitchRF, GetFirmwareVersion, GetPDDataVersion,
Get/SetCommandType, TgSetRF, TgSetProtocol, TgSetAuto, TgCommRF.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import struct
import threading
import time
from collections.abc import Callable

from .field import RELEASED, FieldInitiator, FieldTarget, TargetInfo
from .seam import next_frame

__all__ = ["ERRORS", "Port100Chip", "decode_frame", "encode_frame"]

log = logging.getLogger("emvtap.chipsim.rcs380")

ACK = bytes.fromhex("0000FF00FF00")
#: InCommRF / TgCommRF error flags (32 bits, little endian), as nfcpy's driver names them.
ERRORS = {"ok": 0x00000000, "crc": 0x00000004, "timeout": 0x00000080, "rf-off": 0x00000400}
#: GetFirmwareVersion: 1.11 (minor, major); GetPDDataVersion: 1.00.
FIRMWARE = bytes.fromhex("1101")
PD_DATA_VERSION = bytes.fromhex("0001")
#: TgCommRF: communication type 106A (11) and "activated" (3) in the answer's header.
COMM_106A, ACTIVATED = 0x0B, 0x03
#: The byte nfcpy's captures show between InCommRF's status and the received data (its
#: driver skips it).
IN_COMM_RF_FLAGS = 0x08
SENS_REQ, ALL_REQ = 0x26, 0x52
SEL_CODES = (0x93, 0x95, 0x97)


def encode_frame(data: bytes) -> bytes:
    length = struct.pack("<H", len(data))
    lcs = bytes([(256 - sum(length)) % 256])
    dcs = bytes([(256 - sum(data)) % 256, 0])
    return b"\x00\x00\xff\xff\xff" + length + lcs + bytes(data) + dcs


def decode_frame(frame: bytes) -> bytes | None:
    """The data of an information frame; None when the frame is no such frame."""
    if frame[:5] != b"\x00\x00\xff\xff\xff" or len(frame) < 10:
        return None
    length = struct.unpack("<H", frame[5:7])[0]
    if (sum(frame[5:8])) % 256 or len(frame) < 8 + length + 2:
        return None
    data = frame[8 : 8 + length]
    if (sum(data) + frame[8 + length]) % 256:
        return None
    return bytes(data)


def cascade_levels(uid: bytes) -> list[bytes]:
    """The UID as the Type A cascade levels answer it (ISO/IEC 14443-3, 6.5.4): a 7- or
    10-byte UID is split behind the cascade tag 88."""
    if len(uid) == 4:
        return [uid]
    if len(uid) == 7:
        return [b"\x88" + uid[0:3], uid[3:7]]
    return [b"\x88" + uid[0:3], b"\x88" + uid[3:6], uid[6:10]]


def bcc(part: bytes) -> int:
    value = 0
    for byte in part:
        value ^= byte
    return value


class Port100Chip:
    """One simulated NFC Port-100 behind a :mod:`.field` end (initiator or target)."""

    TYPE = "USB"

    def __init__(self, field: FieldInitiator | FieldTarget | None = None) -> None:
        self.field = field
        self.protocol: dict[int, int] = {}
        self.tg_protocol: dict[int, int] = {}
        self.rf_on = False
        self.commands: list[bytes] = []
        self._air: TargetInfo | None = None  # the target being activated (anticollision)
        self._level = 0
        self._out: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0
        self._cancel = threading.Event()
        self._faults: list[str] = []
        self.closed = False
        self._handlers: dict[int, Callable[[bytes], bytes]] = {
            0x00: lambda params: b"\x00",  # InSetRF
            0x02: self._in_set_protocol,
            0x04: self._in_comm_rf,
            0x06: self._switch_rf,
            0x12: lambda params: b"",  # ResetDevice
            0x20: lambda params: FIRMWARE,
            0x22: lambda params: PD_DATA_VERSION,
            0x28: lambda params: bytes(7) + b"\x03",  # GetCommandType
            0x2A: lambda params: b"\x00",  # SetCommandType
            0x40: self._tg_set_rf,
            0x42: self._tg_set_protocol,
            0x44: lambda params: b"\x00",  # TgSetAuto
            0x48: self._tg_comm_rf,
        }
        self._waiting = {0x04, 0x48}

    @property
    def manufacturer_name(self) -> str:
        return "SONY"

    @property
    def product_name(self) -> str:
        return "RC-S380/P"

    def inject(self, fault: str, count: int = 1) -> None:
        """The next *count* InCommRF after activation end in ``rf-error`` (CRC error) or
        ``timeout`` (the frame is lost)."""
        if fault not in ("rf-error", "timeout"):
            raise ValueError(f"unknown fault {fault!r}; expected rf-error or timeout")
        with self._lock:
            self._faults.extend([fault] * count)

    # -- transport seam --------------------------------------------------------------------

    def write(self, frame: bytes, timeout: int = 0) -> None:
        frame = bytes(frame)
        if self.closed:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._cancel.set()
            self._cancel = threading.Event()
            while not self._out.empty():
                self._out.get_nowait()
        if frame == ACK:
            return
        data = decode_frame(frame)
        if data is None or len(data) < 2 or data[0] != 0xD6 or data[1] not in self._handlers:
            log.debug("frame refused: %s", frame.hex())
            self._out.put(b"\x00\x00\xff\xff\xff")  # error frame: nfcpy reads "err"
            return
        self.commands.append(data)
        self._out.put(ACK)
        code, params = data[1], data[2:]
        if code in self._waiting:
            threading.Thread(target=self._run, args=(generation, code, params), daemon=True,
                             name=f"chipsim-rcs380-{code:02x}").start()
        else:
            self._run(generation, code, params)

    def read(self, timeout: int = 0) -> bytes:
        return next_frame(self._out, timeout, closed=self.closed)

    def close(self) -> None:
        with self._lock:
            self._cancel.set()
        if isinstance(self.field, FieldInitiator):
            self.field.field_off()
        elif isinstance(self.field, FieldTarget):
            self.field.close()
        self.closed = True

    def _run(self, generation: int, code: int, params: bytes) -> None:
        try:
            answer = self._handlers[code](params)
        except Exception:
            log.exception("chip simulator failed on command %02X", code)
            answer = b"\x01"
        with self._lock:
            if generation == self._generation:
                self._out.put(encode_frame(bytes([0xD7, code + 1]) + answer))

    # -- initiator -------------------------------------------------------------------------

    def _in_set_protocol(self, params: bytes) -> bytes:
        for i in range(0, len(params) - 1, 2):
            self.protocol[params[i]] = params[i + 1]
        return b"\x00"

    def _switch_rf(self, params: bytes) -> bytes:
        self.rf_on = bool(params[:1] == b"\x01")
        if not self.rf_on:
            self._air = None
            if isinstance(self.field, FieldInitiator):
                self.field.field_off()
            elif isinstance(self.field, FieldTarget):
                self.field.disarm()
        return b"\x00"

    @staticmethod
    def _error(name: str) -> bytes:
        return struct.pack("<I", ERRORS[name])

    def _received(self, data: bytes) -> bytes:
        return self._error("ok") + bytes([IN_COMM_RF_FLAGS]) + data

    def _in_comm_rf(self, params: bytes) -> bytes:
        units = struct.unpack("<H", params[0:2])[0]  # 0.1 ms units
        timeout = units / 10000 if units else 1.0
        data = params[2:]
        field = self.field if isinstance(self.field, FieldInitiator) else None
        short_frame = self.protocol.get(0x07, 8) == 7  # last_byte_bit_count
        if short_frame and data in (bytes([SENS_REQ]), bytes([ALL_REQ])):
            self.rf_on = True
            self._air = field.poll() if field is not None else None
            self._level = 0
            if self._air is None:
                return self._error("timeout")
            return self._received(self._air.sens_res)
        if self._air is not None and len(data) == 2 and data[0] in SEL_CODES and data[1] == 0x20:
            levels = cascade_levels(self._air.nfcid1)
            level = SEL_CODES.index(data[0])
            if level >= len(levels):
                return self._error("timeout")
            return self._received(levels[level] + bytes([bcc(levels[level])]))
        if self._air is not None and len(data) == 7 and data[0] in SEL_CODES and data[1] == 0x70:
            levels = cascade_levels(self._air.nfcid1)
            level = SEL_CODES.index(data[0])
            if level >= len(levels) or data[2:6] != levels[level]:
                return self._error("timeout")
            if level < len(levels) - 1:
                return self._received(b"\x04")  # SAK: UID not complete
            sel_res, self._air = self._air.sel_res, None  # selected: the target's turn now
            return self._received(sel_res)
        if field is None or not field.active:
            time.sleep(min(timeout, 0.05))
            return self._error("timeout")
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        answer = field.transceive(data, timeout)
        if fault == "timeout" or answer is None:
            return self._error("timeout")
        if fault == "rf-error":
            return self._error("crc")
        return self._received(answer)

    # -- target ----------------------------------------------------------------------------

    def _tg_set_rf(self, params: bytes) -> bytes:
        if isinstance(self.field, FieldTarget):
            self.field.disarm()  # a new listen: any session left over is over
        return b"\x00"

    def _tg_set_protocol(self, params: bytes) -> bytes:
        for i in range(0, len(params) - 1, 2):
            self.tg_protocol[params[i]] = params[i + 1]
        return b"\x00"

    def _tg_answer(self, status: str, data: bytes = b"", activated: bool = True) -> bytes:
        head = bytes([COMM_106A, 0x00, ACTIVATED]) if activated else bytes(3)
        return head + self._error(status) + data

    def _tg_comm_rf(self, params: bytes) -> bytes:
        (_guard, _send_timeout, mdaa, nfca, _nfcf, _halted, _arae,
         recv_timeout) = struct.unpack("<HH?6s18s??H", params[:33])
        transmit = params[33:]
        field = self.field
        if not isinstance(field, FieldTarget):
            return self._tg_answer("timeout", activated=False)
        cancelled = self._cancel
        if transmit and not field.send(transmit):
            return self._tg_answer("rf-off")
        if recv_timeout == 0:
            return self._tg_answer("ok")
        wait = recv_timeout / 1000
        deadline = time.monotonic() + wait
        if field.session is None:
            if not mdaa:
                return self._tg_answer("timeout", activated=False)
            field.arm(TargetInfo(sens_res=nfca[0:2], sel_res=nfca[5:6],
                                 nfcid1=b"\x08" + nfca[2:5]))
            if field.wait_activation(wait, cancelled) is None:
                return self._tg_answer("timeout", activated=False)
        frame = field.receive(max(0.0, deadline - time.monotonic()) or 0.001, cancelled)
        if frame is None:
            return self._tg_answer("timeout")
        if frame == RELEASED:
            if self.tg_protocol.get(0x01):  # rf_off_error on: the field's end is reported
                return self._tg_answer("rf-off")
            return self._tg_answer("timeout", activated=False)
        return self._tg_answer("ok", frame)
