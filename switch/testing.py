"""Test support shared by the switch's tests and ``bench/switch.py``: a light device-card
profile (real token and keys, placeholder card-side data) and a card-and-terminal stand-in that
produces 0100 requests with real PBOC CVN 01 ARQCs (computed with :mod:`emvtap.cryptogram`, the
card's side of docs/emv-notes.md, Cryptogram versions).

Not used by the switch itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emvtap import tlv
from emvtap.cryptogram import generate_ac, pboc_arqc_data, pboc_iad
from emvtap.device_types import DeviceType
from emvtap.iso8583 import TokenData, encode_token_data
from emvtap.keys import derive_icc_master_key, derive_pboc_session_key
from emvtap.luhn import luhn_complete
from emvtap.masking import masked_repr
from emvtap.profile import ApplicationProfile, CardKeys, CardProfile, CardRisk, TokenInfo

if TYPE_CHECKING:
    from switch.server import SwitchServer

__all__ = ["SimCard", "luhn_complete", "make_profile", "running_switch"]


def _imk(label: str, seed: int) -> bytes:
    return hashlib.sha256(f"switch test IMK {label} {seed}".encode()).digest()[:16]


def make_profile(
    seed: int = 1,
    *,
    mpan: str | None = None,
    span: str | None = None,
    device_id: str | None = None,
    device_type: DeviceType | str = DeviceType.HANDSET_SE,
    token_requestor_id: str = "50012345678",
    psn: str = "01",
    cvn: int = 0x01,
) -> dict[str, Any]:
    """A device-card profile (docs/contracts.md format) whose switch side - token, ICC master
    keys, CVN - is real and whose card side is a placeholder (no records, no RSA key): cheap to
    make, valid for :meth:`CardProfile.from_dict` and ``switch enroll``, not for a tap."""
    mpan = mpan or luhn_complete(f"625094{seed:09d}")
    span = span or luhn_complete(f"622848{seed:09d}")
    keys = CardKeys(*(derive_icc_master_key(_imk(name, seed), mpan, psn)
                      for name in ("ac", "smi", "smc")))
    aid = bytes.fromhex("A000000333010101")
    app = ApplicationProfile(
        aid=aid, label="SWITCH TEST", kernel_id=7, priority=1,
        fci=tlv.Tlv.template(0x6F, [tlv.Tlv.primitive(0x84, aid)]).encode(),
        pdol=b"", aip=bytes(2), afl=b"", records=(), cdol1=b"", cdol2=b"", ddol=b"",
        cvn=cvn, dki=1, ctq=bytes(2), fdda_version=1, risk=CardRisk(), get_data={}, keys=keys,
        icc_rsa=None, capk_rid=aid[:5], capk_index=0,
        track2=bytes.fromhex(f"{mpan}D3012201".ljust(len(mpan) + 8, "F")),
    )
    token = TokenInfo(
        mpan=mpan, span=span, span_expiry="3112", token_expiry="3012",
        device_id=device_id or f"dev-{seed:04d}", device_type=DeviceType.parse(device_type),
        token_requestor_id=token_requestor_id, par=f"U001{seed:025d}",
    )
    ppse = tlv.Tlv.template(0x6F, [tlv.Tlv.primitive(0x84, b"2PAY.SYS.DDF01")]).encode()
    return CardProfile(pan=mpan, psn=psn, expiry="301231", effective="251101", ppse_fci=ppse,
                       applications=(app,), token=token, seed=seed).to_dict()


@dataclass
class SimCard:
    """A device card on a terminal: each :meth:`request` is one tap going online."""

    mpan: str
    icc_mk_ac: bytes = field(repr=False)
    psn: str = "01"
    atc: int = 0
    terminal_id: str = "TERM0001"
    merchant_id: str = "MERCHANT0000001"
    stan: int = 0
    #: HCE: ATC → limited-use key
    session_keys: dict[int, bytes] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return masked_repr(self, ("mpan",))

    @classmethod
    def from_profile(cls, profile: dict[str, Any], **kw: Any) -> SimCard:
        card_profile = CardProfile.from_dict(profile)
        return cls(card_profile.pan, card_profile.application.keys.ac, card_profile.psn, **kw)

    def icc_data(
        self,
        amount: int,
        *,
        currency: str = "0156",
        un: bytes = b"\x12\x34\x56\x78",
        cid: int = 0x80,
        date: str = "251126",
        tamper: bool = False,
        extra_tags: dict[int, bytes] | None = None,
    ) -> bytes:
        values = {
            0x9F02: bytes.fromhex(f"{amount:012d}"),
            0x9F03: bytes(6),
            0x9F1A: bytes.fromhex("0156"),
            0x95: bytes(5),
            0x5F2A: bytes.fromhex(currency),
            0x9A: bytes.fromhex(date),
            0x9C: b"\x00",
            0x9F37: un,
            0x82: bytes.fromhex("3C00"),
            0x9F36: self.atc.to_bytes(2, "big"),
            0x9F10: pboc_iad(1, bytes.fromhex("03A00000")),
        }
        key = self.session_keys.get(self.atc) or derive_pboc_session_key(
            self.icc_mk_ac, values[0x9F36]
        )
        arqc = generate_ac(key, pboc_arqc_data(values))
        if tamper:
            arqc = bytes([arqc[0] ^ 1]) + arqc[1:]
        values[0x9F26] = arqc
        values[0x9F27] = bytes([cid])
        values |= extra_tags or {}
        return tlv.encode(tlv.Tlv.primitive(t, v) for t, v in values.items())

    def request(
        self,
        amount: int,
        *,
        mti: str = "0100",
        entry_mode: str = "071",
        token_data: TokenData | None = None,
        pin_block: bytes | None = None,
        next_atc: bool = True,
        now: datetime | None = None,
        **icc_kw: Any,
    ) -> dict[str, Any]:
        """The next 0100/0200 of this card (ATC and STAN advance unless told otherwise)."""
        if next_atc:
            self.atc += 1
        self.stan += 1
        now = now or datetime.now(UTC)
        fields: dict[str, Any] = {
            "t": mti,
            "2": self.mpan,
            "3": "000000",
            "4": f"{amount:012d}",
            "7": now.strftime("%m%d%H%M%S"),
            "11": f"{self.stan % 1_000_000:06d}",
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            "14": "3012",
            "22": entry_mode,
            "23": f"{int(self.psn):03d}",
            "37": f"{self.terminal_id[-4:]}{self.stan % 100_000_000:08d}",
            "41": self.terminal_id,
            "42": self.merchant_id,
            "49": "156",
            "55": self.icc_data(amount, **icc_kw),
        }
        if token_data is not None:
            fields["48"] = encode_token_data(token_data)
        if pin_block is not None:
            fields["52"] = pin_block
        return fields


@contextlib.contextmanager
def running_switch(db_path: str | Path, **kw: Any) -> Iterator[SwitchServer]:
    """The switch on an ephemeral 127.0.0.1 port, its event loop in a background thread
    (``server.port`` is the bound port); stopped and closed on exit."""
    from switch.server import SwitchServer

    server = SwitchServer(db_path, port=0, **kw)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="switch-loop", daemon=True)
    thread.start()
    if not started.wait(10) or failure:
        raise RuntimeError(f"switch did not start: {failure}")
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
