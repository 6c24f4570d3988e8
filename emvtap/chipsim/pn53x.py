"""A simulated NXP PN533 (and PN532) at the host interface: the object nfcpy's drivers
(``nfc/clf/pn533.py``, ``pn532.py`` on the ``pn53x`` base) call ``write(frame)`` and
``read(timeout)`` on where a USB or serial transport would be, answering with the frames of
the PN533 user manual (UM0801-03, 8 "Commands") and the PN532 user manual (UM0701-02, 7).

What is simulated is what a payment tap uses: the host protocol (ACK, NACK, normal and
extended frames, error frame, a command cancelled by an ACK), Diagnose, GetFirmwareVersion,
GetGeneralStatus, Read/WriteRegister (a register file; the PN533 answers with a status byte,
the PN532 without), SetParameters, RFConfiguration (field on/off, the response timeout),
InListPassiveTarget at 106 kbps Type A, InCommunicateThru, InRelease/InDeselect, and as a
target TgInitAsTarget, TgGetInitiatorCommand, TgResponseToInitiator, TgGetData, TgSetData
and TgGetTargetStatus. The RF side is a :mod:`.field`.

Faults can be injected (:meth:`Pn53xChip.inject`): the next N reader frames end in an RF
error (CRC error, status 0x02) or get no answer (timeout, status 0x01).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from . import hostframe
from .field import RELEASED, FieldInitiator, FieldTarget, TargetInfo
from .seam import next_frame

__all__ = ["STATUS", "Pn53xChip"]

log = logging.getLogger("emvtap.chipsim.pn53x")

#: Status bytes of the PN533 user manual, 7.1 "Error handling" (the PN532 manual, 7.1, has
#: the same codes).
STATUS = {
    "ok": 0x00,
    "timeout": 0x01,
    "crc": 0x02,
    "released": 0x29,
    "context": 0x27,
    "parameter": 0x10,
}

#: GetFirmwareVersion answers (IC, Ver, Rev, Support): PN533 v2.7, PN532 v1.4 (as in the ACR122U).
FIRMWARE = {"pn533": bytes.fromhex("33020707"), "pn532": bytes.fromhex("32010407")}
#: The register that holds the last byte sent: REQA (26) when no Type A target answered.
CIU_FIFO_DATA = 0x6339
#: The PN533's EEPROM (0xA000-0xA0FF): USB string descriptors as TLVs (3: product,
#: 4: manufacturer), as nfcpy's pn533 driver reads them.
EEPROM_BASE = 0xA000


def _usb_string(tag: int, text: str) -> bytes:
    descriptor = bytes([2 + 2 * len(text), 3]) + text.encode("utf-16-le")
    return bytes([tag, len(descriptor)]) + descriptor


def _eeprom(vendor: str, product: str) -> bytes:
    content = _usb_string(3, product) + _usb_string(4, vendor)
    return content + b"\xff" * (256 - len(content))


class Pn53xChip:
    """One simulated chip. *role* ``initiator`` puts a :class:`FieldInitiator` behind it (the
    reader), ``target`` a :class:`FieldTarget` (the card emulator); ``None`` leaves the RF
    side empty (the chip answers host commands; polls find nothing)."""

    TYPE = "USB"

    def __init__(
        self,
        variant: str = "pn533",
        field: FieldInitiator | FieldTarget | None = None,
        *,
        vendor: str = "emvtap",
        product: str | None = None,
        eeprom: bool = True,
    ) -> None:
        if variant not in FIRMWARE:
            raise ValueError(f"unknown PN53x variant {variant!r}; expected {sorted(FIRMWARE)}")
        self.variant = variant
        self.field = field
        self._manufacturer_name = vendor
        self._product_name = product or f"{variant.upper()} simulator"
        self.eeprom = _eeprom(vendor, self._product_name) if eeprom and variant == "pn533" else None
        self.registers: dict[int, int] = {CIU_FIFO_DATA: 0x26}
        self.rf_on = False
        #: RFConfiguration item 02 (ATR_RES, non-DEP) timeout index: 100 us << (n - 1).
        self.response_timeout_index = 0x0A
        #: Every command frame received, decoded (TFI, code, parameters), for tests.
        self.commands: list[bytes] = []
        self._out: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0
        self._cancel = threading.Event()
        self._faults: list[str] = []
        self.closed = False
        self._handlers: dict[int, Callable[[bytes], bytes | None]] = {
            0x00: self._diagnose,
            0x02: self._get_firmware_version,
            0x04: self._get_general_status,
            0x06: self._read_register,
            0x08: self._write_register,
            0x12: lambda params: b"",
            0x14: lambda params: b"",  # SAMConfiguration (PN532)
            0x16: lambda params: b"\x00",  # PowerDown (PN532)
            0x32: self._rf_configuration,
            0x4A: self._in_list_passive_target,
            0x42: self._in_communicate_thru,
            0x44: self._in_release,  # InDeselect
            0x52: self._in_release,
            0x8C: self._tg_init_as_target,
            0x88: self._tg_get_initiator_command,
            0x86: self._tg_get_data,
            0x90: self._tg_response_to_initiator,
            0x8E: self._tg_response_to_initiator,  # TgSetData
            0x8A: self._tg_get_target_status,
        }
        #: Commands that wait for the RF side; they run on a worker and an ACK cancels them.
        self._waiting = {0x8C, 0x88, 0x86, 0x42, 0x4A}

    # -- the transport seam (nfc.clf.transport.USB's read/write/close) ----------------------

    @property
    def manufacturer_name(self) -> str:
        return self._manufacturer_name

    @property
    def product_name(self) -> str:
        return self._product_name

    def write(self, frame: bytes, timeout: int = 0) -> None:
        frame = bytes(frame)
        if self.closed:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        if frame == hostframe.ACK:  # abort the command in progress (PN533 manual, 6.2.1.3)
            self._abort()
            return
        try:
            body = hostframe.decode(frame)
        except hostframe.FrameError as exc:
            log.debug("host frame refused: %s", exc)
            self._out.put(hostframe.NACK)
            return
        if len(body) < 2 or body[0] != hostframe.TFI_HOST or body[1] not in self._handlers:
            self._out.put(hostframe.ACK)
            self._out.put(hostframe.ERROR_FRAME)
            return
        self._abort()
        while not self._out.empty():  # answers the host did not wait for (timeout 0) are
            self._out.get_nowait()    # gone once it sends the next command
        self.commands.append(body)
        self._out.put(hostframe.ACK)
        code, params = body[1], body[2:]
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._cancel = threading.Event()
        if code in self._waiting:
            threading.Thread(target=self._run, args=(generation, code, params), daemon=True,
                             name=f"chipsim-{self.variant}-{code:02x}").start()
        else:
            self._run(generation, code, params)

    def read(self, timeout: int = 0) -> bytes:
        """The next frame from the chip within *timeout* ms (0: wait forever, as libusb)."""
        return next_frame(self._out, timeout, closed=self.closed)

    def close(self) -> None:
        self._abort()
        if isinstance(self.field, FieldInitiator):
            self.field.field_off()
        elif isinstance(self.field, FieldTarget):
            self.field.close()
        self.closed = True

    # -- faults ----------------------------------------------------------------------------

    def inject(self, fault: str, count: int = 1) -> None:
        """The next *count* InCommunicateThru end in *fault*: ``rf-error`` (CRC error, status
        02) or ``timeout`` (the frame is lost: status 01)."""
        if fault not in ("rf-error", "timeout"):
            raise ValueError(f"unknown fault {fault!r}; expected rf-error or timeout")
        with self._lock:
            self._faults.extend([fault] * count)

    # -- command execution -----------------------------------------------------------------

    def _abort(self) -> None:
        with self._lock:
            self._generation += 1
            self._cancel.set()

    def _run(self, generation: int, code: int, params: bytes) -> None:
        try:
            answer = self._handlers[code](params)
        except Exception:  # a simulator bug must show, not hang the driver
            log.exception("chip simulator failed on command %02X", code)
            answer = None
            with self._lock:
                if generation == self._generation:
                    self._out.put(hostframe.ERROR_FRAME)
            return
        if answer is None:  # nothing to say (the host's read times out, as on the chip)
            return
        with self._lock:
            if generation == self._generation:
                self._out.put(hostframe.chip_frame(code + 1, answer))

    def _status_register_answer(self, values: bytes) -> bytes:
        return (b"\x00" + values) if self.variant == "pn533" else values

    # -- miscellaneous ---------------------------------------------------------------------

    def _diagnose(self, params: bytes) -> bytes:
        if params[:1] == b"\x00":  # communication line test: the data comes back
            return params
        return b"\x00"  # ROM, RAM and the other self tests pass

    def _get_firmware_version(self, params: bytes) -> bytes:
        return FIRMWARE[self.variant]

    def _get_general_status(self, params: bytes) -> bytes:
        field = isinstance(self.field, FieldTarget) and self.field.session is not None
        active = isinstance(self.field, FieldInitiator) and self.field.active
        if active:
            return bytes([0x00, int(field), 0x01, 0x01, 0x00, 0x00, 0x00, 0x00])
        return bytes([0x00, int(field), 0x00, 0x00])

    def _read_register(self, params: bytes) -> bytes:
        addresses = [int.from_bytes(params[i : i + 2], "big") for i in range(0, len(params), 2)]
        values = bytearray()
        for address in addresses:
            if EEPROM_BASE <= address < EEPROM_BASE + 0x100 and self.variant == "pn533":
                if self.eeprom is None:
                    return b"\xff"  # no EEPROM on the I2C bus: the read fails
                values.append(self.eeprom[address - EEPROM_BASE])
            else:
                values.append(self.registers.get(address, 0x00))
        return self._status_register_answer(bytes(values))

    def _write_register(self, params: bytes) -> bytes:
        for i in range(0, len(params) - 2, 3):
            self.registers[int.from_bytes(params[i : i + 2], "big")] = params[i + 2]
        return b"\x00" if self.variant == "pn533" else b""

    def _rf_configuration(self, params: bytes) -> bytes:
        item = params[0] if params else None
        if item == 0x01:  # RF field: bit 0 on/off, bit 1 auto RFCA
            self.rf_on = bool(params[1] & 0x01)
            if not self.rf_on:
                self._leave_field()
        elif item == 0x02 and len(params) >= 4:  # timeouts: RFU, ATR_RES, non-DEP
            self.response_timeout_index = params[3]
        return b""

    def _leave_field(self) -> None:
        if isinstance(self.field, FieldInitiator):
            self.field.field_off()
        elif isinstance(self.field, FieldTarget):
            self.field.disarm()

    @property
    def response_timeout(self) -> float:
        """Seconds the chip waits for a target's answer (PN533 manual, RFConfiguration, CfgItem
        02: 100 us << (n - 1); 0 means no timeout, taken here as 1 s)."""
        index = self.response_timeout_index
        return 1.0 if index == 0 else (100e-6 * (1 << (index - 1)))

    # -- initiator -------------------------------------------------------------------------

    def _in_list_passive_target(self, params: bytes) -> bytes:
        max_tg, brty = params[0], params[1]
        found = None
        if brty == 0x00 and isinstance(self.field, FieldInitiator) and max_tg >= 1:
            self.rf_on = True
            found = self.field.poll()
        if found is None:
            self.registers[CIU_FIFO_DATA] = 0x26  # REQA went out, nothing answered
            return b"\x00"
        sens_res_msb_first = found.sens_res[::-1]
        return (b"\x01\x01" + sens_res_msb_first + found.sel_res
                + bytes([len(found.nfcid1)]) + found.nfcid1)

    def _next_fault(self) -> str | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _in_communicate_thru(self, params: bytes) -> bytes:
        if not isinstance(self.field, FieldInitiator) or not self.field.active:
            time.sleep(min(self.response_timeout, 0.05))
            return bytes([STATUS["timeout"]])
        fault = self._next_fault()
        answer = self.field.transceive(params, self.response_timeout)
        if fault == "timeout" or answer is None:
            return bytes([STATUS["timeout"]])
        if fault == "rf-error":
            return bytes([STATUS["crc"]])
        return b"\x00" + answer

    def _in_release(self, params: bytes) -> bytes:
        if isinstance(self.field, FieldInitiator):
            self.field.field_off()
        return b"\x00"

    # -- target ----------------------------------------------------------------------------

    def _tg_init_as_target(self, params: bytes) -> bytes | None:
        if not isinstance(self.field, FieldTarget):
            return None  # nobody will ever activate us: the host's read times out
        mifare = params[1:7]
        info = TargetInfo(sens_res=mifare[0:2], sel_res=mifare[5:6], nfcid1=b"\x08" + mifare[2:5])
        self.field.arm(info)
        cancelled = self._cancel
        session = self.field.wait_activation(3600.0, cancelled)
        if session is None:
            return None
        first = self.field.receive(1.0, cancelled)
        if first is None or first == RELEASED:
            return None
        return b"\x00" + first  # mode: 106 kbps, passive, ISO/IEC 14443-3 Type A

    def _tg_get_initiator_command(self, params: bytes) -> bytes | None:
        if not isinstance(self.field, FieldTarget):
            return bytes([STATUS["context"]])
        frame = self.field.receive(3600.0, self._cancel)
        if frame is None:
            return None
        if frame == RELEASED:
            return bytes([STATUS["released"]])
        return b"\x00" + frame

    def _tg_get_data(self, params: bytes) -> bytes | None:
        return self._tg_get_initiator_command(params)

    def _tg_response_to_initiator(self, params: bytes) -> bytes:
        if not isinstance(self.field, FieldTarget) or not self.field.send(params):
            return bytes([STATUS["released"]])
        return b"\x00"

    def _tg_get_target_status(self, params: bytes) -> bytes:
        active = isinstance(self.field, FieldTarget) and self.field.session is not None
        return b"\x01\x00" if active else b"\x00\xff"
