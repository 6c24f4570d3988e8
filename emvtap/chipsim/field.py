"""The simulated RF field between two simulated chips, across processes: the chip in target
mode (the card emulator) binds a TCP port on loopback; the chip in initiator mode (the
reader) connects to it when it polls. One TCP connection is one activation: it opens when the
reader's poll finds the target (ISO/IEC 14443-3 anticollision and selection, done by the
chips and summed up here in one exchange) and closes when either side leaves the field.

Messages are ``KIND (1 byte) | LENGTH (4 bytes, big endian) | PAYLOAD``:

====  ======================  =================================================================
kind  sent by                 payload
====  ======================  =================================================================
P     initiator (poll)        empty
T     target                  SENS_RES (2, as on the air: LSB first) SEL_RES (1) NFCID1 (4..10)
N     target                  empty: no target listening (the poll finds nothing)
F     either                  one ISO/IEC 14443 frame, without CRC_A
O     initiator               empty: RF field off (the target's session is released)
====  ======================  =================================================================

Frames carry no CRC and no parity: both chips compute and check those in hardware.
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "RELEASED",
    "FieldInitiator",
    "FieldTarget",
    "TargetInfo",
]

log = logging.getLogger("emvtap.chipsim.field")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 54533
#: What a target receives when the initiator switched its field off or went away.
RELEASED = b"\x00released"
_HEADER = struct.Struct(">cI")
_MAX_PAYLOAD = 0x10000


@dataclass(frozen=True)
class TargetInfo:
    """What the reader chip learns from a Type A target's activation."""

    sens_res: bytes
    sel_res: bytes
    nfcid1: bytes

    def encode(self) -> bytes:
        return self.sens_res + self.sel_res + self.nfcid1

    @classmethod
    def decode(cls, payload: bytes) -> TargetInfo:
        return cls(payload[0:2], payload[2:3], payload[3:])


