"""ISO 8583 (1987) as the emvtap terminal and switch speak it: field table, codec, framing, DE 48.

Pure except for :func:`exchange`, the small synchronous client. The terminal and the switch both
import this module; it is the whole contract of the acquirer link (docs/architecture.md "One tap,
as data", steps 4-5; docs/emv-notes.md, Tokenisation).

Message layout (no header)::

    MTI (4 ASCII digits) ‖ primary bitmap (8 bytes, BINARY) ‖ [secondary bitmap (8 bytes, BINARY)]
    ‖ fields in ascending order

All lengths of variable fields are ASCII digits (LL / LLL). All data is ASCII except DE 52 and
DE 55, which are binary. The secondary bitmap is present (bit 1 set) only when a field above 64
(DE 70, DE 90) is present. On TCP every message is framed as a 2-byte big-endian length followed by
the message (:func:`frame`); a frame longer than :data:`MAX_MESSAGE_LEN` is refused.

Field table (``n`` digits, ``an`` letters+digits, ``ans`` printable ASCII, ``z`` track-2 digits and
``=``, ``b`` binary; ``..N`` = variable up to N with an LL or LLL length prefix)

====  ======  ====================================  =============================================
DE    format  name                                  what emvtap puts there
====  ======  ====================================  =============================================
t     n 4     Message Type Identifier               0100/0110 authorization, 0200/0210 financial,
                                                    0400/0410 reversal, 0800/0810 network mgmt
2     n ..19  Primary Account Number (LLVAR)        the **token (MPAN)** read from the device
                                                    card, never the SPAN (the switch de-tokenises)
3     n 6     Processing code                       ``000000`` purchase (the only one the switch
                                                    accepts; others get DE 39 = 12)
4     n 12    Amount, transaction                   minor units (12.34 → ``000000001234``)
7     n 10    Transmission date and time            MMDDhhmmss, UTC
11    n 6     System trace audit number (STAN)      per terminal; with DE 41 and DE 37 the key
                                                    that identifies a retransmission
12    n 6     Local transaction time                hhmmss
13    n 4     Local transaction date                MMDD
14    n 4     Expiration date                       YYMM of the **token** (MPAN), not the SPAN
22    n 3     POS entry mode                        ``07x`` contactless chip, ``91x`` contactless
                                                    magstripe, ``81x`` e-commerce/in-app, ``05x``
                                                    contact chip (x: PIN capability)
23    n 3     Card sequence number                  PSN (5F34) as 3 digits
35    z ..37  Track 2 data (LLVAR)                  57 with ``D`` rendered as ``=``, F pad removed
37    an 12   Retrieval reference number            terminal-assigned
38    an 6    Authorization identification response set by the switch on approval
39    an 2    Response code                         see the switch's response-code table
41    ans 8   Card acceptor terminal id             terminal id
42    ans 15  Card acceptor id code                 merchant id
48    ans ..999 Additional data, private (LLLVAR)   the token data TLV below (:class:`TokenData`)
49    n 3     Currency code, transaction            ISO 4217 numeric (``156`` CNY)
52    b 8     PIN data                              ISO 9564 PIN block (online PIN only)
55    b ..999 ICC data (LLLVAR, binary)             BER-TLV: 9F26 9F27 9F10 9F37 9F36 95 9A 9C
                                                    9F02 5F2A 82 9F1A 9F03 ... ; in 0110: 91,
                                                    71/72 issuer scripts
56    ans ..99 Payment Account Reference (LLVAR)    PAR (29 characters), in the response
70    n 3     Network management information code   ``001`` sign-on, ``002`` sign-off, ``301``
                                                    echo test
90    n 42    Original data elements                reversal: original MTI (4) ‖ STAN (6) ‖
                                                    DE 7 (10) ‖ acquirer id (11) ‖ forwarding
                                                    id (11), zero-filled
====  ======  ====================================  =============================================

DE 48 token data (a private TLV, Mastercard DE 48 style: each sub-element is a 2-digit tag, a
2-digit length and the value, all ASCII). It is the reserved field that tells the issuer a
transaction came from a device card (docs/domain.md, "A transaction with a token"):

=====  ==========================  ======  ===================================================
tag    sub-element                 format  values
=====  ==========================  ======  ===================================================
01     token requestor id          n 11    TSP code (3) ‖ requestor (8), TF v2.3
02     token status                an 1    ``A`` active, ``S`` suspended, ``D`` deleted
03     Payment Account Reference   an 29   PAR, TF v2.3
04     device type                 n 2     ``01`` handset-maker SE, ``02`` wearable SE,
                                           ``03`` HCE, ``04`` SIM SE (retired)
05     device channel              an 1    ``P`` contactless at a POS, ``A`` in-app (remote)
06     token assurance level       n 2     00-99 (TF v1 Token Assurance Level)
07     device verification         n 1     ``1`` the device verified the cardholder (CDCVM,
                                           passcode, biometrics), ``0`` it did not
=====  ==========================  ======  ===================================================

Python values: :func:`decode_message` returns ``{"t": MTI, "2": "...", ...}`` — keys are the field
numbers as strings, text fields are ``str``, binary fields (52, 55) are ``bytes``. Bitmaps are not
in the dict; :func:`encode_message` computes them. Anything malformed raises
:class:`MessageFormatError` — never another exception.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from emvtap import tlv
from emvtap.masking import mask_pan
from emvtap.tags import SENSITIVE_TAGS

__all__ = [
    "FIELDS",
    "MAX_MESSAGE_LEN",
    "MTIS",
    "SPEC",
    "FieldDef",
    "MessageFormatError",
    "TokenData",
    "decode_message",
    "decode_token_data",
    "encode_message",
    "encode_token_data",
    "exchange",
    "frame",
    "read_frame",
    "redacted",
    "response_mti",
    "unframe",
]


class FieldDef(NamedTuple):
    """One data element: ISO 8583 format letter(s), fixed length or LL/LLL prefix, max length."""

    name: str
    fmt: str  # n, an, ans, z, b
    prefix: int  # 0 fixed, 2 LLVAR, 3 LLLVAR (ASCII digits)
    max_len: int  # bytes (characters for text fields)


#: The field table: the single source of the pyiso8583 :data:`SPEC` and of the checks below.
FIELDS: dict[int, FieldDef] = {
    2: FieldDef("Primary account number (token, MPAN)", "n", 2, 19),
    3: FieldDef("Processing code", "n", 0, 6),
    4: FieldDef("Amount, transaction", "n", 0, 12),
    7: FieldDef("Transmission date and time", "n", 0, 10),
    11: FieldDef("System trace audit number", "n", 0, 6),
    12: FieldDef("Local transaction time", "n", 0, 6),
    13: FieldDef("Local transaction date", "n", 0, 4),
    14: FieldDef("Expiration date (token)", "n", 0, 4),
    22: FieldDef("POS entry mode", "n", 0, 3),
    23: FieldDef("Card sequence number", "n", 0, 3),
    35: FieldDef("Track 2 data", "z", 2, 37),
    37: FieldDef("Retrieval reference number", "an", 0, 12),
    38: FieldDef("Authorization identification response", "an", 0, 6),
    39: FieldDef("Response code", "an", 0, 2),
    41: FieldDef("Card acceptor terminal identification", "ans", 0, 8),
    42: FieldDef("Card acceptor identification code", "ans", 0, 15),
    48: FieldDef("Additional data, private (token data)", "ans", 3, 999),
    49: FieldDef("Currency code, transaction", "n", 0, 3),
    52: FieldDef("PIN data", "b", 0, 8),
    55: FieldDef("ICC data", "b", 3, 999),
    56: FieldDef("Payment account reference", "ans", 2, 99),
    70: FieldDef("Network management information code", "n", 0, 3),
    90: FieldDef("Original data elements", "n", 0, 42),
}

#: request MTI → response MTI, the message classes the switch handles.
MTIS: dict[str, str] = {"0100": "0110", "0200": "0210", "0400": "0410", "0800": "0810"}
_ALL_MTIS = frozenset(MTIS) | frozenset(MTIS.values())

#: Largest message (without the 2-byte frame length) either side accepts.
MAX_MESSAGE_LEN = 4096


def _pyiso_field(fd: FieldDef) -> dict[str, Any]:
    return {
        "data_enc": "b" if fd.fmt == "b" else "ascii",
        "len_enc": "ascii",
        "len_type": fd.prefix,
        "max_len": fd.max_len,
        "desc": fd.name,
    }


#: pyiso8583 specification: no header, ASCII MTI, BINARY primary and secondary bitmaps.
SPEC: dict[str, dict[str, Any]] = {
    "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "none"},
    "t": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 4, "desc": "MTI"},
    "p": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap"},
    "1": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap 2"},
    **{str(n): _pyiso_field(fd) for n, fd in FIELDS.items()},
}

#: format letter → the characters it allows (ISO 8583:1987 §4.1 data element formats)
_CHARSETS: dict[str, re.Pattern[str]] = {
    "n": re.compile(r"[0-9]*"),
    "an": re.compile(r"[0-9A-Za-z ]*"),  # an fields are space-padded on the right
    "ans": re.compile(r"[\x20-\x7e]*"),
    "z": re.compile(r"[0-9=]*"),
}
#: the same without padding spaces, for DE 48 sub-elements
_STRICT: dict[str, re.Pattern[str]] = {
    "n": re.compile(r"[0-9]*"),
    "an": re.compile(r"[0-9A-Za-z]*"),
}


class MessageFormatError(ValueError):
    """A message that is not a well-formed emvtap ISO 8583 message.

    ``field`` is the data element at fault (``"t"`` MTI, ``"p"``/``"1"`` bitmaps, ``"48"`` ...,
    ``"frame"`` for framing); ``reason`` says what was wrong. ``mti`` (the MTI as read, possibly
    one emvtap does not handle — check it against :data:`MTIS`) and ``stan`` are set when they
    could still be read, so that a server can answer with a format-error response (DE 39 = 30)
    instead of closing the connection.
    """

    def __init__(
        self, field: str, reason: str, *, mti: str | None = None, stan: str | None = None
    ) -> None:
        super().__init__(f"DE {field}: {reason}")
        self.field = field
        self.reason = reason
        self.mti = mti
        self.stan = stan


def response_mti(mti: str) -> str:
    """The response MTI of a request MTI (``0100`` → ``0110``)."""
    try:
        return MTIS[mti]
    except KeyError:
        raise MessageFormatError("t", f"{mti!r} is not a request MTI emvtap handles") from None


def _check_value(number: int, value: str) -> None:
    fd = FIELDS[number]
    if _CHARSETS[fd.fmt].fullmatch(value) is None:
        raise ValueError(f"characters outside format {fd.fmt}")
    if fd.prefix == 0 and len(value) != fd.max_len:
        raise ValueError(f"{len(value)} characters, fixed length is {fd.max_len}")
    if len(value) > fd.max_len:
        raise ValueError(f"{len(value)} characters, maximum is {fd.max_len}")


def encode_message(fields: Mapping[str, Any]) -> bytes:
    """Encode one message (without the frame). ``fields`` as :func:`decode_message` returns.

    Binary fields (52, 55) take ``bytes`` (or a hex string). Raises :class:`MessageFormatError`
    for a field that is not in the table, a value of the wrong format or length, or an MTI that
    emvtap does not handle.
    """
    mti = fields.get("t")
    if mti not in _ALL_MTIS:
        raise MessageFormatError("t", f"MTI {mti!r} is not one of {sorted(_ALL_MTIS)}")
    doc: dict[str, str] = {"t": mti}
    for key, value in fields.items():
        if key in ("t", "p", "1", "h"):
            continue
        try:
            number = int(key)
        except (TypeError, ValueError):
            raise MessageFormatError(str(key), "not a field number") from None
        fd = FIELDS.get(number)
        if fd is None:
            raise MessageFormatError(str(key), "not in emvtap's field table")
        if fd.fmt == "b":
            raw = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
            if (fd.prefix == 0 and len(raw) != fd.max_len) or len(raw) > fd.max_len:
                raise MessageFormatError(str(key), f"{len(raw)} bytes does not fit {fd.max_len}")
            doc[str(number)] = raw.hex().upper()
            continue
        if not isinstance(value, str):
            raise MessageFormatError(str(key), f"expected str, got {type(value).__name__}")
        try:
            _check_value(number, value)
        except ValueError as exc:
            raise MessageFormatError(str(key), str(exc), mti=mti) from None
        doc[str(number)] = value
    try:
        raw, _ = iso8583.encode(doc, SPEC)
    except EncodeError as exc:  # belt and braces: the checks above should catch everything
        raise MessageFormatError(exc.field, exc.msg, mti=mti) from None
    return bytes(raw)


def _bitmap_fields(raw: bytes) -> list[int]:
    """Field numbers present according to the primary (and secondary) bitmap."""
    bits = f"{int.from_bytes(raw[4:12], 'big'):064b}"
    if bits[0] == "1":
        secondary = raw[12:20]
        if len(secondary) != 8:
            raise MessageFormatError("1", "message ends inside the secondary bitmap")
        bits += f"{int.from_bytes(secondary, 'big'):064b}"
    return [i + 1 for i, bit in enumerate(bits) if bit == "1"]


def decode_message(raw: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode one message (without the frame) into ``{"t": MTI, "<n>": value}``.

    Raises :class:`MessageFormatError` (with ``mti``/``stan`` where readable) for anything that
    is not a well-formed message of the field table: a truncated or oversized message, a field
    not in the table, wrong characters or length, extra bytes after the last field.
    """
    raw = bytes(raw)
    if len(raw) > MAX_MESSAGE_LEN:
        raise MessageFormatError("frame", f"{len(raw)} bytes, maximum {MAX_MESSAGE_LEN}")
    if len(raw) < 4:
        raise MessageFormatError("t", f"message of {len(raw)} bytes has no MTI")
    try:
        mti_text = raw[:4].decode("ascii")
    except UnicodeDecodeError:
        raise MessageFormatError("t", "MTI is not ASCII") from None
    if mti_text not in _ALL_MTIS:
        readable = mti_text if mti_text.isdigit() else None
        raise MessageFormatError("t", f"MTI {mti_text!r} is not handled", mti=readable)
    mti = mti_text
    if len(raw) < 12:
        raise MessageFormatError("p", "message ends inside the primary bitmap", mti=mti)
    try:
        present = _bitmap_fields(raw)
    except MessageFormatError as exc:
        exc.mti = mti
        raise
    for number in present:
        if number != 1 and number not in FIELDS:
            raise MessageFormatError(
                str(number),
                "field not in emvtap's field table",
                mti=mti,
                stan=_peek_stan_before(raw, mti, number),
            )
    if 1 in present and not any(n > 64 for n in present):
        raise MessageFormatError("1", "secondary bitmap present but empty", mti=mti)
    try:
        doc, enc = iso8583.decode(raw, SPEC)
    except DecodeError as exc:
        stan = exc.doc_dec.get("11") if exc.field != "11" else None
        raise MessageFormatError(exc.field, exc.msg, mti=mti, stan=stan) from None
    stan = doc.get("11")
    out: dict[str, Any] = {"t": mti}
    for key, value in doc.items():
        if key in ("t", "p", "1", "h"):
            continue
        number = int(key)
        fd = FIELDS[number]
        if fd.prefix and not enc[key]["len"].isdigit():
            raise MessageFormatError(key, "length prefix is not ASCII digits", mti=mti, stan=stan)
        if fd.fmt == "b":
            out[key] = bytes.fromhex(value)
            continue
        try:
            _check_value(number, value)
        except ValueError as exc:
            raise MessageFormatError(key, str(exc), mti=mti, stan=stan) from None
        out[key] = value
    return out


