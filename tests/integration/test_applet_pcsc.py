"""The Java Card applets in jcardsim behind vpcd, through the real PC/SC stack (applets/README.md):

emvtap card run --applet --link vpcd:…  →  vpcd  →  pcscd  →  pyscard / emvtap terminal pay
                                                                 ↓ ISO 8583 over TCP
                                                       emvtap switch serve (SQLite file)

The bridge starts unpersonalised and is personalised through pcscd with
``emvtap card perso-applet``, as a card on a reader would be.
"""

from __future__ import annotations

import json
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smartcard.System import readers
from virtual_hw import VpcdSlot, wait_for_reader

from emvtap.cryptogram import arpc_method_1, pboc_arqc_data, verify_ac
from emvtap.dol import build_dol_data, parse_afl
from emvtap.keys import derive_pboc_session_key
from emvtap.oda import fdda_terminal_data, recover_dynamic_data
from emvtap.profile import CardProfile
from emvtap.tlv import decode
from hce_card.card import HceCard
from hce_card.state import StateStore
from lab.applet.cli import AppletError, ensure_bridge_jar

pytestmark = pytest.mark.pcsc

EMVTAP = [sys.executable, "-m", "lab.cli"]
SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
#: TTQ: qPBOC, online PIN, signature; issuer update; fDDA 01 (Book C-7, TTQ)
TTQ_OFFLINE_CAPABLE = "26008080"
TTQ_ONLINE_REQUIRED = "26808080"
#: contactless full PBOC only: the card answers GPO with AIP and AFL, GENERATE AC follows
TTQ_FULL_PATH = "40008000"


@pytest.fixture(scope="module")
def jar() -> Path:
    try:
        return ensure_bridge_jar()
    except AppletError as exc:
        pytest.fail(f"the applet bridge jar could not be built: {exc}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Bridge:
    """``emvtap card run --applet`` as a process, its stdout read line by line."""

    def __init__(self, slot: VpcdSlot, timing_log: Path, profile: Path) -> None:
        # installed as the profile needs (AIDs, ICC key length), personalised through pcscd
        cmd = [*EMVTAP, "card", "run", "--applet", "--link", slot.link_spec,
               "--timing-log", str(timing_log), "--profile", str(profile), "--install-only"]
        self.slot = slot
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                raise AssertionError(f"bridge did not print {prefix!r}: {err}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    def stop(self) -> None:
        _stop(self.proc)
        wait_for_reader(self.slot.reader, present=False, timeout=10)


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    """A fresh device-card profile (handset SE: the card master keys live in the applet)."""
    out = tmp_path / "card.json"
    subprocess.run([*EMVTAP, "perso", "--seed", "31", "--out", str(out)],
                   check=True, capture_output=True, timeout=60)
    return out


@pytest.fixture
def bridge(jar: Path, vpcd_slot: VpcdSlot, tmp_path: Path, profile_path: Path
           ) -> Iterator[Bridge]:
    """The applets, installed for ``profile_path`` but unpersonalised, as the card in
    ``vpcd_slot``."""
    b = Bridge(vpcd_slot, tmp_path / "timing.tsv", profile_path)
    try:
        b.wait_for("CONNECTED")
        wait_for_reader(vpcd_slot.reader, present=True, timeout=10)
        yield b
    finally:
        b.stop()


def _perso_applet(profile: Path, slot: VpcdSlot) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EMVTAP, "card", "perso-applet", "--profile", str(profile),
                           "--reader", slot.reader_spec], capture_output=True, text=True,
                          timeout=60)


class PcscCard:
    """The card in a vpcd reader through pyscard (a fresh connection = power on = reset)."""

    def __init__(self, reader_name: str) -> None:
        reader = next(r for r in readers() if str(r) == reader_name)
        self.connection = reader.createConnection()
        self.connection.connect()

    def process(self, apdu: bytes) -> bytes:
        data, sw1, sw2 = self.connection.transmit(list(apdu))
        out = bytes(data) + bytes([sw1, sw2])
        if sw1 == 0x61:  # GET RESPONSE for the rest (ISO 7816-4)
            rest = self.process(bytes([0x00, 0xC0, 0x00, 0x00, sw2]))
            out = bytes(data) + rest
        return out

    def close(self) -> None:
        self.connection.disconnect()


