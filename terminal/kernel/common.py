"""Kernel procedures shared by every path: GET PROCESSING OPTIONS, reading the application data,
GET DATA and GENERATE AC (EMV 4.4 Book 3, 6.5 and 10.1-10.2; Contactless Books C-3 and C-7).

Each function talks to the card through :meth:`TransactionContext.exchange` and either returns
what it read or raises :class:`KernelAbort` with the reason: a card that answers what the kernel
cannot use ends the application (Book A, 6.2 Outcome END APPLICATION). Decisions - approve,
decline, go online, another interface - are not raised: the paths return a
:class:`~terminal.outcome.KernelOutcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from emvtap.apdu import SW, CommandApdu
from emvtap.bits import CID, TVR, CryptogramType
from emvtap.dol import AflError, build_dol_data, parse_afl, parse_dol
from emvtap.tlv import Tlv, TlvError, decode, find
from terminal.context import TransactionContext
from terminal.kernel.redundancy import check_redundancy

__all__ = [
    "CDA_SIGNATURE_REQUESTED",
    "GenerateAcResponse",
    "KernelAbort",
    "build_dol",
    "generate_ac",
    "get_data",
    "initiate_application_processing",
    "parse_date",
    "read_application_data",
    "receive_card_data",
]


class KernelAbort(Exception):
    """The kernel cannot go on with what the card sent: the transaction ends with the Outcome
    END APPLICATION (Book A, 6.2.2) and this human ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def receive_card_data(ctx: TransactionContext, objs: list[Tlv], source: str, *,
                      requested: int | None = None) -> None:
    """Take the data objects of one card answer into the transaction (``ctx.learn``) after
    the redundancy rule of Book 3, 10.2 (:func:`~terminal.kernel.redundancy.check_redundancy`):
    a data object met twice in the FCI, the GPO answer, the records and the GET DATA answers
    ends the application."""
    redundant = check_redundancy(ctx.received, objs, source, requested=requested)
    if redundant is not None:
        raise KernelAbort(redundant)
    ctx.learn(objs)


#: Book 3, 5.4 / 6.5: the most DOL data each command carries in a short APDU - GET
#: PROCESSING OPTIONS wraps the PDOL data in 83 (tag, and a length of up to 2 bytes).
DOL_DATA_LIMITS: dict[str, int] = {"PDOL": 252, "CDOL": 255, "DDOL": 255, "TDOL": 4096}


def parse_date(value: bytes) -> date | None:
    """Book 3, Annex A: a YYMMDD date (n 6); YY 00-49 is 20YY, 50-99 is 19YY. ``None`` when
    the bytes are not a valid date."""
    text = value.hex()
    if len(value) != 3 or not text.isdigit():
        return None
    yy, mm, dd = int(text[0:2]), int(text[2:4]), int(text[4:6])
    try:
        return date(2000 + yy if yy < 50 else 1900 + yy, mm, dd)
    except ValueError:
        return None


def build_dol(dol: bytes, values: dict[int, bytes], what: str) -> tuple[bytes, dict[int, bytes]]:
    """Book 3, 5.4: the DOL data for ``dol`` and the value each tag was given. A DOL the card
    sent malformed, or one whose data no command can carry (a long-form length such as
    ``9A 83``), ends the application."""
    try:
        entries = parse_dol(dol)
        data = build_dol_data(entries, values)
    except (TlvError, ValueError) as exc:
        raise KernelAbort(f"{what} from the card is malformed: {exc}") from exc
    limit = DOL_DATA_LIMITS.get(what, 255)
    if len(data) > limit:
        raise KernelAbort(f"{what} from the card asks for {len(data)} bytes of data, more than "
                          f"its command carries ({limit})")
    sent: dict[int, bytes] = {}
    pos = 0
    for e in entries:
        sent[e.tag] = data[pos:pos + e.length]
        pos += e.length
    return data, sent


#: ISO/IEC 7816-4, 5.1: the most data a response to a short command (Le = 00) carries; GET
#: PROCESSING OPTIONS is a short command (EMV Book 1, 9.3), so a longer answer is a card that
#: lies about the protocol, never data to act on.
MAX_SHORT_RESPONSE = 256


