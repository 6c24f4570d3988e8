"""The switch bounds what clients can hold: a cap on ISO 8583 connections that keeps room for
new clients (the longest-idle connection makes way; when all are busy the newcomer is closed at
once, not left to time out), and a resource error of the event loop logged once, not per
accept."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import textwrap
import time

import pytest

from emvtap.iso8583 import decode_message, encode_message, frame
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import SimCard, make_profile, running_switch


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "switch.db"
    with Store(path) as store:
        enroll_profile(store, make_profile(5), balance=50_000)
    return path


def tap(port: int, card: SimCard) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(frame(encode_message(card.request(100))))
        (length,) = struct.unpack(">H", sock.recv(2, socket.MSG_WAITALL))
        return decode_message(sock.recv(length, socket.MSG_WAITALL))


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_at_the_cap_a_new_client_takes_the_place_of_the_longest_idle(db):
    card = SimCard.from_profile(make_profile(5))
    with running_switch(db, max_connections=8) as server:
        idle = []
        for _ in range(8):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            time.sleep(0.01)  # a definite order of idleness
        deadline = time.monotonic() + 5
        while server.stats["connections"] < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tap(server.port, card)["39"] == "00"
        assert closed_by_server(idle[0])  # the longest idle made way
        assert server.stats["evicted_idle"] == 1
        for s in idle:
            s.close()


def test_at_the_cap_with_every_connection_busy_a_newcomer_is_closed_at_once(db):
    with running_switch(db, max_connections=4, read_timeout=10) as server:
        busy = []
        for _ in range(4):  # each announces a 100-byte frame and sends 1 byte of it
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(struct.pack(">H", 100) + b"0")
            busy.append(s)
        deadline = time.monotonic() + 5
        while server.stats["connections"] < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        newcomer = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        started = time.monotonic()
        assert closed_by_server(newcomer)
        assert time.monotonic() - started < 5  # refused, not left to time out
        assert server.stats["refused_at_cap"] == 1
        for s in busy:
            s.close()
        newcomer.close()


SERVE_WITH_FEW_FDS = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from switch.server import SwitchServer

    async def main():
        # a cap above the descriptor limit, so accept() itself runs out
        server = SwitchServer(sys.argv[1], port=0, max_connections=1000)
        port = await server.start()
        print(port, flush=True)
        await asyncio.sleep(float(sys.argv[2]))
        await server.stop()

    asyncio.run(main())
    """
)


def test_running_out_of_file_descriptors_is_logged_once(db):
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_FEW_FDS, str(db), "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())
        clients = []
        for _ in range(80):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        time.sleep(2.5)  # asyncio retries accept() every second while out of descriptors
        for s in clients:
            s.close()
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    resource_lines = [line for line in stderr.splitlines() if "out of system resource" in line]
    assert len(resource_lines) == 1, stderr[-2000:]
    assert "Traceback" not in stderr