# --- personalisation ---------------------------------------------------------------------------


def test_perso_applet_through_pcscd_then_store_data_is_refused(bridge: Bridge,
                                                                profile_path: Path) -> None:
    done = _perso_applet(profile_path, bridge.slot)
    assert done.returncode == 0, done.stderr
    profile = CardProfile.load(profile_path)
    card = PcscCard(bridge.slot.reader)
    try:
        assert card.process(SELECT_PPSE) == profile.ppse_fci + b"\x90\x00"
        app = profile.application
        select = bytes([0, 0xA4, 4, 0, len(app.aid)]) + app.aid + b"\x00"
        assert card.process(select) == app.fci + b"\x90\x00"
        for rec in app.records:
            r = card.process(bytes([0, 0xB2, rec.record, rec.sfi << 3 | 4, 0]))
            assert r[-2:] == b"\x90\x00"
            if not rec.dynamic:
                assert r[:-2] == rec.data
    finally:
        card.close()
    again = _perso_applet(profile_path, bridge.slot)
    assert again.returncode != 0
    assert "6985" in again.stderr


# --- differential: the applet and the HCE card from one profile --------------------------------


def _gpo(pdol: bytes, values: dict[int, bytes]) -> bytes:
    data = build_dol_data(pdol, values)
    return bytes([0x80, 0xA8, 0, 0, len(data) + 2, 0x83, len(data)]) + data + b"\x00"


def _terminal_values(ttq: str, amount: str, un: str) -> dict[int, bytes]:
    return {0x9F66: bytes.fromhex(ttq), 0x9F02: bytes.fromhex(amount), 0x9F03: bytes(6),
            0x9F1A: bytes.fromhex("0156"), 0x95: bytes(5), 0x5F2A: bytes.fromhex("0156"),
            0x9A: bytes.fromhex("261126"), 0x9C: b"\x00", 0x9F37: bytes.fromhex(un)}


def _objects(response: bytes) -> dict[int, bytes]:
    assert response[-2:] == b"\x90\x00", response.hex()
    (template,) = decode(response[:-2])
    assert template.tag == 0x77 and template.children is not None
    return {t.tag: t.value for t in template.children}


def _transaction(card: Any, profile: CardProfile, ttq: str, amount: str, un: str
                 ) -> dict[str, Any]:
    """SELECT PPSE, SELECT AID, GET DATA, GPO, READ RECORD over the AFL, GET DATA again."""
    app = profile.application
    out: dict[str, Any] = {"ppse": card.process(SELECT_PPSE)}
    out["select"] = card.process(bytes([0, 0xA4, 4, 0, len(app.aid)]) + app.aid + b"\x00")
    out["get_data_before"] = [card.process(bytes.fromhex(f"80CA{t}00"))
                              for t in ("9F36", "9F13", "9F17", "9F4F", "9F79")]
    values = _terminal_values(ttq, amount, un)
    out["values"] = values
    out["gpo"] = card.process(_gpo(app.pdol, values))
    out["records"] = [card.process(bytes([0, 0xB2, n, e.sfi << 3 | 4, 0]))
                      for e in parse_afl(app.afl)
                      for n in range(e.first_record, e.last_record + 1)]
    out["missing_record"] = card.process(bytes([0, 0xB2, 9, 1 << 3 | 4, 0]))
    out["get_data_after"] = [card.process(bytes.fromhex(f"80CA{t}00")) for t in ("9F36", "9F13")]
    return out


def _verify_cryptogram(profile: CardProfile, values: dict[int, bytes],
                       objs: dict[int, bytes]) -> None:
    app = profile.application
    key = derive_pboc_session_key(app.keys.ac, objs[0x9F36])
    data = pboc_arqc_data(values | {0x82: objs[0x82], 0x9F36: objs[0x9F36], 0x9F10: objs[0x9F10]})
    assert verify_ac(key, data, objs[0x9F26]), "the AC does not verify under the PBOC session key"


def _card_auth_data(records: list[bytes]) -> bytes:
    for r in records:
        for t in decode(r[:-2])[0].children or ():
            if t.tag == 0x9F69:
                return t.value
    raise AssertionError("no 9F69 in the records")


