"""The reader table and the roles: which USB readers the lab uses, what each can be (terminal,
card emulator), which nfcpy driver and which kernel module take it, and how PC/SC names them.

Keep :data:`READERS` in step with ``udev/60-emvtap-nfc.rules`` and the table in
``udev/README.md`` (``tests/unit/test_udev_files.py`` checks both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["terminal", "emulator", "both"]
ROLES: tuple[Role, ...] = ("terminal", "emulator", "both")

TERMINAL = frozenset({"terminal"})
EMULATOR = frozenset({"emulator"})
BOTH = TERMINAL | EMULATOR
#: The reader roles each ``--role`` needs.
ROLE_NEEDS: Mapping[Role, frozenset[str]] = {
    "terminal": TERMINAL,
    "emulator": EMULATOR,
    "both": BOTH,
}


@dataclass(frozen=True)
class Reader:
    """A row of the reader table (``udev/README.md``, ``udev/60-emvtap-nfc.rules``).

    ``nfcpy_driver``: nfcpy's module for it (``None``: PC/SC only). ``kernel_driver``: the Linux
    module that claims it before pcscd or nfcpy can. ``serial``: a USB-serial bridge that may
    carry a PN532 board (the id is the bridge chip's); listed, not counted as a reader, since
    emvtap's links have no ``nfc:tty`` form.
    """

    vid: int
    pid: int
    name: str
    roles: frozenset[str]
    nfcpy_driver: str | None
    kernel_driver: str | None
    serial: bool = False

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"


READERS: tuple[Reader, ...] = (
    Reader(0x072F, 0x2200, "ACS ACR122U", TERMINAL, "acr122", "pn533_usb"),
    Reader(0x072F, 0x221A, "ACS ACR1251 Dual Reader", TERMINAL, None, None),
    Reader(0x072F, 0x223B, "ACS ACR1252U Dual Reader", TERMINAL, None, None),
    Reader(0x054C, 0x02E1, "Sony RC-S330/S360/S370", TERMINAL, "rcs956", "pn533_usb"),
    Reader(0x04E6, 0x5591, "SCM SCL3711", BOTH, "pn533", "pn533_usb"),
    Reader(0x04CC, 0x2533, "NXP PN533", BOTH, "pn533", "pn533_usb"),
    Reader(0x054C, 0x06C1, "Sony RC-S380/S", BOTH, "rcs380", "port100"),
    Reader(0x054C, 0x06C3, "Sony RC-S380/P", BOTH, "rcs380", "port100"),
    Reader(0x1A86, 0x7523, "PN532 board? (CH340 serial)", BOTH, "pn532", None, serial=True),
    Reader(0x10C4, 0xEA60, "PN532 board? (CP210x serial)", BOTH, "pn532", None, serial=True),
    Reader(0x0403, 0x6001, "PN532 board? (FT232R serial)", BOTH, "pn532", None, serial=True),
    Reader(0x067B, 0x2303, "PN532 board? (PL2303 serial)", BOTH, "pn532", None, serial=True),
)
READERS_BY_ID: Mapping[tuple[int, int], Reader] = {(r.vid, r.pid): r for r in READERS}

#: What each nfcpy driver can be: ``acr122`` refuses every ``listen_*``, ``rcs956`` refuses to
#: listen as a Type 4A target; the PN53x and RC-S380 drivers can be an ISO 14443-4A card.
NFCPY_DRIVER_ROLES: Mapping[str, frozenset[str]] = {
    "acr122": TERMINAL,
    "rcs956": TERMINAL,
    "pn531": BOTH,
    "pn532": BOTH,
    "pn533": BOTH,
    "rcs380": BOTH,
}

#: Labels for PC/SC reader names (first match wins). Every PC/SC reader is a terminal only.
PCSC_READER_NAMES: tuple[tuple[str, str], ...] = (
    (r"ACR122", "ACS ACR122U"),
    (r"ACR125[12]", "ACS ACR1251/ACR1252U"),
    (r"^Virtual PCD", "vpcd virtual reader"),
    (r"OMNIKEY|uTrust|Identiv|SCL01", "CCID contactless reader"),
    (r"", "PC/SC reader, a terminal if it has a contactless slot"),
)

#: Kernel modules that claim the lab's readers, in unloading order, with what they take.
STEALING_MODULES: Mapping[str, str] = {
    "pn533_usb": "ACR122U, SCL3711, PN533, RC-S330/360/370",
    "pn533": "the PN533 core under pn533_usb",
    "port100": "RC-S380",
}


def pcsc_label(name: str) -> str:
    """The label of PC/SC reader *name*: the first row of :data:`PCSC_READER_NAMES` that
    matches."""
    return next(label for pattern, label in PCSC_READER_NAMES if re.search(pattern, name))
