"""Test doubles for the terminal tests (and the tests that they behave): a card that replays
recorded APDU exchanges, a transport that simulates the card leaving the field, a scripted
host, and a configurable full-path EMV card personalised with emvtap's test CA.

Imported by the other ``test_terminal*`` / ``test_kernel*`` / ``test_entry_point*`` /
``test_trace_replay*`` modules (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from data_files import load_trace

from emvtap.apdu import SW, CommandApdu, ResponseApdu
from emvtap.capk import TEST_CA_INDEX, test_ca_private_key
from emvtap.cryptogram import arpc_method_1, generate_ac, pboc_arqc_data, pboc_iad
from emvtap.dol import parse_afl, split_dol_data
from emvtap.keys import derive_pboc_session_key
from emvtap.oda import (
    cda_transaction_data_hash,
    create_icc_certificate,
    create_issuer_certificate,
    create_ssad,
    sign_dynamic_data,
    static_data_to_be_authenticated,
)
from emvtap.perso import PPSE_NAME
from emvtap.rsa import RsaKey, generate_rsa_key
from emvtap.tlv import Tlv, decode
from terminal.config import TerminalConfig
from terminal.transport.base import CardRemovedError, Transport
from terminal.transport.loopback import LoopbackTransport

# --- recorded traces ------------------------------------------------------------------------


class ReplayCard:
    """A card that answers with the responses of a recorded trace.

    ``strict``: every command must equal the next recorded command, byte for byte (the
    terminal under test did exactly what the recorded terminal did) - except a SELECT of a DF
    the recording never selected, which the card answers 6A82 (it has no such DF: a card
    recorded without PPSE has none). Otherwise the card
    answers by what is selected and the command (a recorded SELECT selects its DF; other
    commands are looked up under the DF they were recorded under, repeated ones in order) and
    for the INS in ``lenient_ins`` a command whose data differs from the recording (the
    terminal's own unpredictable number, TVR ...) gets the recorded answer too - the
    difference is kept in :attr:`data_differences`. Anything else is in :attr:`unexpected`
    and gets 6D00 (or 6A82 for an unknown SELECT).
    """

    atr = bytes.fromhex("3B8880010000000000718100F9")

    def __init__(self, trace: dict[str, Any], *, strict: bool = True,
                 lenient_ins: frozenset[int] = frozenset(),
                 gaps: tuple[tuple[int, str, str], ...] = ()) -> None:
        self.exchanges = [(bytes.fromhex(a["c"]), bytes.fromhex(a["r"])) for a in trace["apdus"]]
        # (index, command, response) missing from the recording, served at that point
        for index, c, r in sorted(gaps, reverse=True):
            self.exchanges.insert(index, (bytes.fromhex(c), bytes.fromhex(r)))
        self.strict = strict
        self.lenient_ins = lenient_ins
        self.position = 0
        self.unexpected: list[str] = []
        self.not_found: list[bytes] = []
        self.data_differences: list[tuple[str, str, str]] = []
        self.received: list[bytes] = []
        self.selected: bytes | None = None
        self._queues: dict[tuple[bytes | None, bytes], list[bytes]] = {}
        self._selects: dict[bytes, bytes] = {}
        current: bytes | None = None
        for c, r in self.exchanges:
            cmd = CommandApdu.decode(c)
            if cmd.ins == 0xA4:
                self._selects.setdefault(cmd.data, r)
                if r[-2:] == b"\x90\x00":
                    current = cmd.data
                continue
            self._queues.setdefault((current, c), []).append(r)
        self._used: dict[tuple[bytes | None, bytes], int] = {}

    def reset(self) -> None:
        self.selected = None

    def process(self, apdu: bytes) -> bytes:
        self.received.append(apdu)
        if self.strict:
            return self._strict(apdu)
        return self._keyed(apdu)

    def _strict(self, apdu: bytes) -> bytes:
        if self.position >= len(self.exchanges):
            self.unexpected.append(f"{apdu.hex().upper()} after the end of the recording")
            return b"\x6D\x00"
        recorded, response = self.exchanges[self.position]
        if apdu != recorded:
            cmd, rec = CommandApdu.decode(apdu), CommandApdu.decode(recorded)
            if cmd.ins == 0xA4 and cmd.data not in self._selects:
                self.not_found.append(cmd.data)  # the card has no such DF (no PPSE ...)
                return b"\x6A\x82"
            if cmd.ins in self.lenient_ins and cmd.header == rec.header:
                self.data_differences.append((f"{cmd.ins:02X}", recorded.hex().upper(),
                                              apdu.hex().upper()))
            else:
                self.unexpected.append(f"#{self.position}: sent {apdu.hex().upper()}, "
                                       f"recorded {recorded.hex().upper()}")
                return b"\x6D\x00"
        self.position += 1
        return response

    def _keyed(self, apdu: bytes) -> bytes:
        cmd = CommandApdu.decode(apdu)
        if cmd.ins == 0xA4:
            response = self._selects.get(cmd.data)
            if response is None:
                return b"\x6A\x82"
            if response[-2:] == b"\x90\x00":
                self.selected = cmd.data
            return response
        key = (self.selected, apdu)
        if key in self._queues:
            return self._next(key)
        if cmd.ins in self.lenient_ins:
            for (df, recorded), _ in self._queues.items():
                rec = CommandApdu.decode(recorded)
                if df == self.selected and rec.header == cmd.header:
                    self.data_differences.append((f"{cmd.ins:02X}", recorded.hex().upper(),
                                                  apdu.hex().upper()))
                    return self._next((df, recorded))
        self.unexpected.append(apdu.hex().upper())
        return b"\x6D\x00"

    def _next(self, key: tuple[bytes | None, bytes]) -> bytes:
        queue = self._queues[key]
        i = self._used.get(key, 0)
        self._used[key] = i + 1
        return queue[min(i, len(queue) - 1)]


def replay_config(**changes: Any) -> TerminalConfig:
    """The default configuration with top-level keys replaced (dict form)."""
    data = TerminalConfig.defaults_dict() | changes
    return TerminalConfig.from_dict(data)


# --- wrapping and minimal cards -------------------------------------------------------------


def edit_tlv(data: bytes, tag: int, value: bytes | None) -> bytes:
    """``data`` (BER-TLV) with every ``tag`` given ``value`` - or dropped when ``None`` - at
    any depth; templates are re-encoded around the change."""
    def walk(objs: list[Tlv]) -> list[Tlv]:
        out: list[Tlv] = []
        for t in objs:
            if t.tag == tag:
                if value is not None:
                    out.append(Tlv.primitive(tag, value))
            elif t.children is not None:
                out.append(Tlv.template(t.tag, walk(list(t.children))))
            else:
                out.append(t)
        return out

    return b"".join(t.encode() for t in walk(decode(data)))


class MutatingCard:
    """Wraps a card; ``mutate(command, response)`` may change any response (malformed or
    hostile card answers built from a good card)."""

    def __init__(self, inner: Any, mutate: Callable[[bytes, bytes], bytes]) -> None:
        self.inner = inner
        self.mutate = mutate
        self.atr = inner.atr

    def reset(self) -> None:
        self.inner.reset()

    def process(self, apdu: bytes) -> bytes:
        return self.mutate(apdu, self.inner.process(apdu))


def on_ins(ins: int, change: Callable[[bytes], bytes]) -> Callable[[bytes, bytes], bytes]:
    """A mutation applied to the response data of the commands with ``ins`` (SW kept)."""
    def mutate(command: bytes, response: bytes) -> bytes:
        if command[1] != ins or response[-2:] != b"\x90\x00":
            return response
        return change(response[:-2]) + response[-2:]
    return mutate


def set_tag(ins: int, tag: int, value: bytes | None) -> Callable[[bytes, bytes], bytes]:
    """Replace (or drop, ``None``) one data object in the answers to ``ins``."""
    return on_ins(ins, lambda data: edit_tlv(data, tag, value))


class SelectCard:
    """A card that only answers SELECT, from a table name → response (data ‖ SW); other
    names get 6A82, other commands 6D00."""

    atr = bytes.fromhex("3B8080010101")

    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self.selects: list[bytes] = []

    def reset(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        cmd = CommandApdu.decode(apdu)
        if cmd.ins != 0xA4:
            return b"\x6D\x00"
        self.selects.append(cmd.data)
        return self.answers.get(cmd.data, b"\x6A\x82")


# --- transports -------------------------------------------------------------------------------


class RemovingTransport(LoopbackTransport):
    """Loopback that simulates the card leaving the field: the command after ``after``
    commands raises CardRemovedError, as a PC/SC or nfcpy reader does."""

    def __init__(self, card: Any, after: int) -> None:
        super().__init__(card)
        self.after = after
        self.sent = 0

    def _send(self, apdu: bytes) -> bytes:
        if self.sent >= self.after:
            self.connected = False
            raise CardRemovedError("simulated: the card left the field")
        self.sent += 1
        return super()._send(apdu)


def loopback(card: Any) -> Transport:
    return LoopbackTransport(card)


class FixedRandom(random.Random):
    """Random transaction selection made deterministic: every draw is ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(0)
        self.value = value

    def randint(self, a: int, b: int) -> int:
        return self.value


# --- a scripted host --------------------------------------------------------------------------


@dataclass
class Host:
    """An acquirer/issuer stand-in: answers every 0100 with ``response_code`` and DE 55
    built by ``icc`` (given the request's DE 55 objects)."""

    response_code: str = "00"
    icc: Callable[[dict[int, bytes]], bytes] = field(default=lambda values: b"")
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail: Exception | None = None

    def __call__(self, fields: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(fields)
        if self.fail is not None:
            raise self.fail
        values = {t.tag: t.value for t in decode(fields["55"])}
        out = {"t": "0110", "11": fields["11"], "39": self.response_code}
        de55 = self.icc(values)
        if de55:
            out["55"] = de55
        return out

    def de55(self) -> dict[int, bytes]:
        return {t.tag: t.value for t in decode(self.requests[-1]["55"])}


# --- a configurable EMV card for the full path -------------------------------------------------

RID_UNIONPAY = bytes.fromhex("A000000333")
AID_UNIONPAY = bytes.fromhex("A000000333010101")
CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F3403")
CDOL2 = bytes.fromhex("910A8A0295059F37049F4C08")
PAN = "6250941234567893"
TODAY = datetime(2026, 3, 16, 10, 30)


@cache
def _keys(seed: int) -> tuple[RsaKey, RsaKey]:
    seed_b = seed.to_bytes(4, "big")
    return (generate_rsa_key(1024, 3, b"test issuer " + seed_b),
            generate_rsa_key(768, 3, b"test icc " + seed_b))


@dataclass(frozen=True)
class CardSpec:
    """What a personalisation bureau would decide for a test card (Book 3 data elements)."""

    aip: bytes = bytes.fromhex("3D00")  # DDA, CVM, TRM, issuer auth, CDA
    pan: str = PAN
    expiry: bytes = bytes.fromhex("301231")
    effective: bytes = bytes.fromhex("250101")
    cvm_list: bytes | None = bytes.fromhex("00000000000000004203" "1E03" "1F03")
    app_version: bytes = bytes.fromhex("0030")
    auc: bytes | None = bytes.fromhex("FF00")
    issuer_country: bytes = bytes.fromhex("0156")
    app_currency: bytes | None = bytes.fromhex("0156")
    iac_default: bytes | None = bytes.fromhex("D86004A800")
    iac_denial: bytes | None = bytes.fromhex("0010800000")
    iac_online: bytes | None = bytes.fromhex("D86804F800")
    lower_offline_limit: int | None = 5
    upper_offline_limit: int | None = 10
    cdol1: bytes = CDOL1
    cdol2: bytes = CDOL2
    ddol: bytes | None = bytes.fromhex("9F3704")
    pdol: bytes = b""
    kernel_id: int = 7
    capk_index: int = TEST_CA_INDEX
    issuer_cert_expiry: bytes = bytes.fromhex("1230")
    issuer_cert_serial: bytes = bytes.fromhex("000001")
    icc_cert_expiry: bytes = bytes.fromhex("1230")
    extra_record_objects: tuple[Tlv, ...] = ()
    drop: frozenset[int] = frozenset()  # tags left out of the records
    seed: int = 1


@dataclass
class CardBehaviour:
    """What the card does at run time."""

    decision: str = "TC"  # the best cryptogram the card gives: "TC", "ARQC" or "AAC"
    atc: int = 7
    last_online_atc: int = 3
    get_data_fails: bool = False
    external_authenticate_ok: bool | None = None  # None: check the ARPC
    script_status: dict[int, int] = field(default_factory=dict)  # INS → SW
    corrupt_cda: bool = False
    corrupt_dda: bool = False
    second_ac_declines: bool = False


class EmvCard:
    """A full-path EMV card (PPSE, SELECT, GPO Format 2 with AIP/AFL only, READ RECORD,
    GET DATA, INTERNAL AUTHENTICATE, GENERATE AC with CDA, EXTERNAL AUTHENTICATE, script
    commands), personalised from a :class:`CardSpec` under emvtap's test CA."""

    atr = bytes.fromhex("3B8080010101")

    def __init__(self, spec: CardSpec | None = None, behaviour: CardBehaviour | None = None,
                 *, records_override: dict[tuple[int, int], bytes] | None = None) -> None:
        self.spec = spec or CardSpec()
        self.behaviour = behaviour or CardBehaviour()
        self.issuer_key, self.icc_key = _keys(self.spec.seed)
        self.mk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
        self.afl = bytes.fromhex("0801010110010200")  # SFI 1 record 1 signed
        self.records = self._personalise()
        if records_override:
            self.records |= records_override
        self.commands: list[bytes] = []
        self.reset()

    # personalisation
    def _personalise(self) -> dict[tuple[int, int], bytes]:
        s = self.spec
        pan_b = bytes.fromhex(s.pan + ("F" if len(s.pan) % 2 else ""))
        objs = [
            Tlv.primitive(0x5A, pan_b),
            Tlv.primitive(0x5F24, s.expiry),
            Tlv.primitive(0x5F25, s.effective),
            Tlv.primitive(0x5F28, s.issuer_country),
            Tlv.primitive(0x5F34, b"\x01"),
            Tlv.primitive(0x57, bytes.fromhex(f"{s.pan}D{s.expiry.hex()[:4]}2010000000F")),
            Tlv.primitive(0x9F08, s.app_version),
            Tlv.primitive(0x8C, s.cdol1),
            Tlv.primitive(0x8D, s.cdol2),
            Tlv.primitive(0x9F4A, b"\x82"),
        ]
        optional = [
            (0x8E, s.cvm_list), (0x9F07, s.auc), (0x9F42, s.app_currency),
            (0x9F0D, s.iac_default), (0x9F0E, s.iac_denial), (0x9F0F, s.iac_online),
            (0x9F49, s.ddol),
            (0x9F14, bytes([s.lower_offline_limit]) if s.lower_offline_limit is not None
             else None),
            (0x9F23, bytes([s.upper_offline_limit]) if s.upper_offline_limit is not None
             else None),
        ]
        objs += [Tlv.primitive(t, v) for t, v in optional if v is not None]
        objs += list(s.extra_record_objects)
        objs = [o for o in objs if o.tag not in s.drop]
        rec_1 = Tlv.template(0x70, objs).encode()
        static = static_data_to_be_authenticated(parse_afl(self.afl), {(1, 1): rec_1}, s.aip,
                                                 b"\x82")
        ca = test_ca_private_key(RID_UNIONPAY)
        issuer_cert, issuer_rem = create_issuer_certificate(
            ca, self.issuer_key.public, bytes.fromhex(s.pan[:6] + "FF"), s.issuer_cert_expiry,
            s.issuer_cert_serial)
        icc_cert, icc_rem = create_icc_certificate(
            self.issuer_key, self.icc_key.public, pan_b, s.icc_cert_expiry,
            bytes.fromhex("000002"), static)
        rec_2_1 = [Tlv.primitive(0x8F, bytes([s.capk_index])), Tlv.primitive(0x90, issuer_cert),
                   Tlv.primitive(0x9F32, b"\x03")]
        if issuer_rem:
            rec_2_1.append(Tlv.primitive(0x92, issuer_rem))
        rec_2_1.append(Tlv.primitive(0x93, create_ssad(self.issuer_key, b"\x31\x32", static)))
        rec_2_2 = [Tlv.primitive(0x9F46, icc_cert), Tlv.primitive(0x9F47, b"\x03")]
        if icc_rem:
            rec_2_2.append(Tlv.primitive(0x9F48, icc_rem))
        rec_2_1 = [o for o in rec_2_1 if o.tag not in s.drop]
        rec_2_2 = [o for o in rec_2_2 if o.tag not in s.drop]
        return {(1, 1): rec_1, (2, 1): Tlv.template(0x70, rec_2_1).encode(),
                (2, 2): Tlv.template(0x70, rec_2_2).encode()}

    @property
    def ppse_fci(self) -> bytes:
        entry = [Tlv.primitive(0x4F, AID_UNIONPAY), Tlv.primitive(0x50, b"TEST CARD"),
                 Tlv.primitive(0x87, b"\x01")]
        if self.spec.kernel_id:
            entry.append(Tlv.primitive(0x9F2A, bytes([self.spec.kernel_id])))
        return Tlv.template(0x6F, [Tlv.primitive(0x84, PPSE_NAME), Tlv.template(0xA5, [
            Tlv.template(0xBF0C, [Tlv.template(0x61, entry)])])]).encode()

    @property
    def fci(self) -> bytes:
        a5 = [Tlv.primitive(0x50, b"TEST CARD")]
        if self.spec.pdol:
            a5.append(Tlv.primitive(0x9F38, self.spec.pdol))
        return Tlv.template(0x6F, [Tlv.primitive(0x84, AID_UNIONPAY),
                                   Tlv.template(0xA5, a5)]).encode()

    # the card's session
    def reset(self) -> None:
        self.selected: bytes | None = None
        self.pdol_data = b""
        self.cdol1_data = b""
        self.arqc: bytes | None = None
        self.issuer_authenticated: bool | None = None

    def process(self, apdu: bytes) -> bytes:
        """Like a real card, answer 6F00 to whatever it cannot make sense of."""
        try:
            return self._process(apdu)
        except (ValueError, KeyError, IndexError):
            return b"\x6F\x00"

    def _process(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        cmd = CommandApdu.decode(apdu)
        handler = {0xA4: self._select, 0xA8: self._gpo, 0xB2: self._read_record,
                   0xCA: self._get_data, 0x88: self._internal_authenticate,
                   0xAE: self._generate_ac, 0x82: self._external_authenticate}.get(cmd.ins)
        if cmd.cla == 0x84 or (cmd.cla == 0x04 and cmd.ins == 0xDA):
            return ResponseApdu(b"", self.behaviour.script_status.get(cmd.ins, SW.OK)).encode()
        if handler is None:
            return b"\x6D\x00"
        return handler(cmd).encode()

    def _select(self, cmd: CommandApdu) -> ResponseApdu:
        if cmd.data == PPSE_NAME:
            self.selected = PPSE_NAME
            return ResponseApdu(self.ppse_fci, SW.OK)
        if AID_UNIONPAY.startswith(cmd.data):
            self.selected = AID_UNIONPAY
            return ResponseApdu(self.fci, SW.OK)
        return ResponseApdu(b"", SW.FILE_NOT_FOUND)

    def _gpo(self, cmd: CommandApdu) -> ResponseApdu:
        self.pdol_data = decode(cmd.data)[0].value
        return ResponseApdu(Tlv.template(0x77, [Tlv.primitive(0x82, self.spec.aip),
                                                Tlv.primitive(0x94, self.afl)]).encode(), SW.OK)

    def _read_record(self, cmd: CommandApdu) -> ResponseApdu:
        rec = self.records.get((cmd.p2 >> 3, cmd.p1))
        return ResponseApdu(rec, SW.OK) if rec is not None else ResponseApdu(b"", 0x6A83)

    def _get_data(self, cmd: CommandApdu) -> ResponseApdu:
        tag = (cmd.p1 << 8) | cmd.p2
        b = self.behaviour
        values = {0x9F36: b.atc.to_bytes(2, "big"), 0x9F13: b.last_online_atc.to_bytes(2, "big")}
        if b.get_data_fails or tag not in values:
            return ResponseApdu(b"", SW.REFERENCED_DATA_NOT_FOUND)
        return ResponseApdu(Tlv.primitive(tag, values[tag]).encode(), SW.OK)

    def _internal_authenticate(self, cmd: CommandApdu) -> ResponseApdu:
        idn = self.behaviour.atc.to_bytes(2, "big")
        data = cmd.data + (b"\x00" if self.behaviour.corrupt_dda else b"")
        sdad = sign_dynamic_data(self.icc_key, bytes([len(idn)]) + idn, data)
        return ResponseApdu(Tlv.primitive(0x80, sdad).encode(), SW.OK)

    @property
    def session_key(self) -> bytes:
        return derive_pboc_session_key(self.mk, self.behaviour.atc.to_bytes(2, "big"))

    def _generate_ac(self, cmd: CommandApdu) -> ResponseApdu:
        b = self.behaviour
        first = self.arqc is None and not self.cdol1_data
        rank = {"AAC": 0, "ARQC": 1, "TC": 2}
        requested = {0x00: "AAC", 0x40: "TC", 0x80: "ARQC"}[cmd.p1 & 0xC0]
        if first:
            kind = min(requested, b.decision, key=rank.__getitem__)
            self.cdol1_data = cmd.data
            values = split_dol_data(self.spec.cdol1, cmd.data)
        else:
            kind = requested
            second = split_dol_data(self.spec.cdol2, cmd.data)
            arpc = second.get(0x91, b"")
            if any(arpc) and self.arqc is not None:  # issuer authentication inside GEN AC 2
                self.issuer_authenticated = arpc == self.arpc(self.arqc, arpc[8:10])
            if b.second_ac_declines or self.issuer_authenticated is False:
                kind = "AAC"
            values = split_dol_data(self.spec.cdol1, self.cdol1_data)
        cid = {"AAC": 0x00, "TC": 0x40, "ARQC": 0x80}[kind]
        atc = b.atc.to_bytes(2, "big")
        iad = pboc_iad(1, bytes([0x03, (cid >> 6) << 4, 0, 0]))
        ac = generate_ac(self.session_key, pboc_arqc_data(
            values | {0x82: self.spec.aip, 0x9F36: atc, 0x9F10: iad}), padding=2)
        if kind == "ARQC":
            self.arqc = ac
        objs = [Tlv.primitive(0x9F27, bytes([cid])), Tlv.primitive(0x9F36, atc),
                Tlv.primitive(0x9F10, iad)]
        if cmd.p1 & 0x10 and kind != "AAC":
            cdol2_data = None if first else cmd.data
            tdhc = cda_transaction_data_hash(self.pdol_data, self.cdol1_data, cdol2_data, objs)
            dynamic = bytes([2]) + atc + bytes([cid]) + ac + tdhc
            un = values.get(0x9F37, b"")
            if b.corrupt_cda:
                un = bytes(len(un))
            objs.append(Tlv.primitive(0x9F4B, sign_dynamic_data(self.icc_key, dynamic, un)))
        else:
            objs.insert(2, Tlv.primitive(0x9F26, ac))
        return ResponseApdu(Tlv.template(0x77, objs).encode(), SW.OK)

    def arpc(self, arqc: bytes, arc: bytes = b"00") -> bytes:
        """What the issuer puts in 91: ARPC method 1 ‖ ARC."""
        return arpc_method_1(self.session_key, arqc, arc) + arc

    def _external_authenticate(self, cmd: CommandApdu) -> ResponseApdu:
        ok = self.behaviour.external_authenticate_ok
        if ok is None:
            ok = self.arqc is not None and cmd.data == self.arpc(self.arqc, cmd.data[8:10])
        self.issuer_authenticated = ok
        return ResponseApdu(b"", SW.OK if ok else 0x6300)


def emv_card(**spec: Any) -> EmvCard:
    behaviour = spec.pop("behaviour", None)
    return EmvCard(replace(CardSpec(), **spec), behaviour)


def script(script_id: bytes, *commands: bytes, tag: int = 0x71) -> Tlv:
    """An issuer script template: 9F18 ‖ 86 command ..."""
    return Tlv.template(tag, [Tlv.primitive(0x9F18, script_id),
                              *(Tlv.primitive(0x86, c) for c in commands)])


# --- the doubles' own tests -------------------------------------------------------------------


def test_replay_card_answers_the_recorded_exchange_and_flags_a_different_command() -> None:
    trace = load_trace("04_mastercard_paypass_testcard_cda_genac.json")
    card = ReplayCard(trace)
    first_c, first_r = card.exchanges[0]
    assert card.process(first_c) == first_r
    assert card.process(bytes.fromhex("80A8000002830100")) == b"\x6D\x00"
    assert card.unexpected and "recorded 80A8000002830000" in card.unexpected[0]


def test_removing_transport_simulates_the_card_leaving_after_n_commands() -> None:
    card = emv_card()
    transport = RemovingTransport(card, after=1)
    transport.connect(1)
    transport.transmit(bytes.fromhex("00A404000E") + PPSE_NAME + b"\x00")
    try:
        transport.transmit(bytes.fromhex("00A404000E") + PPSE_NAME + b"\x00")
    except CardRemovedError as exc:
        assert "left the field" in str(exc)
    else:
        raise AssertionError("the second command should have found the card gone")


def test_emv_card_certificates_chain_to_the_test_ca() -> None:
    from emvtap.capk import CapkStore
    from emvtap.oda import recover_issuer_public_key

    card = emv_card()
    rec = {t.tag: t.value for t in decode(card.records[(2, 1)])[0].children or ()}
    capk = CapkStore.default().require(RID_UNIONPAY, TEST_CA_INDEX)
    ipk = recover_issuer_public_key(capk, rec[0x90], rec.get(0x92, b""), rec[0x9F32], PAN,
                                    TODAY.date())
    assert ipk.issuer_id.hex().upper() == PAN[:6] + "FF"
