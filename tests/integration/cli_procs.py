"""Running emvtap commands as real processes in the integration tests: one-shot commands, and
servers (switch, card, wallet server, merchant server) started and stopped around a test."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["EMVTAP", "emvtap", "free_port", "serving", "stop", "wait_port"]

EMVTAP = [sys.executable, "-m", "lab.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emvtap(*args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
    """One ``emvtap`` command; its output is in the assertion message when it fails."""
    done = subprocess.run([*EMVTAP, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"emvtap {' '.join(map(str, args))} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"process exited early ({proc.returncode}): {out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port} after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def serving(*args: str, port: int | None = None, log: Path | None = None
            ) -> Iterator[subprocess.Popen]:
    """``emvtap ARGS`` running in the background (ready once ``port`` accepts connections);
    stopped with SIGTERM on exit."""
    err = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*EMVTAP, *map(str, args)], stdout=subprocess.DEVNULL, stderr=err,
                            text=True)
    try:
        if port is not None:
            wait_port(port, proc)
        yield proc
    finally:
        stop(proc)
        if log:
            err.close()  # type: ignore[union-attr]
