"""Fuzz the server (docs/architecture.md, "Failure handling": a malformed 8583 message gets a
format-error response where the header allows one, else the connection is closed; the server
keeps serving): thousands of malformed frames over real TCP."""

from __future__ import annotations

import random
import socket
import struct

from emvtap.iso8583 import MAX_MESSAGE_LEN, decode_message, encode_message
from emvtap.iso8583 import frame as frame_message
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import SimCard, make_profile, running_switch

FRAMES = 3000


def malformed_frames(rnd: random.Random, valid: bytes):
    """Frames whose body is random, mutated, truncated or extended (the 2-byte length always
    matches the body, so the server must judge the content)."""
    for i in range(FRAMES):
        kind = i % 5
        if kind == 0:
            body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        elif kind == 1:
            body = bytearray(valid)
            for _ in range(rnd.randint(1, 8)):
                body[rnd.randrange(len(body))] = rnd.randrange(256)
            body = bytes(body)
        elif kind == 2:
            body = valid[: rnd.randrange(len(valid))]
        elif kind == 3:
            body = valid + bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 20)))
        else:
            body = rnd.choice([b"0100", b"0200", b"0400", b"0800"]) + bytes(
                rnd.randrange(256) for _ in range(rnd.randrange(0, 80))
            )
        yield struct.pack(">H", len(body)) + body


def test_thousands_of_malformed_frames_never_stop_the_server(tmp_path):
    db = tmp_path / "switch.db"
    profile = make_profile(21)
    with Store(db) as store:
        enroll_profile(store, profile, balance=10**9)
    rnd = random.Random(4242)
    card = SimCard.from_profile(profile)
    valid = encode_message(card.request(100))
    answered = closed = 0
    with running_switch(db) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        for data in malformed_frames(rnd, valid):
            sock.sendall(data)
            head = sock.recv(2, socket.MSG_WAITALL)
            if not head:  # unreadable message: the server closed this connection
                closed += 1
                sock.close()
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                continue
            (length,) = struct.unpack(">H", head)
            response = decode_message(sock.recv(length, socket.MSG_WAITALL))
            assert response["t"] in ("0110", "0210", "0410", "0810")
            answered += 1
        sock.close()

        # an oversized frame is refused from its length alone
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(struct.pack(">H", MAX_MESSAGE_LEN + 1) + b"0100")
            assert s.recv(2) == b""

        # and the server still serves a genuine tap
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(frame_message(encode_message(card.request(100))))
            (length,) = struct.unpack(">H", s.recv(2, socket.MSG_WAITALL))
            assert decode_message(s.recv(length, socket.MSG_WAITALL))["39"] == "00"

    assert answered + closed == FRAMES
    assert answered > 500 and closed > 500  # both paths were exercised
    with Store(db) as store:
        approvals = store.db.execute(
            "SELECT mpan, atc, COUNT(*) FROM authorizations WHERE response_code = '00'"
            " GROUP BY mpan, atc"
        ).fetchall()
        assert all(atc is not None and n == 1 for _, atc, n in approvals)


def test_every_prefix_of_a_frame_then_close_leaves_the_server_serving(tmp_path):
    db = tmp_path / "switch.db"
    profile = make_profile(22)
    with Store(db) as store:
        enroll_profile(store, profile)
    card = SimCard.from_profile(profile)
    data = frame_message(encode_message(card.request(100)))
    with running_switch(db, read_timeout=0.5) as server:
        for cut in range(0, len(data), 7):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                s.sendall(data[:cut])
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(frame_message(encode_message(card.request(100))))
            (length,) = struct.unpack(">H", s.recv(2, socket.MSG_WAITALL))
            assert decode_message(s.recv(length, socket.MSG_WAITALL))["39"] == "00"