def _full_path(card: Any, profile: CardProfile, amount: str, un: str) -> dict[str, Any]:
    """SELECT, GPO (full path), INTERNAL AUTHENTICATE, GENERATE AC (ARQC), the issuer's ARPC
    computed here, second GENERATE AC (TC)."""
    app = profile.application
    out: dict[str, Any] = {"select": card.process(bytes([0, 0xA4, 4, 0, len(app.aid)]) + app.aid
                                                  + b"\x00")}
    values = _terminal_values(TTQ_FULL_PATH, amount, un) | {
        0x9F35: b"\x22", 0x9F45: bytes(2), 0x9F4C: bytes(8), 0x9F34: bytes.fromhex("1F0302")}
    out["gpo"] = card.process(_gpo(app.pdol, values))
    out["dda"] = card.process(bytes([0, 0x88, 0, 0, 4]) + bytes.fromhex(un) + b"\x00")
    cdol1 = build_dol_data(app.cdol1, values)
    first = card.process(bytes([0x80, 0xAE, 0x80, 0, len(cdol1)]) + cdol1 + b"\x00")
    out["gac1"] = first
    assert first[-2:] == b"\x90\x00" and first[0] == 0x80, first.hex()
    atc, arqc = first[3:5], first[5:13]
    arpc = arpc_method_1(derive_pboc_session_key(app.keys.ac, atc), arqc, b"00")
    cdol2 = build_dol_data(app.cdol2, {0x91: arpc + b"00", 0x8A: b"00", 0x95: bytes(5),
                                       0x9F37: bytes.fromhex(un), 0x9F4C: bytes(8)})
    out["gac2"] = card.process(bytes([0x80, 0xAE, 0x40, 0, len(cdol2)]) + cdol2 + b"\x00")
    out["get_data_after"] = [card.process(bytes.fromhex(f"80CA{t}00")) for t in ("9F36", "9F13")]
    return out