def initiate_application_processing(
    ctx: TransactionContext, pdol: bytes, ttq: bytes
) -> list[Tlv]:
    """Book 3, 10.1: GET PROCESSING OPTIONS with the PDOL data (command template 83).

    Returns the response objects (Format 1 ``80`` is converted to AIP/AFL objects).
    Conditions of use not satisfied (6985) ends the application, as C-7 and C-3 require.
    """
    values = ctx.terminal_data() | {0x9F66: ttq}
    data, ctx.pdol_values = build_dol(pdol, values, "PDOL") if pdol else (b"", {})
    ctx.pdol_data = data
    cmd = CommandApdu(0x80, 0xA8, 0x00, 0x00, Tlv.primitive(0x83, data).encode(), 0)
    resp = ctx.exchange(cmd, "GET PROCESSING OPTIONS")
    if resp.sw == SW.CONDITIONS_NOT_SATISFIED:
        raise KernelAbort("card refused GPO: conditions of use not satisfied (6985)")
    if resp.sw != SW.OK:
        raise KernelAbort(f"GPO answered {resp.sw:04X}")
    if len(resp.data) > MAX_SHORT_RESPONSE:
        raise KernelAbort(f"GPO answered {len(resp.data)} data bytes, more than a short response "
                          f"carries ({MAX_SHORT_RESPONSE}, ISO/IEC 7816-4, 5.1)")
    try:
        objs = decode(resp.data)
    except TlvError as exc:
        raise KernelAbort(f"GPO response is not BER-TLV: {exc}") from exc
    if len(objs) != 1 or objs[0].tag not in (0x77, 0x80):
        raise KernelAbort("GPO response is neither Format 1 (80) nor Format 2 (77)")
    top = objs[0]
    if top.tag == 0x80:
        if len(top.value) < 2 or (len(top.value) - 2) % 4:
            raise KernelAbort("GPO Format 1 with a bad length")
        objs = [Tlv.primitive(0x82, top.value[:2]), Tlv.primitive(0x94, top.value[2:])]
    else:
        objs = list(top.children or ())
    ctx.card[0x9F66] = ttq
    receive_card_data(ctx, objs, "GPO answer")
    for tag, what in ((0x82, "AIP"), (0x94, "AFL")):
        obj = find(objs, tag)
        if obj is None:
            raise KernelAbort(f"ICC data missing: {what} ({tag:X}) not in GPO")
    if len(ctx.card[0x82]) != 2:
        raise KernelAbort(f"AIP has {len(ctx.card[0x82])} bytes, not 2")
    return objs


def read_application_data(ctx: TransactionContext) -> None:
    """Book 3, 10.2: READ RECORD for every record the AFL names; keep the records in the
    static data for ODA; a record that is not a 70 template ends the transaction, and so
    does a primitive data object met twice - in the records or in the FCI, GPO answer or
    GET DATA answers before them (Book 3, 10.2: "redundant primitive data objects are not
    permitted"; :func:`receive_card_data`)."""
    try:
        afl = parse_afl(ctx.card[0x94])
    except AflError as exc:
        raise KernelAbort(f"AFL is malformed: {exc}") from exc
    for entry in afl:
        for rec in entry.records():
            cmd = CommandApdu(0x00, 0xB2, rec, (entry.sfi << 3) | 0x04, b"", 0)
            resp = ctx.exchange(cmd, f"READ RECORD SFI {entry.sfi} record {rec}")
            if resp.sw != SW.OK:
                raise KernelAbort(f"READ RECORD SFI {entry.sfi} record {rec} answered "
                                  f"{resp.sw:04X}")
            try:
                objs = decode(resp.data)
            except TlvError as exc:
                raise KernelAbort(f"record SFI {entry.sfi}/{rec} is not BER-TLV: {exc}") from exc
            if entry.sfi <= 10 and (len(objs) != 1 or objs[0].tag != 0x70):
                raise KernelAbort(f"record SFI {entry.sfi}/{rec} is not a 70 template")
            receive_card_data(ctx, objs, f"record SFI {entry.sfi}/{rec}")
            ctx.records[(entry.sfi, rec)] = resp.data


def get_data(ctx: TransactionContext, tag: int) -> bytes | None:
    """Book 3, 6.5.7: GET DATA for one primitive data object (9F36, 9F13, 9F17, 9F4F ...);
    ``None`` when the card does not return it. What the answer holds is card data like any
    other: a data object the card already gave, other than the one asked for unchanged, is
    redundant (:func:`receive_card_data`)."""
    cmd = CommandApdu(0x80, 0xCA, tag >> 8, tag & 0xFF, b"", 0)
    resp = ctx.exchange(cmd, f"GET DATA {tag:X}")
    if resp.sw != SW.OK:
        return None
    try:
        objs = decode(resp.data)
    except TlvError:
        return None
    receive_card_data(ctx, objs, f"GET DATA {tag:X} answer", requested=tag)
    obj = find(objs, tag)
    return obj.value if obj is not None else None


#: Book 3, 6.5.5.2 Table 12: GENERATE AC P1 b5; b8-b7 are the :class:`CryptogramType` itself.
CDA_SIGNATURE_REQUESTED = 0x10

