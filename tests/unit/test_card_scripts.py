"""Issuer script commands with secure messaging (EMV 4.4 Book 3 6.5.1-6.5.3, 6.5.10, 10.10;
Book 2 9.2, 9.3): the MAC verifies under the script integrity session key (good → done, bad →
6988 and nothing done), a block persists across a restart, and the switch's own APPLICATION
BLOCK script is accepted."""

from __future__ import annotations

import pytest
from card_fixtures import (
    QPBOC_AID,
    SEED,
    TTQ_FULL,
    new_card,
    objects,
    ok,
    qpboc_profile,
    transaction,
)

from emvtap import tlv
from emvtap.apdu import SW
from emvtap.cryptogram import arpc_method_1, parse_pboc_iad, script_mac
from emvtap.des import des3_encrypt, pad_method2
from emvtap.keys import derive_icc_master_key, derive_pboc_session_key
from emvtap.perso import issuer_keys
from hce_card.card import HceCard
from hce_card.state import StateStore


def mk(label: str) -> bytes:
    profile = qpboc_profile()
    imk = getattr(issuer_keys(SEED), f"imk_{label}")
    return derive_icc_master_key(imk, profile.pan, profile.psn)


def sm_key(label: str, atc: bytes) -> bytes:
    return derive_pboc_session_key(mk(label), atc)


class Online:
    """A card that has just sent an ARQC from its first GENERATE AC."""

    def __init__(self, store: StateStore | None = None) -> None:
        self.card, self.term = new_card(store=store)
        self.values = transaction(amount=20000, ttq=TTQ_FULL)
        self.term.full_path(QPBOC_AID, self.values)
        value = objects(ok(self.term.generate_ac(0x80, self.values)))[0x80]
        self.atc, self.arqc, self.iad = value[1:3], value[3:11], value[11:]

    def script(self, cla: int, ins: int, p1: int = 0, p2: int = 0, data: bytes = b"",
               key: bytes | None = None, mac_length: int = 4) -> bytes:
        """The full command as the issuer builds it (Book 2 9.2.1)."""
        header = bytes([cla, ins, p1, p2, len(data) + mac_length])
        mac = script_mac(key or sm_key("smi", self.atc), header, self.atc, self.arqc, data,
                         mac_length)
        return header + data + mac

    def send(self, command: bytes):
        return self.term.send(command)

    def second_generate_ac(self, approve: bool = True):
        arc = b"00" if approve else b"05"
        arpc = arpc_method_1(sm_key("ac", self.atc), self.arqc, arc) + arc
        return self.term.generate_ac(0x40, self.values | {0x91: arpc, 0x8A: arc}, second=True)


def test_application_block_with_a_good_mac_blocks_and_persists_across_restart(tmp_path):
    path = tmp_path / "card.json"
    online = Online(StateStore(path))
    ok(online.send(online.script(0x84, 0x1E)))
    cid = objects(ok(online.second_generate_ac()))[0x80][0]
    assert cid == 0x00  # blocked in template 71: the second GENERATE AC declines
    restarted = HceCard(qpboc_profile(), StateStore(path))
    response = restarted.process(bytes.fromhex("00A4040008A00000033301010100"))
    assert response[-2:] == b"\x62\x83"
    gpo = restarted.process(bytes.fromhex("80A8000002830000"))
    assert gpo == b"\x69\x85"


def test_script_with_a_bad_mac_answers_6988_does_nothing_and_is_reported():
    online = Online()
    command = bytearray(online.script(0x84, 0x1E))
    command[-1] ^= 0x01
    assert online.send(bytes(command)).sw == SW.SM_DATA_INCORRECT
    state = online.card.store.app(QPBOC_AID)
    assert not state.application_blocked and state.script_failed
    ok(online.second_generate_ac())
    ok(online.term.select(QPBOC_AID))
    response = objects(ok(online.term.gpo(transaction(amount=100))))
    assert parse_pboc_iad(response[0x9F10]).cvr[3] & 0x08  # script failed, last transaction


def test_script_mac_under_another_key_is_refused():
    online = Online()
    assert online.send(online.script(0x84, 0x1E, key=sm_key("smc", online.atc))).sw == \
        SW.SM_DATA_INCORRECT


def test_script_after_the_second_generate_ac_template_72():
    online = Online()
    ok(online.second_generate_ac())
    ok(online.send(online.script(0x84, 0x1E)))
    assert online.card.store.app(QPBOC_AID).application_blocked


def test_script_counter_appears_in_the_next_cvr():
    online = Online()
    ok(online.send(online.script(0x04, 0xDA, 0x9F, 0x14, b"\x03")))
    ok(online.send(online.script(0x04, 0xDA, 0x9F, 0x23, b"\x06")))
    ok(online.second_generate_ac())
    ok(online.term.select(QPBOC_AID))
    response = objects(ok(online.term.gpo(transaction(amount=100))))
    assert parse_pboc_iad(response[0x9F10]).cvr[3] >> 4 == 2


def test_application_unblock_lifts_the_block():
    online = Online()
    ok(online.send(online.script(0x84, 0x1E)))
    assert online.card.store.app(QPBOC_AID).application_blocked
    ok(online.send(online.script(0x84, 0x18)))
    assert not online.card.store.app(QPBOC_AID).application_blocked