def _send(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the other chip left the field")
        data += chunk
    return data


def _recv(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, length = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if length > _MAX_PAYLOAD:
        raise ConnectionError(f"field message of {length} bytes")
    return kind, _recv_exact(sock, length)


class FieldInitiator:
    """The reader chip's end of the field: polls, exchanges frames, switches the field off."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._frames: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._sock is not None

    def poll(self, timeout: float = 0.2) -> TargetInfo | None:
        """Field on, one poll: the target that answers, or None (nobody, or nobody listening)."""
        self.field_off()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError:
            return None
        try:
            sock.settimeout(timeout)
            _send(sock, b"P")
            kind, payload = _recv(sock)
        except (OSError, ConnectionError, struct.error):
            sock.close()
            return None
        if kind != b"T":
            sock.close()
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sock = sock
            self._frames = queue.Queue()
        threading.Thread(target=self._receive, args=(sock, self._frames), daemon=True,
                         name="chipsim-initiator-rx").start()
        return TargetInfo.decode(payload)

    def _receive(self, sock: socket.socket, frames: queue.Queue[bytes]) -> None:
        try:
            while True:
                kind, payload = _recv(sock)
                if kind == b"F":
                    frames.put(payload)
        except (OSError, ConnectionError, struct.error):
            frames.put(RELEASED)

    def transceive(self, frame: bytes, timeout: float) -> bytes | None:
        """Send *frame*; the target's answer, or None if none came within *timeout* (the
        target is silent, or gone). An answer that comes later is lost, as on the air."""
        sock = self._sock
        if sock is None:
            return None
        frames = self._frames
        while not frames.empty():  # answers that came too late for the previous frame
            frames.get_nowait()
        try:
            _send(sock, b"F", bytes(frame))
        except OSError:
            self._drop()
            return None
        try:
            answer = frames.get(timeout=timeout)
        except queue.Empty:
            return None
        if answer == RELEASED:
            self._drop()
            return None
        return answer

    def _drop(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def field_off(self) -> None:
        """Switch the RF field off: the target's session is released."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                _send(sock, b"O")
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.field_off()


class _Session:
    """One activation as the target sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames: queue.Queue[bytes] = queue.Queue()
        self.released = threading.Event()

    def release(self) -> None:
        if not self.released.is_set():
            self.released.set()
            self.frames.put(RELEASED)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FieldTarget:
    """The card-emulating chip's end of the field: binds HOST:PORT at once (so that a port
    someone else holds is an error when the device opens) and answers polls while armed."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host, self.port = host, port
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((host, port))
        except OSError:
            self._server.close()
            raise
        self._server.listen(4)
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._armed: TargetInfo | None = None
        self._session: _Session | None = None
        self._activations: queue.Queue[_Session] = queue.Queue()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="chipsim-target-accept").start()

    # -- the chip's side -------------------------------------------------------------------

    def arm(self, info: TargetInfo) -> None:
        """Listen as *info* (TgInitAsTarget): the next poll activates this target. A session
        nobody took up (no activation waiting) is over: its initiator is released."""
        with self._lock:
            self._armed = info
            stale = self._session if self._activations.empty() else None
            if stale is not None:
                self._session = None
        if stale is not None:
            stale.release()

    def disarm(self) -> None:
        """Stop listening and leave the field: an active session ends (RF off, a new command
        to the chip, or the card taken away)."""
        with self._lock:
            self._armed = None
            session, self._session = self._session, None
            pending = []
            while not self._activations.empty():
                pending.append(self._activations.get_nowait())
        for old in [session, *pending]:
            if old is not None:
                old.release()

    def wait_activation(self, timeout: float, cancelled: threading.Event) -> _Session | None:
        """The next activation (its session), or None after *timeout* or once *cancelled*."""
        deadline = time.monotonic() + timeout
        while not cancelled.is_set() and not self._closed.is_set():
            try:
                wait = min(0.05, max(0.0, deadline - time.monotonic()))
                return self._activations.get(timeout=wait)
            except queue.Empty:
                if time.monotonic() >= deadline:
                    return None
        return None

    @property
    def session(self) -> _Session | None:
        return self._session

    def send(self, frame: bytes) -> bool:
        """Send *frame* to the initiator; False if there is no initiator any more."""
        session = self._session
        if session is None or session.released.is_set():
            return False
        try:
            _send(session.sock, b"F", bytes(frame))
        except OSError:
            return False
        return True

    def receive(self, timeout: float, cancelled: threading.Event) -> bytes | None:
        """The initiator's next frame, :data:`RELEASED`, or None (timeout or cancelled)."""
        session = self._session
        if session is None:
            return RELEASED
        deadline = time.monotonic() + timeout
        while not cancelled.is_set():
            try:
                return session.frames.get(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    return None
        return None

    def close(self) -> None:
        self._closed.set()
        self.disarm()
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()

    # -- the field's side ------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _addr = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._activate, args=(sock,), daemon=True,
                             name="chipsim-target-activate").start()

    def _activate(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(1.0)
            kind, _ = _recv(sock)
            if kind != b"P":
                sock.close()
                return
            with self._lock:
                info = self._armed if self._session is None else None
                if info is not None:
                    session = _Session(sock)
                    self._session = session
                    self._armed = None  # one activation per TgInitAsTarget
            if info is None:
                _send(sock, b"N")
                sock.close()
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _send(sock, b"T", info.encode())
        except (OSError, ConnectionError, struct.error) as exc:
            log.debug("poll dropped: %s", exc)
            sock.close()
            return
        self._activations.put(session)
        try:
            while True:
                kind, payload = _recv(sock)
                if kind == b"F":
                    session.frames.put(payload)
                elif kind == b"O":
                    break
        except (OSError, ConnectionError, struct.error):
            pass
        with self._lock:
            if self._session is session:
                self._session = None
        session.release()