def test_applet_and_hce_card_answer_alike_from_one_profile(bridge: Bridge, profile_path: Path,
                                                            tmp_path: Path) -> None:
    """The same profile in both forms of the card, the same commands: the same bytes wherever
    they are deterministic - all but the signatures (fDDA, DDA) and 9F69's card UN - and
    cryptograms that verify. Quick path online and offline, then a full-path transaction
    (DDA, ARQC, issuer authentication, TC), then the quick path again on the state it left."""
    assert _perso_applet(profile_path, bridge.slot).returncode == 0
    profile = CardProfile.load(profile_path)
    hce = HceCard(profile, StateStore(tmp_path / "hce.state.json"))

    def both(run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        applet = PcscCard(bridge.slot.reader)
        try:
            a = run(applet)
        finally:
            applet.close()
        hce.reset()
        return a, run(hce)

    online = ("online", TTQ_ONLINE_REQUIRED, "000000015000", "1E78EEBC")
    offline = ("offline", TTQ_OFFLINE_CAPABLE, "000000001000", "CAFEBABE")
    full = ("full path", TTQ_FULL_PATH, "", "")
    for step, (name, ttq, amount, un) in enumerate([online, offline, full, online]):
        if ttq == TTQ_FULL_PATH:
            a, h = both(lambda card: _full_path(card, profile, "000000020000", "0BADCAFE"))
            for key in ("select", "gpo", "gac1", "gac2", "get_data_after"):
                assert a[key] == h[key], f"full path: {key} differs: {a[key].hex()} {h[key].hex()}"
            assert a["dda"][-2:] == h["dda"][-2:] == b"\x90\x00"
            assert a["dda"][0] == h["dda"][0] == 0x80 and len(a["dda"]) == len(h["dda"])
            continue
        a, h = both(lambda card, t=ttq, m=amount, u=un: _transaction(card, profile, t, m, u))
        name = f"{name} #{step}"
        for key in ("ppse", "select", "get_data_before", "missing_record", "get_data_after"):
            assert a[key] == h[key], f"{name}: {key} differs"
        oa, oh = _objects(a["gpo"]), _objects(h["gpo"])
        assert list(oa) == list(oh), f"{name}: GPO objects differ in order or presence"
        for tag in oa:
            if tag != 0x9F4B:  # the fDDA signature covers the card's own random number
                assert oa[tag] == oh[tag], (
                    f"{name}: GPO {tag:X} differs: applet {oa[tag].hex()} HCE {oh[tag].hex()}")
        for ra, rh in zip(a["records"], h["records"], strict=True):
            if b"\x9f\x69" not in ra:
                assert ra == rh, f"{name}: a record differs"
        cad_a, cad_h = _card_auth_data(a["records"]), _card_auth_data(h["records"])
        assert (cad_a[0], cad_a[5:]) == (cad_h[0], cad_h[5:]), "9F69 version or CTQ differs"
        for objs, cad in ((oa, cad_a), (oh, cad_h)):
            _verify_cryptogram(profile, a["values"], objs)
            if 0x9F4B in objs:
                assert profile.application.icc_rsa is not None
                terminal = fdda_terminal_data(a["values"] | {0x9F69: cad})
                dynamic = recover_dynamic_data(profile.application.icc_rsa.public,
                                               objs[0x9F4B], terminal)
                assert dynamic == b"\x02" + objs[0x9F36]
        expected = 0x40 if ttq == TTQ_OFFLINE_CAPABLE else 0x80
        assert oa[0x9F27] == bytes([expected]), f"{name}: cryptogram type"


# --- end to end: terminal, switch, scripts -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"switch exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not up yet, bounded by the deadline
    raise AssertionError(f"nothing listening on {port} after {timeout}s")


def _pay(reader: str, switch: str, amount: str, out: Path) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([*EMVTAP, "terminal", "pay", "--reader", f"pcsc:{reader}",
                           "--amount", amount, "--switch", switch, "--json", str(out),
                           "--timeout", "20"], capture_output=True, text=True, timeout=120)
    assert out.exists(), f"no JSON record; stdout={proc.stdout} stderr={proc.stderr}"
    return proc.returncode, json.loads(out.read_text())


def test_applet_tap_approved_then_block_script_blocks_it(bridge: Bridge, profile_path: Path,
                                                         tmp_path: Path) -> None:
    assert _perso_applet(profile_path, bridge.slot).returncode == 0
    profile = json.loads(profile_path.read_text())
    db = tmp_path / "switch.db"
    subprocess.run([*EMVTAP, "switch", "enroll", "--db", str(db), "--balance", "500.00",
                    str(profile_path)], check=True, capture_output=True, timeout=60)
    port = _free_port()
    switch = subprocess.Popen([*EMVTAP, "switch", "serve", "--db", str(db), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_port(port, switch)
        address = f"127.0.0.1:{port}"
        reader = bridge.slot.reader

        rc, first = _pay(reader, address, "150.00", tmp_path / "first.json")
        assert first["cryptogram"]["type"] == "ARQC"
        assert first["final_outcome"] == "APPROVED", first["reason"]
        assert rc == 0
        with sqlite3.connect(db) as conn:
            atc, code = conn.execute("SELECT atc, response_code FROM authorizations "
                                     "ORDER BY id DESC LIMIT 1").fetchone()
        assert (atc, code) == (int(first["cryptogram"]["atc"], 16), "00")

        subprocess.run([*EMVTAP, "switch", "event", "--db", str(db), "--channel", "bank",
                        "token.delete", profile["pan"]], check=True, capture_output=True,
                       timeout=60)
        _rc, second = _pay(reader, address, "120.00", tmp_path / "second.json")
        assert second["final_outcome"] != "APPROVED"
        update = second.get("issuer_update") or {}
        assert update.get("result") == "delivered", update
        assert update["script_results"].startswith("2"), "APPLICATION BLOCK performed"

        _rc, third = _pay(reader, address, "10.00", tmp_path / "third.json")
        assert third["final_outcome"] != "APPROVED"
        blocked = PcscCard(reader)
        try:
            aid = bytes.fromhex(profile["applications"][0]["aid"])
            r = blocked.process(bytes([0, 0xA4, 4, 0, len(aid)]) + aid + b"\x00")
            assert r[-2:] == b"\x62\x83", "the blocked applet answers SELECT with 6283"
        finally:
            blocked.close()
    finally:
        _stop(switch)
