"""The card read as one document: the reader, the ATR, the directory, every application, the
APDU log and what went wrong; its JSON form is format ``emvtap-terminal-read`` (schema in
docs/json/terminal-read.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emvtap.capk import CapkStore
from terminal.config import TerminalConfig
from terminal.transport.base import Transport, TransportError

from .application import GPO_ATC_NOTE, ApplicationReport, read_application
from .directory import Directory, discover_applications, is_contactless_atr
from .session import ReadSession

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "CardReport", "read_card"]

FORMAT_NAME = "emvtap-terminal-read"
FORMAT_VERSION = 1


@dataclass
class CardReport:
    reader: str
    atr: bytes
    gpo: bool
    clear: bool
    timestamp: datetime
    directory: Directory = field(default_factory=Directory)
    applications: list[ApplicationReport] = field(default_factory=list)
    apdus: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """The read reached its end (the card did not leave the field or fail the link)."""
        return not any(e.startswith("card lost") for e in self.errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": {"name": FORMAT_NAME, "version": FORMAT_VERSION},
            "created": self.timestamp.isoformat(timespec="seconds"),
            "reader": self.reader,
            "atr": self.atr.hex().upper(),
            "interface": "contactless" if is_contactless_atr(self.atr) else "contact",
            "pan_masked": not self.clear,
            "gpo": self.gpo,
            "notes": [GPO_ATC_NOTE] if self.gpo else ["--no-gpo: applications read up to "
                                                      "SELECT and GET DATA only"],
            "directory": self.directory.to_json(),
            "applications": [a.to_json() for a in self.applications],
            "apdus": self.apdus,
            "errors": self.errors,
        }


def read_card(transport: Transport, atr: bytes, *, reader: str, config: TerminalConfig,
              capks: CapkStore, gpo: bool = True, clear: bool = False,
              now: datetime | None = None) -> CardReport:
    """Read the connected card: directory, then each application it lists (or the AID list
    finds). A transport failure mid-read ends the read with what was read so far and the
    reason in ``errors`` (``card lost: ...``)."""
    now = now or datetime.now(UTC).astimezone()
    report = CardReport(reader, atr, gpo, clear, now)
    session = ReadSession(transport, clear)
    try:
        report.directory = discover_applications(session, atr, clear)
        if not report.directory.entries:
            report.errors.append("no application found: the card answered no directory "
                                 "(PPSE/PSE) and no AID of the list")
        for entry in report.directory.entries:
            app = ApplicationReport(entry.aid, entry.label, entry.source)
            report.applications.append(app)
            read_application(session, app, config=config, capks=capks, gpo=gpo, clear=clear,
                             now=now)
    except TransportError as exc:
        where = session.log[-1]["label"] if session.log else "the first command"
        report.errors.append(f"card lost after {where}: {exc}")
    report.apdus = session.log
    return report
