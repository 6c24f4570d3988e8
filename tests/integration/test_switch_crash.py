"""Crash test (docs/architecture.md): kill -9 the switch during a stream of authorizations, restart
it, and prove that every approval a client received is in the store, none is duplicated, and
the balance moved exactly once per recorded approval."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from click.testing import CliRunner

from emvtap.endpoints import parse_host_port
from emvtap.iso8583 import decode_message, encode_message, frame, read_frame
from switch.cli import switch_group
from switch.store import Store
from switch.testing import SimCard, make_profile

SERVE = "from switch.cli import switch_group; switch_group()"
CLIENTS = 4


def start_switch(db) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            "serve",
            "--db",
            str(db),
            "--port",
            "0",
            "--admin-port",
            "-1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("switch: serving"), line
    return proc, parse_host_port(line.removeprefix("switch: serving ").split(",")[0]).port


def stream(port: int, card: SimCard, received: list, in_flight: list, stop: threading.Event):
    """Send 0100s on one connection until the switch dies; keep what came back."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            while not stop.is_set():
                request = card.request(10)
                in_flight.append(request)
                sock.sendall(frame(encode_message(request)))
                response = read_frame(sock)
                in_flight.pop()
                received.append((request, response))
    except (OSError, ConnectionError):
        pass


def test_every_approval_the_client_received_survives_kill_9(tmp_path):
    db = tmp_path / "switch.db"
    profiles = [make_profile(100 + i, device_id=f"dev-{i}") for i in range(CLIENTS)]
    for i, p in enumerate(profiles):
        path = tmp_path / f"card{i}.json"
        path.write_text(json.dumps(p))
        result = CliRunner().invoke(
            switch_group, ["enroll", "--db", str(db), "--balance", "100000", str(path)]
        )
        assert result.exit_code == 0, result.output
    cards = [SimCard.from_profile(p, terminal_id=f"TERM{i:04d}") for i, p in enumerate(profiles)]

    proc, port = start_switch(db)
    received: list = []
    in_flight_per_client: list[list] = [[] for _ in cards]
    stop = threading.Event()
    threads = [
        threading.Thread(target=stream, args=(port, c, received, pending, stop))
        for c, pending in zip(cards, in_flight_per_client, strict=True)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(received) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(received) >= 200
    in_flight = [r for pending in in_flight_per_client for r in pending]

    approved = [(req, decode_message(resp)) for req, resp in received]
    approved = [(req, resp) for req, resp in approved if resp["39"] == "00"]
    assert len(approved) >= 200

    with Store(db) as store:
        for req, resp in approved:
            row = store.find_authorization("0100", req["41"], req["11"], req["37"])
            assert row is not None, f"approval STAN {req['11']} lost"
            assert (row["response_code"], row["auth_code"]) == ("00", resp["38"])
        count, distinct = store.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT terminal_id || stan) FROM authorizations"
        ).fetchone()
        assert count == distinct  # no request recorded twice
        posted = store.db.execute(
            "SELECT account_id, SUM(posted) FROM authorizations GROUP BY account_id"
        ).fetchall()
        for account_id, total in posted:
            assert store.account(account_id).balance == 10_000_000 - total

    # after the restart, what was in flight is retransmitted: answered once, never twice
    proc, port = start_switch(db)
    try:
        for request in in_flight:
            for _ in range(2):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(frame(encode_message(request)))
                    decode_message(read_frame(sock))
        req, resp = approved[-1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(frame(encode_message(req)))
            assert decode_message(read_frame(sock)) == resp  # from the record
    finally:
        proc.terminate()
        proc.wait(10)
    with Store(db) as store:
        for request in in_flight:
            rows = store.db.execute(
                "SELECT COUNT(*) FROM authorizations WHERE terminal_id = ? AND stan = ?",
                (request["41"], request["11"]),
            ).fetchone()[0]
            assert rows == 1