#: Book 3, 9.3: a card may answer a lower cryptogram than the one asked for, never a higher.
_CRYPTOGRAM_RANK: dict[CryptogramType, int] = {
    CryptogramType.AAC: 0, CryptogramType.ARQC: 1, CryptogramType.TC: 2}


@dataclass(frozen=True)
class GenerateAcResponse:
    """The card's answer to GENERATE AC (Book 3, 6.5.5.4): Format 1 is opened into the same
    fields as Format 2; ``raw`` is the response data (CDA hashes it as received)."""

    cid: int
    atc: bytes
    ac: bytes | None  # absent in Format 2 when CDA puts it inside 9F4B
    iad: bytes
    objects: tuple[Tlv, ...]
    raw: bytes

    @property
    def cryptogram_type(self) -> CryptogramType:
        """The type in CID b8-b7 (ValueError for RFU: :func:`generate_ac` never returns one)."""
        return CryptogramType.of(self.cid)

    @property
    def cryptogram_name(self) -> str:
        return CID.type_of(self.cid)


def generate_ac(ctx: TransactionContext, requested: CryptogramType, cdol: bytes, *, cda: bool,
                values: dict[int, bytes], name: str
                ) -> tuple[GenerateAcResponse, bytes, dict[int, bytes]]:
    """Book 3, 6.5.5 / 9.3: GENERATE AC for ``requested`` (AAC/TC/ARQC), with the CDA
    signature bit when ``cda``. Returns the parsed response, the CDOL data sent and the value
    sent for each CDOL tag.

    The card may answer a lower cryptogram than requested (AAC < ARQC < TC), never a higher
    one, and never RFU (AAR) - both end the application; so does a data object twice in the
    answer (Book 3, 10.2: a second 9F4B or 9F36 is not the signed one).
    """
    data, sent = build_dol(cdol, values, "CDOL")
    p1 = requested | (CDA_SIGNATURE_REQUESTED if cda else 0)
    resp = ctx.exchange(CommandApdu(0x80, 0xAE, p1, 0x00, data, 0),
                        f"{name} ({requested}{' + CDA' if cda else ''})")
    if resp.sw != SW.OK:
        raise KernelAbort(f"{name} answered {resp.sw:04X}")
    try:
        objs = decode(resp.data)
    except TlvError as exc:
        raise KernelAbort(f"{name} response is not BER-TLV: {exc}") from exc
    if len(objs) != 1 or objs[0].tag not in (0x77, 0x80):
        raise KernelAbort(f"{name} response is neither Format 1 nor 2")
    top = objs[0]
    if top.tag == 0x80:
        v = top.value
        if len(v) < 11:
            raise KernelAbort(f"{name} Format 1 response of {len(v)} bytes")
        parsed = GenerateAcResponse(v[0], v[1:3], v[3:11], v[11:], (
            Tlv.primitive(0x9F27, v[:1]), Tlv.primitive(0x9F36, v[1:3]),
            Tlv.primitive(0x9F26, v[3:11]), *([Tlv.primitive(0x9F10, v[11:])] if v[11:] else [])
        ), resp.data)
    else:
        kids = tuple(top.children or ())
        redundant = check_redundancy({}, list(kids), f"{name} answer")  # Book 3, 10.2
        if redundant is not None:
            raise KernelAbort(redundant)
        fields = {t.tag: t.value for t in reversed(kids)}
        missing = [f"{n} ({t:X})" for t, n in ((0x9F27, "CID"), (0x9F36, "ATC"))
                   if t not in fields]
        if not cda and 0x9F26 not in fields:
            missing.append("Application Cryptogram (9F26)")
        if missing:
            ctx.result.set_tvr(TVR.ICC_DATA_MISSING)
            raise KernelAbort(f"ICC data missing in the {name} response: " + ", ".join(missing))
        if len(fields[0x9F27]) != 1 or len(fields[0x9F36]) != 2:
            raise KernelAbort(f"{name}: CID or ATC of the wrong length")
        parsed = GenerateAcResponse(fields[0x9F27][0], fields[0x9F36], fields.get(0x9F26),
                                    fields.get(0x9F10, b""), kids, resp.data)
    try:
        returned = parsed.cryptogram_type
    except ValueError:
        raise KernelAbort(f"{name}: card returned an undefined cryptogram type (CID "
                          f"{parsed.cid:02X})") from None
    if _CRYPTOGRAM_RANK[returned] > _CRYPTOGRAM_RANK[requested]:
        raise KernelAbort(f"{name}: card returned {parsed.cryptogram_name} when {requested} "
                          "was requested (a card may only lower the cryptogram)")
    return parsed, data, sent
