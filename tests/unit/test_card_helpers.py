"""Shared drivers for the card tests: a small terminal that speaks APDUs to an ``HceCard``, the
transaction data it sends, and independent checks of what the card returns (cryptograms
recomputed from the issuer master keys with ``emvtap.keys``/``emvtap.cryptogram``, signatures
recovered through the test CA chain with ``emvtap.oda``).

Named ``test_card_*`` to live beside the card tests; it holds no tests itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from emvtap.apdu import CommandApdu, ResponseApdu
from emvtap.capk import CapkStore
from emvtap.cryptogram import PBOC_ARQC_TAGS, generate_ac, pboc_arqc_data, verify_ac
from emvtap.dol import build_dol_data
from emvtap.keys import (
    derive_icc_master_key,
    derive_mastercard_session_key,
    derive_pboc_session_key,
    derive_visa_session_key,
)
from emvtap.oda import recover_icc_public_key, recover_issuer_public_key
from emvtap.perso import generate_profile, issuer_keys
from emvtap.perso_schemes import (
    generate_mastercard_profile,
    generate_multi_application_profile,
    generate_visa_profile,
)
from emvtap.profile import ApplicationProfile, CardProfile
from emvtap.rsa import RsaPublicKey
from emvtap.tlv import Tlv, decode, flatten
from hce_card.card import HceCard
from hce_card.state import StateStore

SEED = 7
PPSE = b"2PAY.SYS.DDF01"
QPBOC_AID = bytes.fromhex("A000000333010101")
VISA_AID = bytes.fromhex("A0000000031010")
MC_AID = bytes.fromhex("A0000000041010")

#: TTQ: qPBOC/qVSDC + online PIN + signature, CDCVM supported (docs/emv-notes.md example)
TTQ_QUICK = bytes.fromhex("36004000")
#: TTQ of a reader that only runs the full path
TTQ_FULL = bytes.fromhex("46004000")


@cache
def qpboc_profile() -> CardProfile:
    return generate_profile(SEED)


@cache
def visa_profile() -> CardProfile:
    return generate_visa_profile(SEED)


@cache
def mastercard_profile() -> CardProfile:
    return generate_mastercard_profile(SEED)


@cache
def multi_profile() -> CardProfile:
    return generate_multi_application_profile(SEED, ecash_balance=5000)


def transaction(amount: int = 1000, *, ttq: bytes = TTQ_QUICK, currency: str = "0156",
                un: bytes = bytes.fromhex("12345678"), tvr: bytes = bytes(5),
                **more: bytes) -> dict[int, bytes]:
    """The terminal's data for one transaction (Book 3 Annex A formats)."""
    values = {
        0x9F66: ttq,
        0x9F02: bytes.fromhex(f"{amount:012d}"),
        0x9F03: bytes(6),
        0x9F1A: bytes.fromhex("0156"),
        0x95: tvr,
        0x5F2A: bytes.fromhex(currency),
        0x9A: bytes.fromhex("251126"),
        0x9C: b"\x00",
        0x9F37: un,
        0x9F35: b"\x22",
        0x9F45: bytes(2),
        0x9F4C: bytes(8),
        0x9F34: bytes.fromhex("1F0302"),
    }
    for name, value in more.items():
        values[int(name.removeprefix("t"), 16)] = value
    return values


def ok(response: ResponseApdu) -> ResponseApdu:
    assert response.sw == 0x9000, str(response)
    return response


@dataclass
class Terminal:
    """Drives the card the way a kernel does; every exchange goes through ``process``."""

    card: HceCard
    app: ApplicationProfile | None = None
    pdol_data: bytes = b""
    cdol1_data: bytes = b""
    log: list[tuple[bytes, bytes]] = field(default_factory=list)

    def send(self, apdu: bytes | str) -> ResponseApdu:
        raw = bytes.fromhex(apdu) if isinstance(apdu, str) else apdu
        out = self.card.process(raw)
        self.log.append((raw, out))
        return ResponseApdu.decode(out)

    def command(self, cla: int, ins: int, p1: int = 0, p2: int = 0, data: bytes = b"",
                le: int | None = 0) -> ResponseApdu:
        return self.send(CommandApdu(cla, ins, p1, p2, data, le).encode())

    def select(self, aid: bytes, next_occurrence: bool = False) -> ResponseApdu:
        response = self.command(0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, aid)
        self.app = next((a for a in self.card.profile.applications if a.aid == aid), self.app)
        return response

    def gpo(self, values: Mapping[int, bytes]) -> ResponseApdu:
        assert self.app is not None
        self.pdol_data = build_dol_data(self.app.pdol, values)
        return self.command(0x80, 0xA8, data=Tlv.primitive(0x83, self.pdol_data).encode())

    def read_record(self, sfi: int, record: int) -> ResponseApdu:
        return self.command(0x00, 0xB2, record, (sfi << 3) | 4)

    def get_data(self, tag: int) -> ResponseApdu:
        return self.command(0x80, 0xCA, tag >> 8, tag & 0xFF)

    def internal_authenticate(self, ddol_data: bytes) -> ResponseApdu:
        return self.command(0x00, 0x88, data=ddol_data)

    def generate_ac(self, p1: int, values: Mapping[int, bytes], second: bool = False
                    ) -> ResponseApdu:
        assert self.app is not None
        data = build_dol_data(self.app.cdol2 if second else self.app.cdol1, values)
        if not second:
            self.cdol1_data = data
        return self.command(0x80, 0xAE, p1, 0, data)

    def external_authenticate(self, data: bytes) -> ResponseApdu:
        return self.command(0x00, 0x82, data=data)

    def full_path(self, aid: bytes, values: Mapping[int, bytes]) -> None:
        ok(self.select(aid))
        ok(self.gpo(values))


