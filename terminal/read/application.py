"""What one application holds: SELECT (EMV 4.4 Book 1, 12.3), GET PROCESSING OPTIONS with the
PDOL filled from the neutral profile (Book 3, 10.1), every record of the AFL (Book 3, 10.2),
GET DATA of the counters, the log entry/format, the transaction log (Book 3 Annex D) and the
CPLC, then the certificate chain. Every step that fails is reported with the card's answer
and the read goes on with what can still be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from emvtap import oda
from emvtap.apdu import SW, CommandApdu
from emvtap.capk import CapkStore
from emvtap.describe import describe, describe_amount, parse_track2
from emvtap.dol import AflError, build_dol_data, parse_afl, parse_dol, split_dol_data
from emvtap.masking import mask_pan, redact_tlv_bytes
from emvtap.tlv import Tlv, TlvError, decode, encode_length, find, flatten
from terminal.config import TerminalConfig

from .aids import scheme_of
from .certificates import check_certificates
from .nodes import nodes
from .profile import pdol_values
from .session import ReadSession, sw_json

__all__ = ["GET_DATA_TAGS", "GPO_ATC_NOTE", "ApplicationReport", "read_application"]

#: GET DATA objects a read asks for (Book 3, 6.5.7: CLA 80 INS CA, P1 P2 the tag).
GET_DATA_TAGS: tuple[int, ...] = (0x9F36, 0x9F13, 0x9F17, 0x9F4D, 0x9F4F, 0x9F79, 0x9F7F)

GPO_ATC_NOTE = ("GET PROCESSING OPTIONS advances a contactless card's Application "
                "Transaction Counter (ATC); --no-gpo stops after SELECT")

#: Transaction log records are read up to this many (Book 3 Annex D: the log entry's count).
MAX_LOG_RECORDS = 30


@dataclass
class ApplicationReport:
    aid: bytes
    label: str = ""
    source: str = ""
    select: dict[str, Any] = field(default_factory=dict)
    fci: list[dict[str, Any]] = field(default_factory=list)
    gpo: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    get_data: list[dict[str, Any]] = field(default_factory=list)
    transaction_log: list[dict[str, Any]] = field(default_factory=list)
    certificates: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    data: dict[int, bytes] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"aid": self.aid.hex().upper(), "label": self.label,
                "scheme": scheme_of(self.aid), "source": self.source, **self.summary,
                "select": self.select, "fci": self.fci, "gpo": self.gpo,
                "records": self.records, "get_data": self.get_data,
                "transaction_log": self.transaction_log, "certificates": self.certificates,
                "errors": self.errors}


def _decode_or_report(data: bytes, what: str, app: ApplicationReport) -> list[Tlv] | None:
    try:
        return decode(data)
    except TlvError as exc:
        app.errors.append(f"{what}: the answer is not BER-TLV ({exc}); raw "
                          f"{len(data)} bytes kept in the APDU log")
        return None


def select_application(session: ReadSession, app: ApplicationReport, clear: bool) -> bool:
    """SELECT by DF name (Book 1, 11.3.2). True when the application can be read further:
    9000. 6283 (blocked, Book 1 12.2.3) is reported with its FCI and read no further."""
    r = session.send(CommandApdu(0x00, 0xA4, 0x04, 0x00, app.aid, 0),
                     f"SELECT {app.aid.hex().upper()}")
    app.select = sw_json(r.sw)
    if r.sw == SW.SELECTED_FILE_INVALIDATED:
        app.select["note"] = "application blocked: the card refuses to process it"
    elif r.sw != SW.OK:
        app.errors.append(f"SELECT answered {r.sw:04X} ({app.select['meaning']})")
        return False
    fci = _decode_or_report(r.data, "SELECT", app) if r.data else []
    if fci:
        app.fci = nodes(fci, clear)
        app.data.update({k: v for k, v in flatten(fci).items() if k not in app.data})
        label = find(fci, 0x50)
        if label is not None and not app.label:
            app.label = label.value.decode("ascii", "replace")
    return r.sw == SW.OK


def get_processing_options(session: ReadSession, app: ApplicationReport,
                           config: TerminalConfig, now: datetime, clear: bool) -> bytes | None:
    """Book 3, 6.5.8 / 10.1: GPO with 83 ‖ PDOL data; the AIP and AFL of format 1 (80) or
    format 2 (77). Returns the AFL (empty when the card gives none), ``None`` on refusal."""
    pdol = app.data.get(0x9F38, b"")
    try:
        dol_data = build_dol_data(parse_dol(pdol), pdol_values(config, now)) if pdol else b""
    except TlvError as exc:
        app.errors.append(f"PDOL 9F38 is malformed ({exc}); GPO sent with empty PDOL data")
        dol_data = b""
    body = b"\x83" + encode_length(len(dol_data)) + dol_data
    if len(body) > 255:
        app.errors.append(f"PDOL asks for {len(dol_data)} bytes: too long for GPO")
        return None
    r = session.send(CommandApdu(0x80, 0xA8, 0x00, 0x00, body, 0), "GET PROCESSING OPTIONS")
    app.gpo = {**sw_json(r.sw), "pdol_data": dol_data.hex().upper(), "note": GPO_ATC_NOTE}
    if r.sw != SW.OK:
        app.errors.append(f"GPO answered {r.sw:04X} ({app.gpo['meaning']})")
        return None
    tlvs = _decode_or_report(r.data, "GPO", app)
    if tlvs is None or not tlvs:
        return None
    if tlvs[0].tag == 0x80:  # format 1: AIP (2) ‖ AFL
        value = tlvs[0].value
        if len(value) < 2:
            app.errors.append("GPO format 1 shorter than the AIP")
            return None
        aip, afl = value[:2], value[2:]
        tlvs = [Tlv(0x82, aip), Tlv(0x94, afl)]
        app.gpo["format"] = 1
    else:
        app.gpo["format"] = 2
    app.gpo["response"] = nodes(tlvs, clear)
    app.data.update(flatten(tlvs))
    return app.data.get(0x94, b"")


def read_records(session: ReadSession, app: ApplicationReport, afl: bytes, clear: bool
                 ) -> dict[tuple[int, int], bytes]:
    """Book 3, 10.2: READ RECORD of every record the AFL names, in order."""
    raw: dict[tuple[int, int], bytes] = {}
    if not afl:
        return raw
    try:
        entries = parse_afl(afl)
    except AflError as exc:
        app.errors.append(f"AFL 94 is invalid ({exc}): no record read")
        return raw
    for entry in entries:
        for number in entry.records():
            r = session.send(CommandApdu(0x00, 0xB2, number, (entry.sfi << 3) | 0x04, b"", 0),
                             f"READ RECORD SFI {entry.sfi} record {number}")
            item: dict[str, Any] = {"sfi": entry.sfi, "record": number,
                                    "oda": entry.is_oda(number), **sw_json(r.sw)}
            app.records.append(item)
            if r.sw != SW.OK:
                app.errors.append(f"READ RECORD SFI {entry.sfi} record {number} answered "
                                  f"{r.sw:04X} ({item['meaning']})")
                if r.data:  # what the card answered, as it answered it (not decoded)
                    item["data"] = (r.data if clear else redact_tlv_bytes(r.data)).hex().upper()
                continue
            raw[(entry.sfi, number)] = r.data
            tlvs = _decode_or_report(r.data, f"record {number} of SFI {entry.sfi}", app)
            if tlvs is None:
                continue
            if entry.sfi <= 10 and (len(tlvs) != 1 or tlvs[0].tag != 0x70):
                app.errors.append(f"record {number} of SFI {entry.sfi} is not one 70 template")
            item["tlv"] = nodes(tlvs, clear)
            for k, v in flatten(tlvs).items():
                app.data.setdefault(k, v)
    return raw


def get_data(session: ReadSession, app: ApplicationReport, clear: bool) -> None:
    """Book 3, 6.5.7: GET DATA of the counters, log entry/format, e-cash balance and CPLC.
    A card without the object answers 6A88 (or another error), reported as such."""
    for tag in GET_DATA_TAGS:
        r = session.send(CommandApdu(0x80, 0xCA, tag >> 8, tag & 0xFF, b"", 0),
                         f"GET DATA {tag:04X}")
        item: dict[str, Any] = {"tag": f"{tag:04X}", **sw_json(r.sw)}
        app.get_data.append(item)
        if r.sw != SW.OK or not r.data:
            continue
        try:
            tlvs = decode(r.data)
        except TlvError:
            tlvs = [Tlv(tag, r.data)]  # some cards answer the bare value
        if tag == 0x9F7F and tlvs and tlvs[0].tag != 0x9F7F:
            tlvs = [Tlv(0x9F7F, r.data)]
        item["tlv"] = nodes(tlvs, clear)
        for k, v in flatten(tlvs).items():
            app.data.setdefault(k, v)


def _log_entry_json(values: dict[int, bytes]) -> dict[str, Any]:
    currency = values.get(0x5F2A)
    out: dict[str, Any] = {}
    for tag, key in ((0x9A, "date"), (0x9F21, "time"), (0x9C, "type"), (0x9F36, "atc"),
                     (0x9F1A, "country"), (0x5F2A, "currency"), (0x9F4E, "merchant")):
        if tag in values:
            d = describe(tag, values[tag])
            out[key] = d.summary if d else values[tag].hex().upper()
    if 0x9F21 in values and len(values[0x9F21]) == 3:
        t = values[0x9F21].hex()
        out["time"] = f"{t[:2]}:{t[2:4]}:{t[4:]}"
    if 0x9F02 in values:
        out["amount"] = describe_amount(values[0x9F02], currency)
    if 0x9F03 in values:
        out["amount_other"] = describe_amount(values[0x9F03], currency)
    out["raw"] = {f"{k:X}": v.hex().upper() for k, v in values.items()}
    return out


def read_transaction_log(session: ReadSession, app: ApplicationReport) -> None:
    """Book 3 Annex D: the log entry (9F4D: SFI, record count) names the log file, the log
    format (9F4F, a DOL) the layout of each record."""
    entry, fmt = app.data.get(0x9F4D), app.data.get(0x9F4F)
    if not entry:
        return
    if len(entry) != 2 or not 1 <= entry[0] <= 30:
        app.errors.append(f"log entry 9F4D {entry.hex().upper()} is not SFI ‖ count")
        return
    if not fmt:
        app.errors.append("the card has a log entry (9F4D) but gave no log format (9F4F)")
        return
    try:
        dol = parse_dol(fmt)
    except TlvError as exc:
        app.errors.append(f"log format 9F4F is not a DOL ({exc})")
        return
    sfi, count = entry[0], min(entry[1], MAX_LOG_RECORDS)
    for number in range(1, count + 1):
        r = session.send(CommandApdu(0x00, 0xB2, number, (sfi << 3) | 0x04, b"", 0),
                         f"READ RECORD transaction log SFI {sfi} record {number}")
        if r.sw != SW.OK:
            break
        try:
            values = split_dol_data(dol, r.data)
        except ValueError as exc:
            app.errors.append(f"transaction log record {number}: {exc}")
            continue
        app.transaction_log.append({"record": number, **_log_entry_json(values)})


def _pan(data: dict[int, bytes]) -> str | None:
    if 0x5A in data:
        digits = data[0x5A].hex().upper().rstrip("F")
        return digits if digits.isdigit() else None
    for tag in (0x57, 0x9F6B):
        if tag in data and (track := parse_track2(data[tag])) is not None:
            return track.pan
    return None


def _expiry(data: dict[int, bytes]) -> str | None:
    if 0x5F24 in data and (d := describe(0x5F24, data[0x5F24])) is not None:
        return d.summary
    for tag in (0x57, 0x9F6B):
        if tag in data and (track := parse_track2(data[tag])) is not None:
            return f"20{track.expiry_yymm[:2]}-{track.expiry_yymm[2:]}"
    return None


def summarise(app: ApplicationReport, clear: bool) -> None:
    data = app.data
    pan = _pan(data)
    app.summary = {
        "pan": (pan if clear else mask_pan(pan)) if pan else None,
        "expiry": _expiry(data),
        "preferred_name": data[0x9F12].decode("ascii", "replace") if 0x9F12 in data else None,
        "aip": data[0x82].hex().upper() if 0x82 in data else None,
        "afl": data[0x94].hex().upper() if 0x94 in data else None,
        "atc": int.from_bytes(data[0x9F36], "big") if 0x9F36 in data else None,
    }
    for key, tag in (("aip_decoded", 0x82), ("afl_decoded", 0x94)):
        if tag in data and (d := describe(tag, data[tag])) is not None:
            app.summary[key] = d.to_json()


def _static_data(app: ApplicationReport, raw: dict[tuple[int, int], bytes]
                 ) -> tuple[bytes | None, str | None]:
    try:
        return oda.static_data_to_be_authenticated(
            app.data.get(0x94, b""), raw, app.data.get(0x82, b""), app.data.get(0x9F4A)), None
    except oda.OdaError as exc:
        return None, exc.reason


def read_application(session: ReadSession, app: ApplicationReport, *, config: TerminalConfig,
                     capks: CapkStore, gpo: bool, clear: bool, now: datetime) -> None:
    """Read one application as far as the card lets it; the result is in ``app``."""
    readable = select_application(session, app, clear)
    raw: dict[tuple[int, int], bytes] = {}
    if readable and gpo:
        afl = get_processing_options(session, app, config, now, clear)
        if afl is not None:
            raw = read_records(session, app, afl, clear)
    if readable:
        get_data(session, app, clear)
        read_transaction_log(session, app)
    summarise(app, clear)
    if readable and gpo:
        static, why = _static_data(app, raw)
        app.certificates = check_certificates(app.aid, app.data, _pan(app.data), static, why,
                                              capks, date(now.year, now.month, now.day))
