"""Which applications the card has (EMV Contactless Book B, 3.3.2; EMV 4.4 Book 1, 12.3):
the PPSE, then - on a contact card, or when the PPSE is missing - the PSE directory, then the
list of AIDs. Unlike a payment, every entry is kept, supported by the terminal or not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emvtap.apdu import SW, CommandApdu
from emvtap.perso import PPSE_NAME
from emvtap.tlv import Tlv, TlvError, decode, find, find_all

from .aids import KNOWN_AIDS, scheme_of
from .nodes import nodes
from .session import ReadSession, sw_json

__all__ = ["PSE_NAME", "Directory", "DirectoryEntry", "discover_applications",
           "is_contactless_atr"]

PSE_NAME = b"1PAY.SYS.DDF01"
#: Book 1 12.3.2: the directory SFI's records are read until 6A83; a card that never says so
#: is not read past this.
MAX_DIRECTORY_RECORDS = 16
#: Book 1 12.3.3: SELECT next occurrence (P2 02) is repeated at most this often per AID.
MAX_OCCURRENCES = 8


@dataclass
class DirectoryEntry:
    aid: bytes
    label: str = ""
    priority: int | None = None
    kernel_id: str = ""
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"aid": self.aid.hex().upper(), "label": self.label, "priority": self.priority,
                "kernel_identifier": self.kernel_id, "scheme": scheme_of(self.aid),
                "source": self.source}


@dataclass
class Directory:
    source: str = ""  # "PPSE", "PSE", "AID list" or "" (nothing found)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    entries: list[DirectoryEntry] = field(default_factory=list)
    fci: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: AID list selections that answered: DF name → raw SELECT response data
    selected: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source or None, "attempts": self.attempts,
                "entries": [e.to_json() for e in self.entries], "fci": self.fci}


def is_contactless_atr(atr: bytes) -> bool:
    """PC/SC part 3, 3.1.3.2.3: a contactless card's ATR is 3B 8n 80 01 ..."""
    return len(atr) >= 4 and atr[0] == 0x3B and atr[1] & 0xF0 == 0x80 and atr[2:4] == b"\x80\x01"


def _entry(t: Tlv, source: str) -> DirectoryEntry | None:
    kids = {k.tag: k.value for k in (t.children or ())}
    aid = kids.get(0x4F)
    if not aid:
        return None
    label = kids.get(0x50, b"")
    prio = kids.get(0x87)
    return DirectoryEntry(
        aid, label.decode("ascii", "replace") if label else "",
        prio[0] & 0x0F if prio else None, kids.get(0x9F2A, b"").hex().upper(), source)


def _select_directory(session: ReadSession, d: Directory, name: bytes, label: str,
                      clear: bool) -> list[Tlv] | None:
    r = session.send(CommandApdu(0x00, 0xA4, 0x04, 0x00, name, 0), f"SELECT {label}")
    attempt: dict[str, Any] = {"name": label, **sw_json(r.sw)}
    d.attempts.append(attempt)
    if r.sw != SW.OK:
        return None
    try:
        fci = decode(r.data)
    except TlvError as exc:
        attempt["error"] = f"FCI is not BER-TLV ({exc})"
        return None
    d.fci[label] = nodes(fci, clear)
    return fci


def _read_ppse(session: ReadSession, d: Directory, clear: bool) -> bool:
    fci = _select_directory(session, d, PPSE_NAME, "PPSE", clear)
    if fci is None:
        return False
    entries = [e for t in find_all(fci, 0x61) if (e := _entry(t, "PPSE"))]
    if not entries:
        d.attempts[-1]["error"] = "PPSE lists no application (no 61 entry with 4F)"
        return False
    d.entries += entries
    return True


def _read_pse(session: ReadSession, d: Directory, clear: bool) -> bool:
    fci = _select_directory(session, d, PSE_NAME, "PSE", clear)
    if fci is None:
        return False
    sfi_obj = find(fci, 0x88)
    if sfi_obj is None or len(sfi_obj.value) != 1 or not 1 <= sfi_obj.value[0] <= 30:
        d.attempts[-1]["error"] = "PSE FCI has no usable directory SFI (88)"
        return False
    sfi = sfi_obj.value[0]
    found: list[DirectoryEntry] = []
    for number in range(1, MAX_DIRECTORY_RECORDS + 1):
        r = session.send(CommandApdu(0x00, 0xB2, number, (sfi << 3) | 0x04, b"", 0),
                         f"READ RECORD PSE directory SFI {sfi} record {number}")
        if r.sw != SW.OK:
            break
        try:
            found += [e for t in find_all(decode(r.data), 0x61) if (e := _entry(t, "PSE"))]
        except TlvError as exc:
            d.attempts[-1].setdefault("errors", []).append(
                f"directory record {number} is not BER-TLV ({exc})")
    known = {e.aid for e in d.entries}
    d.entries += [e for e in found if e.aid not in known]
    return bool(found)


def _read_aid_list(session: ReadSession, d: Directory) -> None:
    """Book 1 12.3.3: SELECT each AID of the list; on a partial match, SELECT next
    occurrence (P2 02) until the card answers something else than 9000/6283."""
    known = {e.aid for e in d.entries}
    for item in KNOWN_AIDS:
        p2 = 0x00
        for _ in range(MAX_OCCURRENCES):
            r = session.send(CommandApdu(0x00, 0xA4, 0x04, p2, item.aid, 0),
                             f"SELECT {item.aid.hex().upper()} ({item.scheme})"
                             + (" next" if p2 else ""))
            if r.sw not in (SW.OK, SW.SELECTED_FILE_INVALIDATED):
                if r.sw != SW.FILE_NOT_FOUND:  # anything but "not here" is worth a line
                    d.attempts.append({"name": f"{item.aid.hex().upper()} ({item.scheme})",
                                       **sw_json(r.sw)})
                break
            try:
                df = find(decode(r.data), 0x84)
            except TlvError:
                df = None
            name = df.value if df is not None and df.value else item.aid
            if name in known:
                break
            known.add(name)
            label = ""
            try:
                lab = find(decode(r.data), 0x50)
                label = lab.value.decode("ascii", "replace") if lab else ""
            except TlvError:
                pass
            d.entries.append(DirectoryEntry(name, label, None, "", "AID list"))
            d.selected[name] = (r.sw, r.data)
            if name == item.aid:
                break
            p2 = 0x02


def discover_applications(session: ReadSession, atr: bytes, clear: bool) -> Directory:
    """PPSE; then PSE when the card is a contact card or the PPSE gave nothing; then, with no
    directory at all, the list of AIDs."""
    d = Directory()
    if _read_ppse(session, d, clear):
        d.source = "PPSE"
    contact = not is_contactless_atr(atr)
    if (contact or not d.source) and _read_pse(session, d, clear):
        d.source = d.source + "+PSE" if d.source else "PSE"
    if not d.source:
        _read_aid_list(session, d)
        if d.entries:
            d.source = "AID list"
    return d