def test_card_block_makes_every_select_answer_6a81(tmp_path):
    path = tmp_path / "card.json"
    online = Online(StateStore(path))
    ok(online.send(online.script(0x84, 0x16)))
    restarted = HceCard(qpboc_profile(), StateStore(path))
    for name in ("325041592E5359532E4444463031", "A000000333010101"):
        apdu = bytes.fromhex(f"00A40400{len(name) // 2:02X}{name}00")
        assert restarted.process(apdu) == b"\x6a\x81"


def test_put_data_updates_risk_parameters_and_get_data_shows_them():
    online = Online()
    ok(online.send(online.script(0x04, 0xDA, 0x9F, 0x14, b"\x01")))
    ok(online.second_generate_ac())
    term = online.term
    ok(term.select(QPBOC_AID))
    assert ok(term.get_data(0x9F14)).data == bytes.fromhex("9F140101")
    cids = []
    for _ in range(3):
        ok(term.select(QPBOC_AID))
        cids.append(objects(ok(term.gpo(transaction(amount=100))))[0x9F27][0])
    assert cids == [0x40, 0x80, 0x40]  # one offline transaction, then online


@pytest.mark.parametrize(("p1p2", "data", "sw"), [
    ((0x5A, 0x00), b"\x01", SW.REFERENCED_DATA_NOT_FOUND),  # not an updatable tag
    ((0x9F, 0x79), bytes(6), SW.REFERENCED_DATA_NOT_FOUND),  # no e-cash on this card
    ((0x9F, 0x14), b"\x01\x02", SW.WRONG_LENGTH),
    ((0x9F, 0x54), bytes.fromhex("00000000AB00"), SW.WRONG_DATA),  # not BCD
])
def test_put_data_refusals(p1p2, data, sw):
    online = Online()
    assert online.send(online.script(0x04, 0xDA, *p1p2, data)).sw == sw
    assert online.card.store.app(QPBOC_AID).data == {}


@pytest.mark.parametrize(("command", "sw"), [
    ("841E000100", SW.INCORRECT_P1P2),
    ("841E000002AABB", SW.WRONG_LENGTH),  # shorter than the MAC
    ("841E00000800112233AABBCCDD", SW.WRONG_LENGTH),  # data where none is allowed
    ("8424000300", SW.INCORRECT_P1P2),
    ("041E000004AABBCCDD", SW.CLA_NOT_SUPPORTED),
])
def test_script_commands_malformed(command, sw):
    online = Online()
    assert online.send(bytes.fromhex(command)).sw == sw


def test_script_without_an_online_transaction_answers_6985():
    _card, term = new_card()
    ok(term.select(QPBOC_AID))
    assert term.send(bytes.fromhex("841E000004AABBCCDD")).sw == SW.CONDITIONS_NOT_SATISFIED
    ok(term.gpo(transaction(amount=100, ttq=TTQ_FULL)))  # between GPO and GENERATE AC
    assert term.send(bytes.fromhex("841E000004AABBCCDD")).sw == SW.CONDITIONS_NOT_SATISFIED


def test_pin_unblock_resets_the_pin_try_counter():
    online = Online()
    online.card.store.update_app(QPBOC_AID, pin_try_counter=0)
    ok(online.send(online.script(0x84, 0x24, 0, 0)))
    assert online.card.store.app(QPBOC_AID).pin_try_counter == 3


def enciphered_pin(online: Online, *blocks: bytes) -> bytes:
    plain = bytes([8 * len(blocks)]) + b"".join(blocks)
    return des3_encrypt(sm_key("smc", online.atc), pad_method2(plain))


def test_pin_change_without_and_with_the_current_pin():
    online = Online()
    new_pin = bytes.fromhex("241234FFFFFFFFFF")
    ok(online.send(online.script(0x84, 0x24, 0, 2, enciphered_pin(online, new_pin))))
    assert online.card.store.app(QPBOC_AID).pin_block == new_pin.hex().upper()
    newer = bytes.fromhex("26123456FFFFFFFF")
    wrong_current = bytes.fromhex("249999FFFFFFFFFF")
    assert online.send(online.script(0x84, 0x24, 0, 1, enciphered_pin(
        online, newer, wrong_current))).sw == SW.WRONG_DATA
    ok(online.send(online.script(0x84, 0x24, 0, 1, enciphered_pin(online, newer, new_pin))))
    assert online.card.store.app(QPBOC_AID).pin_block == newer.hex().upper()


def test_pin_change_with_a_malformed_pin_block_is_refused():
    online = Online()
    bad = bytes.fromhex("2A12FFFFFFFFFFFF")  # says 10 digits, has 2
    assert online.send(online.script(0x84, 0x24, 0, 2, enciphered_pin(online, bad))).sw == \
        SW.WRONG_DATA
    assert online.card.store.app(QPBOC_AID).pin_block == ""


def test_the_switchs_application_block_script_is_accepted():
    """The switch builds template 72 with switch.arqc.application_block_script: the card must
    verify its MAC (agreement on Book 2 9.2.1 and the PBOC script key)."""
    from switch.arqc import application_block_script, parse_icc_data

    online = Online()
    term = online.term
    de55_values = online.values | {0x9F26: online.arqc, 0x9F27: b"\x80", 0x9F36: online.atc,
                                   0x82: term.app.aip, 0x9F10: online.iad}
    de55 = tlv.encode(tlv.Tlv.primitive(t, v) for t, v in de55_values.items())
    script = application_block_script(parse_icc_data(de55), mk("smi"))
    for command in tlv.find_all([script], 0x86):
        ok(online.send(command.value))
    assert online.card.store.app(QPBOC_AID).application_blocked
