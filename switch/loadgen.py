"""Load generator for the switch (``bench/switch.py``): realistic 0100s with valid PBOC ARQCs
over N loopback connections against ``emvtap switch serve`` running in its own process.

    python -m switch.loadgen [--connections 8] [--requests 20000] [--rates 500,1000,2000]
                             [--synchronous FULL|NORMAL] [--profile]

1. closed loop: each connection sends its next request when the previous answer arrived →
   the maximum authorizations/s and the latency at that load;
2. open loop at each fixed offered rate: requests are sent on schedule whether or not answers
   came back (no coordinated omission); latency = answer time - scheduled send time → p50/p99;
3. ``--profile``: where the server's time goes — the authorization path in-process under
   cProfile, and the cost of one durable commit (fsync) measured alone.

Requests are generated (and their ARQCs computed) before the timed part, one card per
connection so that each token's ATC only grows. Every answer must be DE 39 = 00.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from emvtap.endpoints import parse_host_port
from emvtap.iso8583 import FIELDS, decode_message, encode_message, frame

__all__ = ["main"]


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), for CPU per request of the server."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class RunResult:
    label: str
    sent: int
    seconds: float
    latencies_ms: list[float]
    declined: int
    server_cpu_s: float = float("nan")

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def quantile(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def line(self) -> str:
        return (
            f"{self.label:>18}: {self.rate:8.0f} auth/s  p50 {self.quantile(0.50):6.2f} ms  "
            f"p99 {self.quantile(0.99):6.2f} ms  max {max(self.latencies_ms):7.2f} ms  "
            f"server CPU {self.server_cpu_s / self.sent * 1e6:5.0f} µs/auth "
            f"({self.server_cpu_s / self.seconds * 100:3.0f}% of a core); "
            f"{self.sent} requests, {self.declined} not approved"
        )


def _prepare(db: Path, connections: int, per_connection: int) -> list[list[bytes]]:
    from switch.enroll import enroll_profile
    from switch.store import Store
    from switch.testing import SimCard, make_profile

    frames: list[list[bytes]] = []
    with Store(db) as store:
        for c in range(connections):
            profile = make_profile(1000 + c, device_id=f"bench-{c}")
            enroll_profile(store, profile, balance=10**12)
            card = SimCard.from_profile(profile, terminal_id=f"BNCH{c:04d}")
            frames.append([frame(encode_message(card.request(100))) for _ in range(per_connection)])
    return frames


def _start_server(db: Path, synchronous: str) -> tuple[subprocess.Popen[str], int]:
    code = "from switch.cli import switch_group; switch_group()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--db",
            str(db),
            "--port",
            "0",
            "--admin-port",
            "-1",
            "--synchronous",
            synchronous,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("switch: serving"):
        raise RuntimeError(f"switch did not start: {line!r}")
    return proc, parse_host_port(line.removeprefix("switch: serving ").split(",")[0]).port


def response_code_of(raw: bytes) -> str:
    """DE 39 of a response without decoding the rest (keeps the client's CPU off the
    measurement; the field table tells how long each preceding field is)."""
    bits = f"{int.from_bytes(raw[4:12], 'big'):064b}"
    pos = 20 if bits[0] == "1" else 12
    for number in (i + 1 for i, bit in enumerate(bits) if bit == "1" and i):
        fd = FIELDS[number]
        if number == 39:
            return raw[pos : pos + 2].decode("ascii")
        if fd.prefix:
            length = int(raw[pos : pos + fd.prefix])
            pos += fd.prefix + length
        else:
            pos += fd.max_len
    return decode_message(raw).get("39", "")


async def _read_answer(reader: asyncio.StreamReader) -> bool:
    (length,) = struct.unpack(">H", await reader.readexactly(2))
    return response_code_of(await reader.readexactly(length)) == "00"


async def _closed_loop(port: int, frames: list[list[bytes]]) -> RunResult:
    latencies: list[float] = []
    declined = 0

    async def connection(batch: list[bytes]) -> None:
        nonlocal declined
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for data in batch:
            t0 = time.perf_counter()
            writer.write(data)
            ok = await _read_answer(reader)
            latencies.append((time.perf_counter() - t0) * 1000)
            declined += not ok
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection(b) for b in frames))
    return RunResult("closed loop", len(latencies), time.perf_counter() - t0, latencies, declined)


async def _open_loop(port: int, frames: list[list[bytes]], rate: float) -> RunResult:
    """Each connection sends at rate/N per second on a fixed schedule."""
    latencies: list[float] = []
    declined = 0
    per_conn = rate / len(frames)

    async def connection(batch: list[bytes], offset: float) -> None:
        nonlocal declined
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.perf_counter() + offset
        schedule = [start + i / per_conn for i in range(len(batch))]

        async def send() -> None:
            for when, data in zip(schedule, batch, strict=True):
                delay = when - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)

        sender = asyncio.create_task(send())
        for when in schedule:
            ok = await _read_answer(reader)
            latencies.append((time.perf_counter() - when) * 1000)
            declined += not ok
        await sender
        writer.close()

    t0 = time.perf_counter()
    n = len(frames)
    await asyncio.gather(*(connection(b, i / (per_conn * n)) for i, b in enumerate(frames)))
    return RunResult(
        f"offered {rate:.0f}/s", len(latencies), time.perf_counter() - t0, latencies, declined
    )


#: where a function's own time is booked in the profile summary (first match wins)
_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("sqlite3", "SQLite statements (incl. fsync at COMMIT)"),
    ("iso8583", "ISO 8583 codec (pyiso8583 + field checks)"),
    ("/emvtap/tlv", "BER-TLV of DE 55"),
    ("/emvtap/des", "3DES / MAC (session key, ARQC, ARPC)"),
    ("ciphers", "3DES / MAC (session key, ARQC, ARPC)"),
    ("/emvtap/cryptogram", "3DES / MAC (session key, ARQC, ARPC)"),
    ("/emvtap/keys", "3DES / MAC (session key, ARQC, ARPC)"),
    ("json", "JSON of the stored request"),
    ("/switch/", "switch logic (flow, checks, store wrappers)"),
)


def _category(filename: str, name: str) -> str:
    key = f"{filename}:{name}"
    for needle, label in _CATEGORIES:
        if needle in key:
            return label
    return "other (stdlib, dataclasses, hashing)"


def _profile_host(requests: int, batch: int = 8) -> str:
    """Where the time goes: the authorization path in-process, ``batch`` requests per durable
    commit (the server's group commit at 8 busy connections), profiled and summed by kind."""
    from switch.authorize import Authorizer
    from switch.enroll import enroll_profile
    from switch.store import Store
    from switch.testing import SimCard, make_profile

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # a real disk, not tmpfs
        store = Store(Path(tmp) / "p.db")
        profile = make_profile(5000)
        enroll_profile(store, profile, balance=10**12)
        card = SimCard.from_profile(profile)
        raws = [encode_message(card.request(100)) for _ in range(requests)]
        host = Authorizer(store)
        t0 = time.perf_counter()
        for i in range(0, requests // 2, batch):
            with store.batch():
                for raw in raws[i : i + batch]:
                    host.handle_raw(raw)
        plain_us = (time.perf_counter() - t0) / (requests // 2) * 1e6
        prof = cProfile.Profile()
        prof.enable()
        for i in range(requests // 2, requests, batch):
            with store.batch():
                for raw in raws[i : i + batch]:
                    host.handle_raw(raw)
        prof.disable()
        t0 = time.perf_counter()
        for _ in range(200):
            with store.transaction():
                store.post(1, 0)
        commit_us = (time.perf_counter() - t0) / 200 * 1e6
        store.close()
    stats = pstats.Stats(prof)
    by_kind: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        kind = _category(filename, name)
        by_kind[kind] = by_kind.get(kind, 0.0) + tottime
    total = sum(by_kind.values())
    lines = [
        f"in-process, {batch} requests per commit: {plain_us:.0f} µs/request (no profiler); "
        f"one small durable commit alone: {commit_us:.0f} µs",
        "share of the authorization path (cProfile, own time):",
    ]
    for kind, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {seconds / total * 100:5.1f}%  {kind}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20000, help="closed-loop total")
    parser.add_argument("--rates", default="500,1000,2000")
    parser.add_argument("--seconds", type=float, default=5.0, help="per open-loop rate")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    rates = [float(r) for r in args.rates.split(",") if r]
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        per_conn = args.requests // args.connections
        open_counts = [int(r * args.seconds) // args.connections for r in rates]
        total_per_conn = per_conn + sum(open_counts)
        print(f"preparing {total_per_conn * args.connections} requests ...", flush=True)
        frames = _prepare(db, args.connections, total_per_conn)
        proc, port = _start_server(db, args.synchronous)
        try:
            print(
                f"switch pid {proc.pid}, {args.connections} connections, "
                f"synchronous={args.synchronous}, {os.cpu_count()} CPUs",
                flush=True,
            )
            pos = 0
            chunk = [f[pos : pos + per_conn] for f in frames]
            cpu0 = _cpu_seconds(proc.pid)
            results.append(asyncio.run(_closed_loop(port, chunk)))
            results[-1].server_cpu_s = _cpu_seconds(proc.pid) - cpu0
            print(results[-1].line(), flush=True)
            pos += per_conn
            for rate, count in zip(rates, open_counts, strict=True):
                chunk = [f[pos : pos + count] for f in frames]
                pos += count
                cpu0 = _cpu_seconds(proc.pid)
                results.append(asyncio.run(_open_loop(port, chunk, rate)))
                results[-1].server_cpu_s = _cpu_seconds(proc.pid) - cpu0
                print(results[-1].line(), flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    if args.profile:
        print(_profile_host(2000))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "run": r.label,
                        "auth_per_s": round(r.rate),
                        "p50_ms": round(r.quantile(0.5), 3),
                        "p99_ms": round(r.quantile(0.99), 3),
                        "requests": r.sent,
                        "not_approved": r.declined,
                        "server_cpu_us_per_auth": round(r.server_cpu_s / r.sent * 1e6),
                    }
                    for r in results
                ],
                indent=1,
            )
        )
    return 0 if all(r.declined == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