def new_card(profile: CardProfile | None = None, store: StateStore | None = None,
             **kw: object) -> tuple[HceCard, Terminal]:
    card = HceCard(profile or qpboc_profile(), store or StateStore(),
                   random_bytes=_counter_bytes(), **kw)  # type: ignore[arg-type]
    return card, Terminal(card)


def _counter_bytes():  # deterministic "random" bytes for reproducible signatures
    n = [0]

    def random_bytes(k: int) -> bytes:
        n[0] += 1
        return hashlib.sha256(f"rnd {n[0]}".encode()).digest()[:k]

    return random_bytes


def objects(response: ResponseApdu) -> dict[int, bytes]:
    """Primitive objects of a Format 2 response; Format 1 ``80`` is returned under 0x80."""
    return flatten(decode(response.data))


# --- independent checks ---------------------------------------------------------------------


def issuer_mk_ac(profile: CardProfile) -> bytes:
    """The ICC MK AC from the test issuer master key (Book 2 A1.4), not from the profile."""
    return derive_icc_master_key(issuer_keys(profile.seed or 0).imk_ac, profile.pan,
                                 profile.psn)


def expected_ac(app: ApplicationProfile, pan: str, psn: str, values: Mapping[int, bytes],
                seed: int = SEED) -> bytes:
    """Recompute the AC per the application's CVN with emvtap.keys / emvtap.cryptogram."""
    if app.cvn == 0x01:
        mk = derive_icc_master_key(issuer_keys(seed).imk_ac, pan, psn)
        key = derive_pboc_session_key(mk, values[0x9F36])
        data = pboc_arqc_data(values)
    else:
        scheme = app.extra["scheme"]
        imk = hashlib.sha256(f"emvtap test IMK {scheme} AC {seed}".encode()).digest()[:16]
        mk = derive_icc_master_key(imk, pan, psn)
        base = b"".join(bytes(values[t]) for t, _ in PBOC_ARQC_TAGS)
        if app.cvn == 0x12:
            key = derive_visa_session_key(mk, values[0x9F36])
            data = base + values[0x9F10]
        else:
            key = derive_mastercard_session_key(mk, values[0x9F36], values[0x9F37])
            data = base + values[0x9F10][2:8]
    return generate_ac(key, data)


def assert_ac_verifies(app: ApplicationProfile, pan: str, psn: str, values: Mapping[int, bytes],
                       ac: bytes, seed: int = SEED) -> None:
    assert expected_ac(app, pan, psn, values, seed) == ac
    if app.cvn == 0x01:
        mk = derive_icc_master_key(issuer_keys(seed).imk_ac, pan, psn)
        assert verify_ac(derive_pboc_session_key(mk, values[0x9F36]), pboc_arqc_data(values), ac)


def icc_public_key(profile: CardProfile, app: ApplicationProfile) -> RsaPublicKey:
    """The ICC public key recovered from the card's own records through the test CA (Book 2
    5.3, 6.4), as a terminal gets it."""
    from emvtap.dol import parse_afl
    from emvtap.oda import static_data_to_be_authenticated

    records = {(r.sfi, r.record): r.data for r in app.records}
    data = {}
    for raw in records.values():
        data |= flatten(decode(raw))
    capk = CapkStore.default().require(app.aid[:5], data[0x8F][0])
    issuer = recover_issuer_public_key(capk, data[0x90], data.get(0x92, b""), data[0x9F32],
                                       data[0x5A], date(2026, 1, 1))
    static = static_data_to_be_authenticated(parse_afl(app.afl), records, app.aip, b"\x82")
    icc = recover_icc_public_key(issuer, data[0x9F46], data.get(0x9F48, b""), data[0x9F47],
                                 static, data[0x5A], date(2026, 1, 1))
    return icc.public_key


def app_pan(app: ApplicationProfile) -> str:
    for rec in app.records:
        pan = flatten(decode(rec.data)).get(0x5A)
        if pan:
            return pan.hex().upper().rstrip("F")
    raise AssertionError("no 5A")
