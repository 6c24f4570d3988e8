"""Raw APDUs to a card, as ``opensc-tool -s`` sends them: parsed and checked before the card is
touched, sent with GET RESPONSE on ``61xx`` and re-sent with the card's Le on ``6Cxx``
(:func:`terminal.transport.base.transmit_apdu`, ISO/IEC 7816-4 5.1.3), each answer decoded:
the status word in words and the data as a TLV tree when it is BER-TLV."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emvtap.apdu import ApduError, CommandApdu, ResponseApdu, status_meaning
from emvtap.masking import redact_tlv_bytes
from emvtap.tlv import TlvError, decode
from terminal.read.nodes import nodes
from terminal.transport.base import Transport, TransportError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ApduRun", "parse_apdu", "parse_script", "send_all"]

FORMAT_NAME = "emvtap-terminal-apdu"
FORMAT_VERSION = 1

_SEPARATORS = re.compile(r"[\s:]+")


def parse_apdu(text: str, where: str = "APDU") -> bytes:
    """Hex with optional spaces or colons (``00 A4 04 00 07 A0...``) → a checked short
    command APDU. :class:`ValueError` says what is wrong and where."""
    compact = _SEPARATORS.sub("", text)
    if not compact:
        raise ValueError(f"{where}: empty")
    try:
        raw = bytes.fromhex(compact)
    except ValueError:
        raise ValueError(f"{where}: {text.strip()!r} is not hex") from None
    try:
        CommandApdu.decode(raw)
    except ApduError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return raw


def parse_script(text: str, source: str = "script") -> list[bytes]:
    """One APDU per line; blank lines and ``#`` comments are skipped."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        if line.strip():
            out.append(parse_apdu(line, f"{source} line {number}"))
    if not out:
        raise ValueError(f"{source}: no APDU in it")
    return out


@dataclass
class ApduRun:
    reader: str
    atr: bytes
    timestamp: datetime
    clear: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": {"name": FORMAT_NAME, "version": FORMAT_VERSION},
                "created": self.timestamp.isoformat(timespec="seconds"),
                "reader": self.reader, "atr": self.atr.hex().upper(),
                "pan_masked": not self.clear, "apdus": self.results, "error": self.error}


def _shown(data: bytes, clear: bool) -> bytes:
    return data if clear else redact_tlv_bytes(data)


def send_all(transport: Transport, atr: bytes, apdus: list[bytes], *, reader: str,
             clear: bool, now: datetime) -> ApduRun:
    """Send each APDU in order; a card that leaves the field ends the run with the reason."""
    run = ApduRun(reader, atr, now, clear)
    for raw in apdus:
        first = len(transport.exchanges)
        try:
            answer = ResponseApdu.decode(transport.transmit(raw))
        except TransportError as exc:
            run.error = f"card lost at {raw[:4].hex().upper()}: {exc}"
            break
        wire = [{"c": e.command.hex().upper(),
                 "r": _shown(e.response[:-2], clear).hex().upper() + e.response[-2:].hex().upper()}
                for e in transport.exchanges[first:]]
        item: dict[str, Any] = {"command": raw.hex().upper(),
                                "response": _shown(answer.data, clear).hex().upper(),
                                "sw": f"{answer.sw:04X}", "meaning": status_meaning(answer.sw),
                                "wire": wire, "tlv": None}
        if answer.data:
            try:
                item["tlv"] = nodes(decode(answer.data), clear)
            except TlvError as exc:
                item["not_tlv"] = str(exc)
        run.results.append(item)
    return run
