"""A malformed request costs only its sender (ISO 8583:1987 DE 39 = 30 "format error"): the
host answers it from fields it validated, or gives no answer, and never raises - so a bad frame
can never roll back the group-commit batch other clients' requests share (switch.server)."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime

import pytest

from emvtap.iso8583 import decode_message, encode_message
from switch.authorize import Authorizer, HostConfig
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import SimCard, make_profile, mutated_messages

NOW = datetime(2025, 11, 26, 11, 30, tzinfo=UTC)

#: how many mutated messages the in-process fuzz feeds the host
FUZZ_MESSAGES = 50_000


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "switch.db", synchronous="NORMAL") as s:
        yield s


@pytest.fixture
def host(store):
    enroll_profile(store, make_profile(7), balance=10**9)
    return Authorizer(store, HostConfig(atc_window=8), clock=lambda: NOW)


def _with_stan(raw: bytes, stan: bytes, bad: bytes) -> bytes:
    assert raw.count(stan) == 1
    return raw.replace(stan, bad)


def test_non_numeric_stan_gets_30_without_echoing_it(host):
    card = SimCard.from_profile(make_profile(7))
    request = card.request(100) | {"11": "987654"}
    raw = _with_stan(encode_message(request), b"987654", b"98765A")
    response = host.handle_raw(raw)
    assert response is not None
    fields = decode_message(response)
    assert (fields["t"], fields["39"]) == ("0110", "30")
    assert "11" not in fields  # the STAN did not validate, so it is not echoed


def test_valid_stan_is_still_echoed_in_the_format_error(host):
    card = SimCard.from_profile(make_profile(7))
    raw = encode_message(card.request(100))[:-3]  # DE 55 cut short
    fields = decode_message(host.handle_raw(raw))
    assert (fields["39"], fields["11"]) == ("30", f"{card.stan:06d}")


def test_fifty_thousand_mutated_messages_never_raise(host):
    card = SimCard.from_profile(make_profile(7))
    valid = [encode_message(card.request(100 + i, mti=("0100", "0200")[i % 2])) for i in range(4)]
    valid.append(encode_message({"t": "0800", "7": "1126113000", "11": "000001", "70": "301"}))
    rnd = random.Random(15)
    answered = unanswered = 0
    for body in mutated_messages(rnd, valid, FUZZ_MESSAGES):
        response = host.handle_raw(body)  # must not raise
        if response is None:
            unanswered += 1
        else:
            assert decode_message(response)["t"] in ("0110", "0210", "0410", "0810")
            answered += 1
    assert answered + unanswered == FUZZ_MESSAGES
    assert answered > 1000 and unanswered > 1000
    # the host still approves a genuine tap afterwards
    assert decode_message(host.handle_raw(encode_message(card.request(100))))["39"] == "00"


def test_mutated_frames_keep_their_length_prefix_consistent():
    rnd = random.Random(1)
    frames = list(mutated_messages(rnd, [b"0800" + bytes(10)], 200, framed=True))
    assert all(struct.unpack(">H", f[:2])[0] == len(f) - 2 for f in frames)
