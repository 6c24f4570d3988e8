"""Helpers for tests on the virtual hardware: pcscd with vpcd, and nfcpy's udp driver.

Facts these helpers follow (docs/architecture.md, Virtual hardware; re-measured here):
- pcscd polls its readers every 400 ms: a card connecting to vpcd is reported 30-400 ms later,
  a card leaving likewise. Never sleep for it: wait for the reader state with
  ``SCardGetStatusChange`` (:func:`wait_for_reader`).
- One vpcd slot serves one card at a time, and one pcscd serves every developer and CI job on
  the machine: a test takes the slot with an exclusive ``flock`` (:func:`vpcd_slot_lock`).
- nfcpy's ``udp`` driver defaults to port 54321: every test gets its own port
  (:func:`free_udp_port`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from emvtap.endpoints import CardLike
from hce_card.link.vpcd import VpcdLink
from terminal.transport.base import TransportError
from terminal.transport.pcsc import wait_for_card_state

__all__ = [
    "PCSCD_START",
    "PCSCD_STOP",
    "VPCD_SLOTS",
    "PcscdError",
    "VpcdSlot",
    "free_udp_port",
    "serve_card_on_vpcd",
    "start_pcscd",
    "vpcd_lock_path",
    "vpcd_slot_lock",
    "wait_for_reader",
]

REPO = Path(__file__).resolve().parents[2]
PCSCD_START = REPO / "scripts" / "pcscd-start.sh"
PCSCD_STOP = REPO / "scripts" / "pcscd-stop.sh"


class VpcdSlot(NamedTuple):
    """A vpcd reader slot: the PC/SC reader name and the TCP port its card connects to."""

    reader: str
    port: int

    @property
    def link_spec(self) -> str:
        return f"vpcd:127.0.0.1:{self.port}"

    @property
    def reader_spec(self) -> str:
        return f"pcsc:{self.reader}"


#: /etc/reader.conf.d/vpcd of Debian's vsmartcard-vpcd: two slots, in order of preference.
VPCD_SLOTS = (VpcdSlot("Virtual PCD 00 00", 35963), VpcdSlot("Virtual PCD 00 01", 35964))


class PcscdError(RuntimeError):
    """pcscd could not be started or does not list the vpcd readers."""


def start_pcscd(timeout: float = 30.0) -> None:
    """Run scripts/pcscd-start.sh (idempotent); raise :class:`PcscdError` with its output."""
    try:
        done = subprocess.run(
            ["sh", str(PCSCD_START)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PcscdError(f"{PCSCD_START} did not finish within {timeout} s") from exc
    if done.returncode != 0:
        raise PcscdError(
            f"{PCSCD_START} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}"
        )


def vpcd_lock_path(port: int) -> Path:
    return Path(f"/tmp/emvtap-vpcd-{port}.lock")


def _open_lock(port: int) -> int:
    fd = os.open(vpcd_lock_path(port), os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(PermissionError):
        os.fchmod(fd, 0o666)  # another user's later run must be able to lock it too
    return fd


@contextlib.contextmanager
def vpcd_slot_lock(
    slots: tuple[VpcdSlot, ...] = VPCD_SLOTS, timeout: float = 600.0
) -> Iterator[VpcdSlot]:
    """Hold one vpcd slot exclusively (``flock`` on /tmp/emvtap-vpcd-PORT.lock) while the block
    runs: the first free slot, or - all busy - the first to be freed within *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        for slot in slots:
            fd = _open_lock(slot.port)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                continue
            try:
                yield slot
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if time.monotonic() > deadline:
            locks = ", ".join(str(vpcd_lock_path(s.port)) for s in slots)
            raise TimeoutError(f"every vpcd slot stayed locked for {timeout} s ({locks})")
        # Other processes hold the slots; flock offers no timed wait on several files.
        time.sleep(0.05)


def wait_for_reader(reader: str, *, present: bool, timeout: float = 3.0) -> float:
    """Wait until pcscd reports a card in *reader* (``present=True``) or none; return the
    seconds waited (the terminal's own :func:`~terminal.transport.pcsc.wait_for_card_state`).
    Raises :class:`TimeoutError`, or :class:`PcscdError` when pcscd fails."""
    try:
        return wait_for_card_state(reader, present=present, timeout=timeout)
    except TransportError as exc:
        raise PcscdError(str(exc)) from exc


@contextlib.contextmanager
def serve_card_on_vpcd(
    card: CardLike, slot: VpcdSlot, *, timeout: float = 5.0, **link_options: object
) -> Iterator[VpcdLink]:
    """Serve *card* on *slot* from a thread; yield the link once pcscd reports the card.
    On exit the card leaves and the block waits until pcscd has seen it go, so the slot is
    clean for the next test."""
    link = VpcdLink(card, "127.0.0.1", slot.port, **link_options)  # type: ignore[arg-type]
    link.start()
    try:
        if not link.connected.wait(timeout):
            raise TimeoutError(f"the card did not connect to vpcd on port {slot.port}")
        wait_for_reader(slot.reader, present=True, timeout=timeout)
        yield link
    finally:
        link.close()
        wait_for_reader(slot.reader, present=False, timeout=timeout)


def free_udp_port() -> int:
    """A UDP port nothing is bound to, for nfcpy's udp driver (the card binds it).

    Taken below the kernel's ephemeral range, so that no reader socket (auto-bound to an
    ephemeral port by its first send) of a concurrent test can be handed the same number
    between this probe and the card's bind; and without an /etc/services name, which nfcpy
    1.0.4's udp driver would turn the number into (and then fail on)."""
    low, _high = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        if not socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit():
            continue  # a named port: nfcpy cannot use it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port below the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999
