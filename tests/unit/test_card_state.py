"""The card's persistent state (EMV 4.4 Book 2 A1.3: a session key is never reused; Book 3
6.5.1: a block holds until the issuer lifts it): every change is one atomic write, made before
the response leaves. The crashes here are *simulations*: a ``SimulatedCrash`` raised inside
the store's write (before or after the rename) stands for the process dying at that point - no
response leaves the card - and the card is then restarted from the file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_card_helpers import QPBOC_AID, TTQ_FULL, new_card, objects, ok, qpboc_profile, transaction

from emvtap.apdu import SW
from hce_card.card import HceCard
from hce_card.state import AppState, AtcExhausted, CardState, StateStore


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so the card's 6F00 guard does not
    turn it into an answer."""


class CrashingStore(StateStore):
    """A store whose ``n``-th write dies ``before`` or ``after`` the rename (simulation)."""

    def __init__(self, path: Path, crash_at: int, after_rename: bool) -> None:
        self.writes, self.crash_at, self.after_rename = 0, 0, after_rename
        super().__init__(path)
        self.writes, self.crash_at = 0, crash_at

    def _write(self, state: CardState) -> None:
        self.writes += 1
        if self.writes == self.crash_at and not self.after_rename:
            self.write_hook = _die
        super()._write(state)
        self.write_hook = None
        if self.writes == self.crash_at and self.after_rename:
            raise SimulatedCrash("after rename")


def _die(tmp: Path) -> None:
    raise SimulatedCrash("before rename")


def test_state_survives_a_restart(tmp_path):
    path = tmp_path / "card.json"
    _card, term = new_card(store=StateStore(path))
    for _ in range(3):
        ok(term.select(QPBOC_AID))
        ok(term.gpo(transaction()))
    assert StateStore(path).app(QPBOC_AID).atc == 3
    assert json.loads(path.read_text())["format"] == "emvtap-card-state/2"


def test_simulated_crash_before_the_rename_leaves_the_old_state_and_no_cryptogram(tmp_path):
    path = tmp_path / "card.json"
    _card, term = new_card(store=StateStore(path))
    ok(term.select(QPBOC_AID))
    ok(term.gpo(transaction()))
    store = CrashingStore(path, crash_at=1, after_rename=False)
    _card, term = new_card(store=store)
    ok(term.select(QPBOC_AID))
    with pytest.raises(SimulatedCrash):
        term.gpo(transaction())
    assert not list(tmp_path.glob(".state-*"))  # no temporary file left behind
    assert StateStore(path).app(QPBOC_AID).atc == 1
    assert store.app(QPBOC_AID).atc == 1  # memory follows only what was written


def test_simulated_crash_after_the_rename_skips_the_atc_never_repeats_it(tmp_path):
    path = tmp_path / "card.json"
    store = CrashingStore(path, crash_at=1, after_rename=True)
    _card, term = new_card(store=store)
    ok(term.select(QPBOC_AID))
    with pytest.raises(SimulatedCrash):
        term.gpo(transaction())  # ATC 1 is durable, its cryptogram never left
    _card, term = new_card(store=StateStore(path))
    ok(term.select(QPBOC_AID))
    assert objects(ok(term.gpo(transaction())))[0x9F36] == b"\x00\x02"


@pytest.mark.parametrize("seed", range(6))
def test_atc_never_repeats_across_random_simulated_crashes(tmp_path, seed):
    rng = random.Random(seed)
    path = tmp_path / "card.json"
    StateStore(path)
    seen: list[int] = []
    crashes = 0
    for _ in range(25):
        store = CrashingStore(path, crash_at=rng.randint(1, 6), after_rename=rng.random() < 0.5)
        _card, term = new_card(store=store)
        try:
            for _ in range(3):
                ok(term.select(QPBOC_AID))
                values = transaction(amount=rng.choice([100, 20000]),
                                     ttq=rng.choice([bytes.fromhex("36004000"), TTQ_FULL]))
                response = objects(ok(term.gpo(values)))
                if 0x9F36 in response:
                    seen.append(int.from_bytes(response[0x9F36], "big"))
                else:
                    value = objects(ok(term.generate_ac(0x80, values)))[0x80]
                    seen.append(int.from_bytes(value[1:3], "big"))
        except SimulatedCrash:
            crashes += 1
    assert crashes >= 5 and len(seen) >= 10
    assert seen == sorted(set(seen)), "an ATC left the card twice or went backwards"
    assert StateStore(path).app(QPBOC_AID).atc >= max(seen)


@pytest.mark.parametrize("after_rename", [False, True])
def test_a_block_that_was_answered_9000_is_never_lost(tmp_path, after_rename):
    from test_card_scripts import Online

    path = tmp_path / "card.json"
    online = Online(StateStore(path))
    command = online.script(0x84, 0x1E)
    online.card.store = CrashingStore(path, crash_at=1, after_rename=after_rename)
    for app in online.card.payment_applications:
        app.store = online.card.store
    with pytest.raises(SimulatedCrash):
        online.send(command)
    # no 9000 left the card; whatever is on disk is whole and the card restarts from it
    blocked = StateStore(path).app(QPBOC_AID).application_blocked
    assert blocked is after_rename
    restarted = HceCard(qpboc_profile(), StateStore(path))
    sw = restarted.process(bytes.fromhex("00A4040008A00000033301010100"))[-2:]
    assert sw == (b"\x62\x83" if after_rename else b"\x90\x00")


def test_internal_error_answers_6f00_and_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "card.json"
    _card, term = new_card(store=StateStore(path))
    ok(term.select(QPBOC_AID))
    before = path.read_bytes()
    import hce_card.quick_path

    def boom(*args, **kwargs):
        raise RuntimeError("simulated internal fault")

    monkeypatch.setattr(hce_card.quick_path, "generate_ac", boom)
    assert term.gpo(transaction()).sw == SW.NO_PRECISE_DIAGNOSIS
    assert path.read_bytes() == before


def test_atc_at_its_maximum_blocks_the_application():
    top = StateStore(initial=CardState(applications={QPBOC_AID.hex().upper(): AppState(
        atc=0xFFFF)}))
    _card, term = new_card(store=top)
    ok(term.select(QPBOC_AID))
    assert term.gpo(transaction()).sw == SW.CONDITIONS_NOT_SATISFIED
    assert top.app(QPBOC_AID).application_blocked and top.app(QPBOC_AID).atc == 0xFFFF
    with pytest.raises(AtcExhausted):
        top.next_atc(QPBOC_AID)


def test_atc_cannot_be_set_backwards():
    store = StateStore()
    store.next_atc(QPBOC_AID, 5)
    with pytest.raises(ValueError, match="must grow"):
        store.next_atc(QPBOC_AID, 5)


def test_a_format_1_state_file_is_read_into_the_first_application(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"atc": 41, "last_online_atc": 40, "consecutive_offline": 1,
                                "application_blocked": False, "card_blocked": False,
                                "issuer_authentication_failed": False, "pin_try_counter": 3,
                                "used_keys": []}))
    _card, term = new_card(store=StateStore(path))
    ok(term.select(QPBOC_AID))
    assert objects(ok(term.gpo(transaction())))[0x9F36] == (42).to_bytes(2, "big")
