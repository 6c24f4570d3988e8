"""The lying card: an attack layer around the card's ``process(apdu)``.

:class:`AttackCard` has the card interface every link serves (``atr``, ``reset()``,
``process(apdu)``), so the same attack runs on loopback, vpcd and nfc (udp or usb). It names
each command (``ppse``, ``select``, ``gpo``, ``record:SFI.REC``, ``get_data:TAG``, ``gen_ac1``
…), lets the card answer, then applies the mutations of the armed attacks whose target
matches, in order. The card's own state machine is untouched: only what leaves it changes.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date

import hce_card.attacks.mutators as mutators
from emvtap.apdu import ApduError, CommandApdu, ResponseApdu
from emvtap.capk import CapkStore, test_ca_private_key
from emvtap.oda import OdaError, create_issuer_certificate, recover_issuer_public_key
from emvtap.perso import PPSE_NAME
from emvtap.tlv import TlvError, decode, find
from hce_card.attacks.model import Attack, Mutation

__all__ = ["AttackCard", "CardLeftField", "command_targets"]

log = logging.getLogger("emvtap.card.attack")


class CardLeftField(Exception):
    """Raised by :meth:`AttackCard.process` for ``remove_card`` when no link can take the card
    out of the field (an in-process transport turns it into a card removal)."""


def command_targets(cmd: CommandApdu, gen_ac_count: int) -> set[str]:
    """The target names a command answers to (``any`` always)."""
    names = {"any"}
    if cmd.ins == 0xA4:
        names.add("ppse" if bytes(cmd.data) == PPSE_NAME else "select")
    elif cmd.ins == 0xA8:
        names.add("gpo")
    elif cmd.ins == 0xB2:
        names |= {"record", f"record:{cmd.p2 >> 3}.{cmd.p1}"}
    elif cmd.ins == 0xCA:
        names |= {"get_data", f"get_data:{(cmd.p1 << 8 | cmd.p2):X}"}
    elif cmd.ins == 0xAE:
        names |= {"gen_ac", f"gen_ac{gen_ac_count}"}
    elif cmd.ins == 0x88:
        names.add("internal_auth")
    return names


class AttackCard:
    """*card* (an :class:`~hce_card.card.HceCard`) lying as *attacks* say.

    :param leave_field: takes the card out of the field (a link's ``remove_card``); without
        it ``remove_card`` raises :class:`CardLeftField`.
    :param sleep: how the card waits for ``delay`` (tests pass a fake).
    """

    def __init__(self, card: object, attacks: Iterable[Attack],
                 leave_field: Callable[[], None] | None = None,
                 sleep: Callable[[float], None] = mutators.sleep) -> None:
        self.card = card
        self.attacks = tuple(attacks)
        self.mutations: tuple[Mutation, ...] = tuple(m for a in self.attacks
                                                     for m in a.mutations)
        self.leave_field_hook = leave_field
        self.sleep = sleep
        self.atr = card.atr  # type: ignore[attr-defined]
        self.looping_61 = 0
        self.looping_6c = False
        self.applied: list[str] = []  # "op@target" of each mutation applied in this tap
        self._seen: Counter[tuple[int, str]] = Counter()
        self._gen_ac = 0
        self._lock = threading.Lock()
        self._aliases = {bytes.fromhex(str(m.args["as"])): bytes.fromhex(str(m.args["aid"]))
                         for m in self.mutations if m.op == "serve_aid_as"}
        self._certificate: bytes | None = None

    @property
    def profile(self) -> object:
        return self.card.profile  # type: ignore[attr-defined]

    def reset(self) -> None:
        self.card.reset()  # type: ignore[attr-defined]
        self.looping_61, self.looping_6c = 0, False
        self.applied = []
        self._seen.clear()
        self._gen_ac = 0

    def leave_field(self) -> None:
        if self.leave_field_hook is None:
            raise CardLeftField("the card left the field (attack remove_card)")
        self.leave_field_hook()

    def rewind_atc(self, by: int) -> None:
        """Set every payment application's ATC back by *by* (not below 0): the next
        transaction reuses an ATC already spent."""
        store = self.card.store  # type: ignore[attr-defined]
        for app in self.card.payment_applications:  # type: ignore[attr-defined]
            st = store.app(app.aid)
            store.update_app(app.aid, atc=max(0, st.atc - by))

    # --- one command ------------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        with self._lock:
            return self._process(bytes(apdu))

    def _process(self, apdu: bytes) -> bytes:
        if self.looping_61 and len(apdu) >= 2 and apdu[1] == 0xC0:
            return bytes([0x5A]) * self.looping_61 + bytes([0x61, self.looping_61])
        if self.looping_6c:
            return bytes([0x6C, 0x10])
        try:
            cmd = CommandApdu.decode(apdu)
        except ApduError:
            return self.card.process(apdu)  # type: ignore[attr-defined,no-any-return]
        if cmd.ins == 0xAE:
            self._gen_ac += 1
        targets = command_targets(cmd, self._gen_ac)
        matching = self._matching(targets)
        for m in matching:
            prepare = mutators.PREPARE.get(m.op)
            if prepare:
                prepare(self, m.args)
                self.applied.append(f"{m.op}@{m.target}")
        alias = self._aliases.get(bytes(cmd.data)) if cmd.ins == 0xA4 else None
        if alias is not None:
            apdu = CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, alias, cmd.le).encode()
        raw = self.card.process(apdu)  # type: ignore[attr-defined]
        resp = ResponseApdu.decode(raw)
        resp = self._image(cmd, resp, alias)
        for m in matching:
            apply = mutators.APPLY.get(m.op)
            if apply:
                resp = apply(self, resp, m.args)
                self.applied.append(f"{m.op}@{m.target}")
        return resp.encode()

    def _matching(self, targets: set[str]) -> list[Mutation]:
        out = []
        for i, m in enumerate(self.mutations):
            if m.target not in targets:
                continue
            self._seen[(i, m.target)] += 1
            if m.occurrence and self._seen[(i, m.target)] != m.occurrence:
                continue
            out.append(m)
        return out

    # --- changes to the card image --------------------------------------------------------

    def _image(self, cmd: CommandApdu, resp: ResponseApdu, alias: bytes | None) -> ResponseApdu:
        """``serve_aid_as`` (PPSE entries and the FCI's DF name) and
        ``resign_issuer_certificate`` (the 90 in whatever record holds it)."""
        for m in self.mutations:
            if m.op == "serve_aid_as":
                real, shown = bytes.fromhex(str(m.args["aid"])), bytes.fromhex(str(m.args["as"]))
                if cmd.ins == 0xA4 and bytes(cmd.data) == PPSE_NAME:
                    resp = _replace_value(resp, 0x4F, real, shown)
                elif alias == real:
                    resp = _replace_value(resp, 0x84, real, shown)
            elif m.op == "resign_issuer_certificate" and cmd.ins == 0xB2:
                resp = self._resigned(resp, m)
        return resp

    def _resigned(self, resp: ResponseApdu, m: Mutation) -> ResponseApdu:
        try:
            objs = decode(resp.data)
        except TlvError:
            return resp
        cert = find(objs, 0x90)
        if cert is None:
            return resp
        if self._certificate is None:
            self._certificate = self._new_issuer_certificate(cert.value, m)
        if self._certificate is None:
            return resp
        return mutators.APPLY["set"](self, resp, {"path": "70/90",
                                                  "value": self._certificate.hex()})

    def _new_issuer_certificate(self, cert: bytes, m: Mutation) -> bytes | None:
        """The issuer certificate signed again by the test CA of the card's RID with another
        expiry date or serial number (Book 2 5.3, Table 6). Only a test CA can do this - which
        is the point: the terminal must judge the fields, not only the signature."""
        app = self.card.payment_applications[0].app  # type: ignore[attr-defined]
        rid, index = app.capk_rid, app.capk_index
        capk = CapkStore.default().get(rid, index)
        records = {tag: v for r in app.records for tag, v in _flat(r.data).items()}
        if capk is None:
            log.warning("attack: no test CAPK %s/%02X to re-sign with", rid.hex(), index)
            return None
        try:
            issuer = recover_issuer_public_key(capk, cert, records.get(0x92, b""),
                                               records.get(0x9F32, b"\x03"),
                                               self.profile.pan,  # type: ignore[attr-defined]
                                               date(2000, 1, 1))
        except OdaError as exc:
            log.warning("attack: cannot read the issuer certificate: %s", exc)
            return None
        expiry = bytes.fromhex(str(m.args.get("expiry", issuer.expiry_mmyy.hex())))
        serial = bytes.fromhex(str(m.args.get("serial", issuer.serial.hex())))
        new, _ = create_issuer_certificate(test_ca_private_key(rid), issuer.public_key,
                                           issuer.issuer_id, expiry, serial)
        return new


def _flat(data: bytes) -> dict[int, bytes]:
    from emvtap.tlv import flatten

    try:
        return flatten(decode(data))
    except TlvError:
        return {}


def _replace_value(resp: ResponseApdu, tag: int, old: bytes, new: bytes) -> ResponseApdu:
    try:
        tree = mutators.Tree([mutators.Node.of(t) for t in decode(resp.data)])
    except TlvError:
        return resp

    def walk(nodes: list[mutators.Node]) -> None:
        for n in nodes:
            if n.children is not None:
                walk(n.children)
            elif n.tag == tag and n.value == old:
                n.value = new

    walk(tree.top)
    return ResponseApdu(tree.encode(), resp.sw)
