"""switch.server over real TCP on 127.0.0.1 with a real SQLite file (docs/architecture.md "Failure
handling": a malformed message gets DE 39 = 30 where the header allows it, else the connection is
closed; the server keeps serving; restarts lose nothing)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from emvtap.iso8583 import (
    MAX_MESSAGE_LEN,
    decode_message,
    encode_message,
    exchange,
    frame,
    read_frame,
)
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import SimCard, make_profile, running_switch


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "switch.db"
    with Store(path) as store:
        enroll_profile(store, make_profile(3), balance=50_000)
    return path


@pytest.fixture
def card():
    return SimCard.from_profile(make_profile(3))


def raw_exchange(port: int, payload: bytes, timeout: float = 5.0) -> bytes | None:
    """Send raw bytes, return one framed response, or None when the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            return read_frame(sock)
        except ConnectionError:
            return None


def test_tap_is_approved_over_tcp(db, card):
    with running_switch(db) as server:
        response = exchange("127.0.0.1", server.port, card.request(1234))
    assert (response["t"], response["39"]) == ("0110", "00")


def test_server_binds_loopback_by_default(db):
    with running_switch(db) as server:
        assert server.host == "127.0.0.1"
        assert server._server.sockets[0].getsockname()[0] == "127.0.0.1"


def test_malformed_message_gets_30_and_the_next_connection_is_served(db, card):
    with running_switch(db) as server:
        broken = encode_message(card.request(100))[:-5]
        response = raw_exchange(server.port, frame(broken))
        assert response is not None
        decoded = decode_message(response)
        assert (decoded["t"], decoded["39"], decoded["11"]) == ("0110", "30", f"{card.stan:06d}")
        assert exchange("127.0.0.1", server.port, card.request(100))["39"] == "00"


def test_unreadable_message_closes_the_connection_and_the_server_keeps_serving(db, card):
    with running_switch(db) as server:
        assert raw_exchange(server.port, frame(b"\xde\xad\xbe\xef" + bytes(20))) is None
        assert exchange("127.0.0.1", server.port, card.request(100))["39"] == "00"


def test_oversized_frame_is_refused_before_it_is_read(db, card):
    with running_switch(db) as server:
        # only the length is sent: the server must close without waiting for the body
        assert raw_exchange(server.port, struct.pack(">H", MAX_MESSAGE_LEN + 1)) is None
        assert server.stats["closed_bad_input"] == 1
        assert exchange("127.0.0.1", server.port, card.request(100))["39"] == "00"


def test_idle_connection_times_out(db):
    with (
        running_switch(db, idle_timeout=0.3) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
    ):
        assert sock.recv(1) == b""  # closed by the server, not by our timeout


def test_several_messages_on_one_connection(db, card):
    with (
        running_switch(db) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
    ):
        for _ in range(3):
            sock.sendall(frame(encode_message(card.request(10))))
            assert decode_message(read_frame(sock))["39"] == "00"


def test_echo_test(db):
    with running_switch(db) as server:
        response = exchange("127.0.0.1", server.port, {"t": "0800", "11": "000001", "70": "301"})
    assert (response["t"], response["39"]) == ("0810", "00")


def test_restart_keeps_approvals_balances_and_atc_history(db, card):
    first = card.request(1000)
    with running_switch(db) as server:
        approved = exchange("127.0.0.1", server.port, first)
    assert approved["39"] == "00"
    with running_switch(db) as server:
        again = exchange("127.0.0.1", server.port, first)  # retransmission after the restart
        replay = exchange("127.0.0.1", server.port, card.request(1000, next_atc=False))
    assert again == approved
    assert replay["39"] == "05"
    with Store(db) as store:
        assert store.account(1).balance == 50_000 - 1000
        assert [a["response_code"] for a in store.authorizations()] == ["05", "00"]


def test_concurrent_connections_are_all_answered_and_recorded(db):
    cards = [SimCard.from_profile(make_profile(3), terminal_id=f"TERM{i:04d}") for i in range(8)]
    for i, c in enumerate(cards):
        c.atc = i * 100  # distinct ATCs, as if the same card tapped at 8 terminals in turn
    results: list[str] = []

    def tap(c: SimCard) -> None:
        for _ in range(5):
            results.append(exchange("127.0.0.1", port, c.request(10))["39"])

    with running_switch(db) as server:
        port = server.port
        threads = [threading.Thread(target=tap, args=(c,)) for c in cards]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(results) == 40
    with Store(db) as store:
        rows = store.authorizations(limit=100)
        assert len(rows) == 40
        approved = [r for r in rows if r["response_code"] == "00"]
        assert store.account(1).balance == 50_000 - 10 * len(approved)
