"""Robustness (docs/architecture.md, "Failure handling"): tens of thousands of
random and mutated APDUs, in random sequences with resets. The card never raises, always
answers a well-formed status word from the set a card uses, never an internal error (6F00),
and the ATC of each application never goes backwards nor leaves the card twice."""

from __future__ import annotations

import random

import pytest
from test_card_helpers import (
    MC_AID,
    QPBOC_AID,
    TTQ_FULL,
    VISA_AID,
    multi_profile,
    new_card,
    ok,
    transaction,
)

from emvtap.tlv import TlvError, decode, flatten

#: SW1 values a card answers with (ISO 7816-4 5.6)
VALID_SW1 = {0x90, 0x61, 0x62, 0x63, 0x67, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E}
INTERESTING_INS = [0xA4, 0xA8, 0xB2, 0xCA, 0x88, 0xAE, 0x82, 0x1E, 0x18, 0x16, 0x24, 0xDA, 0xC0]
INTERESTING_CLA = [0x00, 0x80, 0x84, 0x04, 0x0C, 0x8C, 0x10, 0xFF]


def valid_session(term) -> list[bytes]:
    """The APDUs of real transactions on each application (seeds for mutation)."""
    for aid in (QPBOC_AID, VISA_AID):
        ok(term.select(aid))
        ok(term.gpo(transaction(amount=20000)))
        term.read_record(1, 1)
    values = transaction(amount=20000, ttq=TTQ_FULL)
    term.full_path(QPBOC_AID, values)
    term.internal_authenticate(values[0x9F37])
    term.generate_ac(0x80, values)
    term.generate_ac(0x40, values | {0x8A: b"00", 0x91: bytes(10)}, second=True)
    ok(term.select(MC_AID))
    term.command(0x80, 0xA8, data=bytes.fromhex("8300"))
    term.generate_ac(0x90, values)
    return [apdu for apdu, _ in term.log]


def random_apdu(rng: random.Random, seeds: list[bytes]) -> bytes:
    kind = rng.random()
    if kind < 0.2:
        return rng.choice(seeds)  # a valid command, out of its sequence or in it
    if kind < 0.55:
        base = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            if op < 0.4 and base:
                base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
            elif op < 0.6:
                base = base[: rng.randrange(len(base) + 1)]
            elif op < 0.8:
                base += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif len(base) > 4:
                base[4] = rng.randrange(256)  # a lying Lc
        return bytes(base)
    if kind < 0.9:
        cla, ins = rng.choice(INTERESTING_CLA), rng.choice(INTERESTING_INS)
        p1, p2 = rng.randrange(256), rng.choice([0, rng.randrange(256)])
        data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 4, 8, 30, 255])))
        body = (bytes([len(data)]) + data) if data else b""
        if rng.random() < 0.5:
            body += bytes([rng.randrange(256)])
        return bytes([cla, ins, p1, p2]) + body
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))


def emitted_atc(response: bytes) -> int | None:
    """The ATC of a cryptogram the response carries, if any."""
    if response[-2:] != b"\x90\x00" or len(response) < 4:
        return None
    try:
        objs = decode(response[:-2])
    except TlvError:
        return None
    flat = flatten(objs)
    if 0x9F36 in flat and (0x9F26 in flat or 0x9F4B in flat):
        return int.from_bytes(flat[0x9F36], "big")
    if objs and objs[0].tag == 0x80 and len(objs[0].value) >= 11 and \
            objs[0].value[0] & 0xC0 != 0xC0:
        return int.from_bytes(objs[0].value[1:3], "big")
    return None


@pytest.mark.parametrize("seed", range(4))
def test_random_and_mutated_apdus_never_break_the_card(seed):
    rng = random.Random(seed)
    card, term = new_card(multi_profile())
    seeds = valid_session(term)
    atcs = {aid: card.store.app(aid).atc for aid in (QPBOC_AID, VISA_AID, MC_AID)}
    emitted: dict[tuple[bytes, int], bytes] = {}
    for i in range(6000):
        if rng.random() < 0.02:
            card.reset()
        apdu = random_apdu(rng, seeds)
        response = card.process(apdu)
        assert len(response) >= 2, apdu.hex()
        sw1 = response[-2]
        assert sw1 in VALID_SW1, f"{apdu.hex()} -> {response.hex()}"
        assert response[-2:] != b"\x6f\x00", f"internal error on {apdu.hex()}"
        for aid in atcs:
            now = card.store.app(aid).atc
            assert now >= atcs[aid], f"ATC of {aid.hex()} went back at command {i}"
            atcs[aid] = now
        atc = emitted_atc(response)
        selected = getattr(card.selected, "aid", b"")
        if atc is not None and apdu[1] in (0xA8, 0xAE):
            key = (selected, atc)
            # the same ATC may appear in both GENERATE ACs of one transaction, never in two
            assert key not in emitted or (emitted[key][1] == 0xAE and apdu[1] == 0xAE), \
                f"ATC {atc} of {selected.hex()} left the card in two transactions"
            emitted[key] = apdu
    assert len(emitted) > 10  # the fuzzing reached the cryptogram commands
