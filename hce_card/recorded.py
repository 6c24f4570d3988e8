"""A recorded card: answers the APDUs of a recording of a real card session (or one synthesised
from such recordings) the way the card answered them, on any card link.

A recording is a JSON document (format ``emvtap-card-recording`` version 1, see
``docs/recorded-cards.md``): where it comes from (``provenance``: repository, path, commit,
licence) and the list of command/response APDUs in the order they were exchanged.

How the card answers (ISO/IEC 7816-4, 5.1.3 and 7.1.1; EMV 4.4 Book 1, 11 and 12):

- SELECT by DF name answers what the recording answered to that name; a name that is the
  beginning of a recorded DF name selects it (partial selection, P2 ``00`` first occurrence,
  ``02`` next occurrence); a name never recorded answers ``6A82``. A SELECT that answered
  ``9000``, ``61xx`` or ``6283`` makes the DF current, as it did on the card.
- Any other command answers what was recorded for the same bytes under the same current DF,
  repeated commands in their recorded order (the last answer repeats). GPO, GENERATE AC,
  INTERNAL AUTHENTICATE and COMPUTE CRYPTOGRAPHIC CHECKSUM carry the terminal's own data
  (unpredictable number, date): a command with the recorded header but other data gets the
  recorded answer too.
- What the recording does not hold gets the status word a card gives for it: READ RECORD
  ``6A83``, GET DATA ``6A88``, GPO/GENERATE AC ``6985``, GET RESPONSE without a pending answer
  ``6985``, another class ``6E00``, another instruction ``6D00``. Each is kept in
  :attr:`RecordedCard.unmatched`.

Every tap (``reset``) starts the recording again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emvtap.apdu import ApduError, CommandApdu

__all__ = ["FORMAT_NAME", "RecordedCard", "Recording", "RecordingError", "load_recording",
           "parse_recording"]

log = logging.getLogger("emvtap.card")

FORMAT_NAME = "emvtap-card-recording"
FORMAT_VERSION = 1

#: The ATR a PC/SC reader gives an ISO 14443-4 type A card (PC/SC part 3, 3.1.3.2.3) when the
#: recording holds none: historical bytes 00 00 00 00 00 71 81 00 (8 bytes).
DEFAULT_ATR = bytes.fromhex("3B8880010000000000718100F9")

_CLASSES = frozenset({0x00, 0x80, 0x84, 0x04, 0x0C, 0x8C})
#: Instructions whose data is the terminal's own (answered by header when the data differs).
_TERMINAL_DATA_INS = frozenset({0xA8, 0xAE, 0x88, 0x2A})
#: Status words after which a SELECT leaves its DF selected.
_SELECTED = ("9000", "61", "6283")

_UNMATCHED_SW: dict[int, bytes] = {
    0xA4: b"\x6a\x82",  # file or application not found
    0xB2: b"\x6a\x83",  # record not found
    0xCA: b"\x6a\x88",  # referenced data not found
    0xA8: b"\x69\x85",  # conditions of use not satisfied
    0xAE: b"\x69\x85",
    0xC0: b"\x69\x85",
}


class RecordingError(ValueError):
    """A recording file that cannot be used (names the file and what is wrong)."""


@dataclass(frozen=True)
class Recording:
    card: str
    provenance: dict[str, Any]
    exchanges: tuple[tuple[bytes, bytes], ...]
    atr: bytes = DEFAULT_ATR
    synthesised: dict[str, Any] | None = None
    source: str = ""


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise RecordingError(f"{where}: expected a hex string, got {type(value).__name__}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RecordingError(f"{where}: {value[:40]!r} is not hex") from None


def parse_recording(doc: Any, source: str = "recording") -> Recording:
    if not isinstance(doc, dict):
        raise RecordingError(f"{source}: a recording is a JSON object")
    fmt = doc.get("format")
    if not isinstance(fmt, dict) or fmt.get("name") != FORMAT_NAME:
        raise RecordingError(f"{source}: not a card recording (format.name is not "
                             f"{FORMAT_NAME!r})")
    if fmt.get("version") != FORMAT_VERSION:
        raise RecordingError(f"{source}: format version {fmt.get('version')!r} is not "
                             f"supported (this emvtap reads version {FORMAT_VERSION})")
    apdus = doc.get("apdus")
    if not isinstance(apdus, list) or not apdus:
        raise RecordingError(f"{source}: 'apdus' must be a non-empty list")
    exchanges = []
    for i, item in enumerate(apdus):
        if not isinstance(item, dict) or "c" not in item or "r" not in item:
            raise RecordingError(f"{source}: apdus[{i}] needs 'c' and 'r'")
        command, response = _hex(item["c"], f"{source}: apdus[{i}].c"), _hex(
            item["r"], f"{source}: apdus[{i}].r")
        if len(command) < 4:
            raise RecordingError(f"{source}: apdus[{i}].c has {len(command)} bytes (at least 4)")
        if len(response) < 2:
            raise RecordingError(f"{source}: apdus[{i}].r has no status word")
        exchanges.append((command, response))
    provenance = doc.get("provenance")
    if not isinstance(provenance, dict) or not provenance.get("repo"):
        raise RecordingError(f"{source}: 'provenance' (repo, path, commit, licence) is missing")
    atr = _hex(doc["atr"], f"{source}: atr") if "atr" in doc else DEFAULT_ATR
    return Recording(str(doc.get("card", "")), provenance, tuple(exchanges), atr,
                     doc.get("synthesised"), source)


def load_recording(path: str | Path) -> Recording:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordingError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(f"{p}: not JSON ({exc})") from None
    return parse_recording(doc, str(p))


@dataclass
class _Df:
    name: bytes
    select_response: bytes
    queues: dict[bytes, list[bytes]] = field(default_factory=dict)
    by_header: dict[bytes, bytes] = field(default_factory=dict)


class RecordedCard:
    """The card of a :class:`Recording` (``process``/``reset``/``atr``, as every card link
    expects)."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.atr = recording.atr
        self.unmatched: list[str] = []
        self._dfs: dict[bytes, _Df] = {}
        self._order: list[bytes] = []  # DF names in recorded order (partial selection)
        root = _Df(b"", b"")
        current = root
        for command, response in recording.exchanges:
            if command[1] == 0xA4 and command[2] == 0x04:
                name = _select_name(command)
                df = self._dfs.get(name)
                if df is None:
                    df = self._dfs[name] = _Df(name, response)
                    self._order.append(name)
                if response[-2:].hex().upper().startswith(_SELECTED):
                    current = df
                continue
            current.queues.setdefault(command, []).append(response)
            current.by_header.setdefault(command[:4], response)
        self._root = root
        self.reset()

    @classmethod
    def load(cls, path: str | Path) -> RecordedCard:
        return cls(load_recording(path))

    def reset(self) -> None:
        self._current = self._root
        self._used: dict[tuple[bytes, bytes], int] = {}
        self._last_selected: bytes | None = None

    def process(self, apdu: bytes) -> bytes:
        apdu = bytes(apdu)
        try:
            cmd = CommandApdu.decode(apdu)
        except ApduError:
            return b"\x67\x00"
        if cmd.cla not in _CLASSES:
            return self._unmatched(apdu, b"\x6e\x00")
        if cmd.ins == 0xA4 and cmd.p1 == 0x04:
            return self._select(apdu, cmd)
        df = self._current
        queue = df.queues.get(apdu)
        if queue:
            key = (df.name, apdu)
            i = self._used.get(key, 0)
            self._used[key] = i + 1
            return queue[min(i, len(queue) - 1)]
        if cmd.ins in _TERMINAL_DATA_INS and apdu[:4] in df.by_header:
            return df.by_header[apdu[:4]]
        return self._unmatched(apdu, _UNMATCHED_SW.get(cmd.ins, b"\x6d\x00"))

    def _select(self, apdu: bytes, cmd: CommandApdu) -> bytes:
        name = cmd.data
        if cmd.p2 & 0x03 == 0x02:  # next occurrence: after the last one selected
            start = self._order.index(self._last_selected) + 1 if (
                self._last_selected in self._order) else 0
            candidates = [n for n in self._order[start:] if n.startswith(name) and n != name]
        else:
            candidates = [name] if name in self._dfs else [
                n for n in self._order if name and n.startswith(name)]
        if not candidates:
            return self._unmatched(apdu, b"\x6a\x82")
        df = self._dfs[candidates[0]]
        if df.select_response[-2:].hex().upper().startswith(_SELECTED):
            self._current = df
            self._last_selected = df.name
        return df.select_response

    def _unmatched(self, apdu: bytes, sw: bytes) -> bytes:
        self.unmatched.append(f"{apdu[:4].hex().upper()} ({len(apdu)} bytes) -> {sw.hex()}")
        log.info("recorded card: %s not in the recording; answering %s",
                 apdu[:4].hex(" ").upper(), sw.hex().upper())
        return sw


def _select_name(command: bytes) -> bytes:
    try:
        return CommandApdu.decode(command).data
    except ApduError:
        return command[5:]
