"""Simulated NFC reader chips under nfcpy's own drivers (docs/hardware.md, Simulated readers).

nfcpy drives a reader through a driver module (``nfc/clf/pn533.py``, ``pn532.py``,
``rcs380.py``, ``acr122.py``) that writes command frames to, and reads response frames from, a
transport object. The chips here are such transport objects: they answer at the frame level as
the chips' user manuals say, so every line of nfcpy's driver runs as it would on a USB reader.
Two of them meet in a simulated RF :mod:`.field` on loopback TCP, one in each process: the
terminal's reader (initiator) and the card emulator's (target).

Path: ``sim:CHIP[:HOST[:PORT]]`` after ``nfc:`` (``nfc:sim:pn533:127.0.0.1:54533``); CHIP is
one of :data:`CHIPS`. The card side binds HOST:PORT, the reader connects to it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .field import DEFAULT_HOST, DEFAULT_PORT, FieldInitiator, FieldTarget

__all__ = ["CHIPS", "SimPath", "open_frontend", "parse_sim_path"]

#: chip name → (nfcpy driver module, can emulate a card)
CHIPS: dict[str, tuple[str, bool]] = {
    "pn533": ("nfc.clf.pn533", True),
    "rcs380": ("nfc.clf.rcs380", True),
    "acr122": ("nfc.clf.acr122", False),  # PN532 behind the ACR122U's CCID escape
}


@dataclass(frozen=True)
class SimPath:
    chip: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"sim:{self.chip}:{self.host}:{self.port}"


def parse_sim_path(rest: str, spec: str | None = None) -> SimPath:
    """``sim:CHIP[:HOST[:PORT]]`` → :class:`SimPath`; :class:`ValueError` naming *spec*."""
    spec = spec or f"nfc:{rest}"
    parts = rest.split(":")
    if parts[0] != "sim" or len(parts) < 2 or len(parts) > 4:
        raise ValueError(f"{spec}: expected nfc:sim:CHIP[:HOST[:PORT]] with CHIP one of "
                         f"{', '.join(CHIPS)}")
    chip = parts[1]
    if chip not in CHIPS:
        raise ValueError(f"{spec}: unknown simulated chip {chip!r}; expected one of "
                         f"{', '.join(CHIPS)}")
    host = parts[2] if len(parts) > 2 and parts[2] else DEFAULT_HOST
    port_text = parts[3] if len(parts) > 3 else ""
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ValueError(f"{spec}: bad port {port_text!r}")
    return SimPath(chip, host, int(port_text) if port_text else DEFAULT_PORT)


def make_chip(path: SimPath, role: str) -> Any:
    """The simulated chip for *path*, with the field end of *role* (``initiator``/``target``)."""
    if role == "target":
        if not CHIPS[path.chip][1]:
            raise ValueError(f"nfc:{path}: the {path.chip} cannot emulate a card")
        field: Any = FieldTarget(path.host, path.port)
    elif role == "initiator":
        field = FieldInitiator(path.host, path.port)
    else:
        raise ValueError(f"role must be initiator or target, not {role!r}")
    from .pn53x import Pn53xChip

    if path.chip == "rcs380":
        from .rcs380 import Port100Chip

        return Port100Chip(field)
    if path.chip == "acr122":
        from .acr122 import Acr122Chip

        return Acr122Chip(Pn53xChip("pn532", field))
    return Pn53xChip(path.chip, field)


def open_frontend(path: SimPath, role: str) -> Any:
    """An ``nfc.ContactlessFrontend`` whose device is nfcpy's own driver for *path*'s chip,
    initialised (``init(transport)``) on the simulated chip. Raises :class:`OSError` when the
    card side's port is taken."""
    import nfc

    chip = make_chip(path, role)
    driver = importlib.import_module(CHIPS[path.chip][0])
    try:
        device = driver.init(chip)
    except BaseException:
        chip.close()
        raise
    device._path = str(path)
    clf = nfc.ContactlessFrontend()
    clf.device = device
    clf.chip = chip  # the simulated chip, for fault injection
    return clf
