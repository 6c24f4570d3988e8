"""Rigs: where a run's readers are.

==================  ================================  =======================================
rig                 terminal reader                   emulated cards served on
==================  ================================  =======================================
``hardware``        ``--terminal`` (``pcsc:ACR122U``)  ``--emulator`` (``nfc:usb:04e6:5591``)
``virtual-pcsc``    pcscd's vpcd reader               ``vpcd:127.0.0.1:PORT`` (same slot)
``virtual-nfc``     ``nfc:udp:127.0.0.1:PORT``        the same udp port, a new one per scenario
``virtual-sim``     ``nfc:sim:acr122:127.0.0.1:PORT``  ``nfc:sim:pn533:127.0.0.1:PORT``: nfcpy's
                                                      drivers on simulated chips (a new PORT
                                                      per scenario; the chips are choosable)
==================  ================================  =======================================

A vpcd slot serves one card at a time for the whole machine: the virtual-pcsc rig holds it with
the same ``flock`` as the test suite (/tmp/emvtap-vpcd-PORT.lock), unless the caller already
holds one and names it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from emvtap.endpoints import READER_KINDS, EndpointKind, SpecError, parse_endpoint
from lab.hil.model import CardForm, Scenario
from lab.hil.pcsc_watch import reader_names, wait_for_reader
from lab.hil.person import ConsolePerson, NoPerson, Person
from lab.hil.results import RigError

__all__ = [
    "VPCD_SLOTS",
    "HardwareRig",
    "Readers",
    "Rig",
    "VirtualNfcRig",
    "VirtualPcscRig",
    "VirtualSimRig",
    "VpcdSlot",
    "free_udp_port",
    "vpcd_lock_path",
]


class VpcdSlot(NamedTuple):
    """A vpcd reader: its PC/SC name and the TCP port its card connects to."""

    reader: str
    port: int


#: Debian's vsmartcard-vpcd (/etc/reader.conf.d/vpcd): two slots.
VPCD_SLOTS = (VpcdSlot("Virtual PCD 00 00", 35963), VpcdSlot("Virtual PCD 00 01", 35964))


class Readers(NamedTuple):
    terminal: str  # reader spec of the terminal (open_transport)
    card_link: str  # card link spec of emulated cards ("" when the rig has no emulator)


class Rig(Protocol):
    name: str
    person: Person

    def open(self) -> None: ...

    def close(self) -> None: ...

    def readers(self) -> Readers:
        """The readers of the next scenario."""
        ...

    def unavailable(self, scenario: Scenario) -> str | None:
        """Why *scenario* cannot run on this rig, or None."""
        ...

    def card_gone(self, readers: Readers) -> None:
        """Return once the terminal reader has seen the emulated card leave."""
        ...

    def prepare_emulator(self) -> None:
        """Before the first emulated card of the run is presented."""
        ...


def vpcd_lock_path(port: int) -> Path:
    return Path(f"/tmp/emvtap-vpcd-{port}.lock")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _emulated(scenario: Scenario) -> bool:
    return any(c.form is not CardForm.REAL for c in scenario.cards.values())


@dataclass
class VirtualPcscRig:
    """pcscd + vpcd: the card process is vpcd's TCP client, the terminal a PC/SC client."""

    slot: VpcdSlot | None = None  # None: take a free one (flock) for the run
    lock_timeout: float = 600.0
    name: str = "virtual-pcsc"
    person: Person = field(default_factory=NoPerson)
    _lock_fd: int | None = None

    def open(self) -> None:
        if self.slot is None:
            self.slot = self._take_slot()
        if self.slot.reader not in reader_names():
            raise RigError(f"pcscd does not list {self.slot.reader!r}: is vsmartcard-vpcd "
                           "installed and pcscd started (bash scripts/pcscd-start.sh)?")
        wait_for_reader(self.slot.reader, present=False, timeout=5.0)

    def _take_slot(self) -> VpcdSlot:
        deadline = time.monotonic() + self.lock_timeout
        while True:
            for slot in VPCD_SLOTS:
                fd = os.open(vpcd_lock_path(slot.port), os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    os.close(fd)
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    continue
                self._lock_fd = fd
                return slot
            if time.monotonic() > deadline:
                raise RigError(f"every vpcd slot stayed locked for {self.lock_timeout} s")
            # Other runs hold the slots; flock has no timed wait over several files.
            time.sleep(0.05)

    def close(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def readers(self) -> Readers:
        assert self.slot is not None, "open() the rig first"
        return Readers(f"pcsc:{self.slot.reader}", f"vpcd:127.0.0.1:{self.slot.port}")

    def unavailable(self, scenario: Scenario) -> str | None:
        if scenario.hardware_only:
            return "needs real readers and a person (a real card or phone)"
        return None

    def card_gone(self, readers: Readers) -> None:
        assert self.slot is not None
        wait_for_reader(self.slot.reader, present=False, timeout=5.0)

    def prepare_emulator(self) -> None:
        return None


@dataclass
class VirtualNfcRig:
    """nfcpy's udp radio on loopback: the card listens on a port, the terminal polls it."""

    port: int | None = None  # None: a free port for every scenario
    name: str = "virtual-nfc"
    person: Person = field(default_factory=NoPerson)

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def readers(self) -> Readers:
        port = self.port or free_udp_port()
        spec = f"nfc:udp:127.0.0.1:{port}"
        return Readers(spec, spec)

    def unavailable(self, scenario: Scenario) -> str | None:
        if scenario.hardware_only:
            return "needs real readers and a person (a real card or phone)"
        return None

    def card_gone(self, readers: Readers) -> None:
        return None  # the card process has exited: nothing answers on the port any more

    def prepare_emulator(self) -> None:
        return None


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class VirtualSimRig:
    """nfcpy's own reader drivers on simulated chips (``emvtap.chipsim``): the terminal's
    reader and the card emulator's reader meet in a simulated field on a loopback port."""

    reader_chip: str = "acr122"
    emulator_chip: str = "pn533"
    name: str = "virtual-sim"
    person: Person = field(default_factory=NoPerson)

    @classmethod
    def from_chips(cls, chips: str) -> VirtualSimRig:
        """``READER:EMULATOR`` (``acr122:pn533``); :class:`ValueError` for other chips."""
        from emvtap.chipsim import CHIPS

        reader, _, emulator = chips.partition(":")
        for chip in (reader, emulator):
            if chip not in CHIPS:
                raise ValueError(f"unknown simulated chip {chip!r} in {chips!r}; expected "
                                 f"READER:EMULATOR, each one of {', '.join(CHIPS)}")
        if not CHIPS[emulator][1]:
            raise ValueError(f"the {emulator} cannot emulate a card (use pn533 or rcs380)")
        return cls(reader, emulator)

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def readers(self) -> Readers:
        port = free_tcp_port()
        return Readers(f"nfc:sim:{self.reader_chip}:127.0.0.1:{port}",
                       f"nfc:sim:{self.emulator_chip}:127.0.0.1:{port}")

    def unavailable(self, scenario: Scenario) -> str | None:
        if scenario.hardware_only:
            return "needs real readers and a person (a real card or phone)"
        return None

    def card_gone(self, readers: Readers) -> None:
        return None  # the card process has exited: nothing listens on the port any more

    def prepare_emulator(self) -> None:
        return None


@dataclass
class HardwareRig:
    """Real readers: the terminal reader, and (for emulated cards) the emulator reader laid on
    it. A person presents real cards and confirms the emulator's placement once."""

    terminal: str
    emulator: str = ""
    name: str = "hardware"
    person: Person = field(default_factory=ConsolePerson)
    _placed: bool = False

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def readers(self) -> Readers:
        return Readers(self.terminal, self.emulator)

    def unavailable(self, scenario: Scenario) -> str | None:
        if _emulated(scenario) and not self.emulator:
            return "its cards are emulated: name the emulator reader (--emulator nfc:usb:…)"
        if any(c.form is CardForm.APPLET for c in scenario.cards.values()):
            return ("the applet runs in jcardsim behind vpcd (virtual runs); on real readers "
                    "present a personalised Java Card as a real card")
        return None

    def prepare_emulator(self) -> None:
        """Once per run: the emulator reader goes flat on the terminal reader's tap area."""
        if not self._placed:
            self.person.confirm(f"Lay the emulator reader ({self.emulator}) flat on the "
                                f"terminal reader ({self.terminal}), antenna to antenna, and "
                                "keep real cards and phones away.")
            self._placed = True

    def card_gone(self, readers: Readers) -> None:
        try:
            terminal = parse_endpoint(readers.terminal, READER_KINDS)
        except SpecError as exc:
            raise RigError(f"terminal reader {readers.terminal}: {exc}") from None
        if terminal.kind is EndpointKind.PCSC:
            from terminal.transport.pcsc import resolve_reader

            try:
                name = resolve_reader(terminal.argument, reader_names())
            except Exception as exc:
                raise RigError(f"terminal reader {readers.terminal}: {exc}") from exc
            wait_for_reader(name, present=False, timeout=10.0)