def _peek_stan_before(raw: bytes, mti: str, bad_field: int) -> str | None:
    """The STAN of a message whose bitmap names a field the table lacks, if DE 11 precedes it."""
    if bad_field < 11:
        return None
    spec = {**SPEC, **{str(bad_field): SPEC["70"]}}  # any placeholder: decoding stops later
    try:
        doc, _ = iso8583.decode(raw, spec)
    except DecodeError as exc:
        doc = exc.doc_dec
    except Exception:
        return None
    stan = doc.get("11")
    return stan if isinstance(stan, str) and len(stan) == 6 and stan.isdigit() else None


# --- framing ------------------------------------------------------------------------------------


def frame(message: bytes) -> bytes:
    """2-byte big-endian length ‖ message."""
    if len(message) > MAX_MESSAGE_LEN:
        raise MessageFormatError("frame", f"{len(message)} bytes, maximum {MAX_MESSAGE_LEN}")
    return struct.pack(">H", len(message)) + message


def unframe(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Split one framed message off ``buffer``: ``(message, rest)``, or ``(None, buffer)`` when
    the frame is not complete yet. A length above :data:`MAX_MESSAGE_LEN` is refused at once."""
    if len(buffer) < 2:
        return None, buffer
    (length,) = struct.unpack(">H", buffer[:2])
    if length > MAX_MESSAGE_LEN:
        raise MessageFormatError("frame", f"frame of {length} bytes, maximum {MAX_MESSAGE_LEN}")
    if len(buffer) < 2 + length:
        return None, buffer
    return buffer[2 : 2 + length], buffer[2 + length :]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("connection closed by the peer")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> bytes:
    """Read one framed message from a blocking socket (refusing oversized frames)."""
    (length,) = struct.unpack(">H", _recv_exact(sock, 2))
    if length > MAX_MESSAGE_LEN:
        raise MessageFormatError("frame", f"frame of {length} bytes, maximum {MAX_MESSAGE_LEN}")
    return _recv_exact(sock, length)


def exchange(host: str, port: int, fields: Mapping[str, Any], timeout: float = 5.0) -> dict:
    """Send one request and return the decoded response (one connection per exchange).

    Raises ``TimeoutError`` when no response arrives within ``timeout`` seconds,
    ``ConnectionError`` when the switch closes the connection, :class:`MessageFormatError` for a
    malformed response.
    """
    request = frame(encode_message(fields))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        try:
            raw = read_frame(sock)
        except TimeoutError:
            raise TimeoutError(f"no response from {host}:{port} in {timeout}s") from None
    return decode_message(raw)


# --- DE 48 token data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenData:
    """The private DE 48 token data (see the module docstring's sub-element table)."""

    token_requestor_id: str | None = None
    token_status: str | None = None
    par: str | None = None
    device_type: str | None = None
    channel: str | None = None
    assurance_level: str | None = None
    device_verified: bool | None = None
    other: dict[str, str] = field(default_factory=dict)  # sub-elements emvtap does not know

    def encode(self) -> str:
        return encode_token_data(self)


#: sub-element tag → (attribute, format, fixed length or None, allowed values or None)
_DE48: dict[str, tuple[str, str, int | None, frozenset[str] | None]] = {
    "01": ("token_requestor_id", "n", 11, None),
    "02": ("token_status", "an", 1, frozenset("ASD")),
    "03": ("par", "an", 29, None),
    "04": ("device_type", "n", 2, frozenset({"01", "02", "03", "04"})),
    "05": ("channel", "an", 1, frozenset("PA")),
    "06": ("assurance_level", "n", 2, None),
    "07": ("device_verified", "n", 1, frozenset("01")),
}


def _check_subelement(tag: str, value: str) -> None:
    if tag not in _DE48:
        if _CHARSETS["ans"].fullmatch(value) is None:
            raise MessageFormatError("48", f"sub-element {tag}: not printable ASCII")
        return
    _, fmt, length, allowed = _DE48[tag]
    if _STRICT[fmt].fullmatch(value) is None:
        raise MessageFormatError("48", f"sub-element {tag}: characters outside format {fmt}")
    if length is not None and len(value) != length:
        raise MessageFormatError("48", f"sub-element {tag}: {len(value)} characters, not {length}")
    if allowed is not None and value not in allowed:
        raise MessageFormatError("48", f"sub-element {tag}: {value!r} not in {sorted(allowed)}")


def encode_token_data(data: TokenData) -> str:
    """DE 48 text: ``tag(2) ‖ length(2) ‖ value`` per present sub-element, in tag order."""
    parts: dict[str, str] = {}
    for tag, (attr, *_rest) in _DE48.items():
        value = getattr(data, attr)
        if value is None:
            continue
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        parts[tag] = text
    parts.update(data.other)
    out = []
    for tag in sorted(parts):
        value = parts[tag]
        if len(tag) != 2 or not tag.isdigit() or len(value) > 99:
            raise MessageFormatError("48", f"sub-element {tag!r} does not fit tag(2) length(2)")
        _check_subelement(tag, value)
        out.append(f"{tag}{len(value):02d}{value}")
    return "".join(out)


def decode_token_data(text: str) -> TokenData:
    """Parse DE 48 text into :class:`TokenData`; :class:`MessageFormatError` (field ``48``)
    when a sub-element is truncated, repeated or has a value of the wrong format."""
    values: dict[str, Any] = {}
    other: dict[str, str] = {}
    seen: set[str] = set()
    pos = 0
    while pos < len(text):
        head = text[pos : pos + 4]
        if len(head) < 4 or not head.isdigit() or not head.isascii():
            raise MessageFormatError("48", f"sub-element header {head!r} at {pos} is malformed")
        tag, length = head[:2], int(head[2:])
        value = text[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise MessageFormatError("48", f"sub-element {tag} truncated at {pos}")
        if tag in seen:
            raise MessageFormatError("48", f"sub-element {tag} repeated")
        seen.add(tag)
        _check_subelement(tag, value)
        if tag in _DE48:
            attr = _DE48[tag][0]
            values[attr] = (value == "1") if attr == "device_verified" else value
        else:
            other[tag] = value
        pos += 4 + length
    return TokenData(**values, other=other)


# --- redaction for logs and traces -------------------------------------------------------------


def redacted(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to log: PAN masked, track 2 reduced to its masked PAN, PIN block dropped,
    binary fields as hex. (DE 55 carries no clear PAN in emvtap's requests; any track data, PAN,
    cardholder name or PIN data in it is masked too.)"""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "2":
            out[key] = mask_pan(value)
        elif key == "35":
            out[key] = mask_pan(str(value).split("=")[0]) + "=…"
        elif key == "52":
            out[key] = "<PIN block>"
        elif key == "55":
            out[key] = _redact_icc(bytes(value))
        elif isinstance(value, bytes | bytearray):
            out[key] = bytes(value).hex().upper()
        else:
            out[key] = value
    return out


def _redact_icc(value: bytes) -> str:
    try:
        objs = tlv.decode(value)
    except tlv.TlvError:
        return f"<{len(value)} bytes, not BER-TLV>"
    parts = []
    for obj in tlv.flatten(objs).items():
        tag, v = obj
        shown = "<masked>" if tag in SENSITIVE_TAGS else v.hex().upper()
        parts.append(f"{tlv.tag_hex(tag)}={shown}")
    return " ".join(parts)
