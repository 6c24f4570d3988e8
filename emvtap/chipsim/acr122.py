"""A simulated ACS ACR122U at its USB interface: a CCID reader whose microcontroller answers
PC/SC pseudo-APDUs (ACR122U API manual, API-ACR122U-2.04: 4 "Pseudo-APDUs", 6.2 "Bi-color
LED and buzzer control", 5.1 "Get firmware version") and passes ``FF 00 00 00 Lc`` direct
transmits to its PN532 (:class:`~.pn53x.Pn53xChip` ``pn532``). nfcpy's ``acr122`` driver
sends them inside CCID ``PC_to_RDR_Escape`` (6F) messages and reads ``RDR_to_PC_DataBlock``
(80) answers (USB CCID 1.1, 6.1.11 and 6.2.1).

:class:`Acr122Controller` is the microcontroller alone (pseudo-APDU in, response out): the
PC/SC personality of the card side uses it too. The ACR122U cannot emulate a card."""

from __future__ import annotations

import errno
import os
import queue
import struct
import threading

from . import hostframe
from .pn53x import Pn53xChip
from .seam import next_frame

__all__ = ["FIRMWARE_VERSION", "Acr122Chip", "Acr122Controller", "led_state"]

#: What ``FF 00 48 00 00`` answers (API manual 5.1): ASCII, no status word.
FIRMWARE_VERSION = b"ACR122U203"
SW_OK = b"\x90\x00"
SW_FAILED = b"\x63\x00"
#: LED state bits in the answer to FF 00 40 (API manual 6.2): b0 red, b1 green.
RED, GREEN = 0x01, 0x02


def led_state(p2: int, current: int) -> int:
    """The LEDs after ``FF 00 40 P2 …`` (API manual 6.2, LED state control byte): b2/b3 mask
    which LED changes (red/green), b0/b1 give its final state."""
    state = current
    if p2 & 0x04:
        state = (state & ~RED) | (RED if p2 & 0x01 else 0)
    if p2 & 0x08:
        state = (state & ~GREEN) | (GREEN if p2 & 0x02 else 0)
    return state


class Acr122Controller:
    """The ACR122U's microcontroller: pseudo-APDUs to responses, the PN532 behind it."""

    def __init__(self, pn532: Pn53xChip) -> None:
        self.pn532 = pn532
        self.leds = GREEN  # at power-on the green LED is on
        self.picc_parameters = 0xFF  # auto polling and every card type
        #: Every LED/buzzer command (P2, T1, T2, repetitions, buzzer link), for tests.
        self.led_commands: list[bytes] = []
        self.buzzes = 0

    def pseudo_apdu(self, apdu: bytes, timeout: float = 5.0) -> bytes:
        """The answer to one pseudo-APDU (class FF)."""
        if apdu == hostframe.ACK:  # nfcpy cancels the chip's command through the escape
            self.pn532.write(hostframe.ACK)
            return SW_OK
        if len(apdu) < 5 or apdu[0] != 0xFF or apdu[1] != 0x00:
            return b"\x6e\x00"  # class not supported
        p1, p2, lc, data = apdu[2], apdu[3], apdu[4], apdu[5:]
        if p1 == 0x48:  # get firmware version (5.1)
            return FIRMWARE_VERSION
        if p1 == 0x51:  # set PICC operating parameter: the new value comes back
            self.picc_parameters = p2
            return bytes([p2])
        if p1 == 0x50:  # get PICC operating parameter
            return bytes([0x90, self.picc_parameters])
        if p1 == 0x40 and lc == 0x04 and len(data) == 4:  # LED and buzzer (6.2)
            self.led_commands.append(bytes([p2]) + data)
            t1, t2, repetitions, buzzer = data
            if buzzer & 0x03 and repetitions and (t1 or t2):
                self.buzzes += repetitions
            self.leds = led_state(p2, self.leds)
            return bytes([0x90, self.leds])
        if p1 == 0x00 and p2 == 0x00 and len(data) == lc and lc:  # direct transmit (4.1)
            return self._direct_transmit(data, timeout)
        return SW_FAILED

    def _direct_transmit(self, command: bytes, timeout: float) -> bytes:
        """PN532 command (D4 …) in, PN532 response (D5 …) + 90 00 out (API manual 4.1)."""
        chip = self.pn532
        chip.write(hostframe.encode(command))
        try:
            first = bytes(chip.read(int(timeout * 1000)))
            if first == hostframe.ACK:
                first = bytes(chip.read(int(timeout * 1000)))
        except OSError:
            return SW_FAILED
        if first == hostframe.ERROR_FRAME:
            return b"\x7f" + SW_OK
        return hostframe.decode(first) + SW_OK


class Acr122Chip:
    """The ACR122U at nfcpy's transport seam: CCID messages in, CCID messages out."""

    TYPE = "USB"

    def __init__(self, pn532: Pn53xChip) -> None:
        self.controller = Acr122Controller(pn532)
        self.field = pn532.field
        self._out: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0
        self.powered = False
        self.closed = False

    @property
    def manufacturer_name(self) -> str:
        return "ACS"

    @property
    def product_name(self) -> str:
        return "ACR122U PICC Interface"

    def inject(self, fault: str, count: int = 1) -> None:
        self.controller.pn532.inject(fault, count)

    def _data_block(self, data: bytes, seq: int) -> bytes:
        """RDR_to_PC_DataBlock (CCID 6.2.1): bStatus says whether the ICC is powered (0) or
        not present (2); bError 81 as the ACR122U sends it."""
        status = 0x00 if self.powered else 0x02
        return struct.pack("<BIBBBBB", 0x80, len(data), 0, seq, status, 0x81, 0) + data

    def write(self, frame: bytes, timeout: int = 0) -> None:
        frame = bytes(frame)
        if self.closed:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        if len(frame) < 10:
            raise OSError(errno.EIO, "short CCID message")
        kind, length, _slot, seq = struct.unpack("<BIBB", frame[:7])
        payload = frame[10 : 10 + length]
        with self._lock:
            self._generation += 1
            generation = self._generation
            while not self._out.empty():  # the host gave up on the previous answer
                self._out.get_nowait()
        if kind == 0x62:  # PC_to_RDR_IccPowerOn: the ATR of the reader's own pseudo-card
            self.powered = True
            self._out.put(self._data_block(b"\x3b\x00", seq))
            return
        if kind != 0x6F:  # only the escape is used by nfcpy's driver
            self._out.put(self._data_block(b"", seq))
            return

        def run() -> None:
            answer = self.controller.pseudo_apdu(payload)
            with self._lock:
                if generation == self._generation:
                    self._out.put(self._data_block(answer, seq))

        if payload[:4] == b"\xff\x00\x00\x00" and len(payload) > 5:  # to the PN532
            threading.Thread(target=run, daemon=True, name="chipsim-acr122").start()
        else:
            run()

    def read(self, timeout: int = 0) -> bytes:
        return next_frame(self._out, timeout, closed=self.closed)

    def close(self) -> None:
        self.controller.pn532.close()
        self.closed = True
