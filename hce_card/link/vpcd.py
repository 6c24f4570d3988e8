"""The card as a client of vpcd, pcscd's virtual reader (vsmartcard): the card connects to the
reader's TCP port, and from then on pcscd, the PC/SC API and any PC/SC application (ours,
``pcsc_scan``, opensc, a real POS stack) see a card in "Virtual PCD 00 0N".

Wire protocol (vsmartcard ``vpcd``): every message is a 2-byte big-endian length and a
payload. A 1-byte payload is a control message from the reader: ``00`` power off, ``01`` power
on, ``02`` reset, ``04`` "send your ATR" (the only one answered, with the ATR). A longer payload
is a command APDU, answered with the response APDU.

Latency (docs/architecture.md, Virtual hardware): Debian 12's vpcd writes the length and
the payload with two ``send`` calls and Nagle on, so the second write waits for our delayed ACK
of the first (~40 ms) unless the card sets ``TCP_QUICKACK`` after **every** read. This link
does; ``quickack=False`` exists only to measure the difference.
"""

from __future__ import annotations

import logging
import selectors
import socket
import struct
import threading

from emvtap.endpoints import VPCD_DEFAULT_PORT, CardLike

from .base import LinkError, describe_command, process_guarded

__all__ = ["VpcdLink"]

log = logging.getLogger("emvtap.link.vpcd")

VPCD_CTRL_OFF = 0x00
VPCD_CTRL_ON = 0x01
VPCD_CTRL_RESET = 0x02
VPCD_CTRL_ATR = 0x04
#: How often a wait looks at a caller's ``stop_event`` that was set without :meth:`wake`.
STOP_POLL = 0.25


class _Stopped(Exception):
    """The link was asked to stop while waiting for bytes."""


class _Dropped(Exception):
    """The current connection was dropped on purpose (:meth:`VpcdLink.remove_card`)."""


class VpcdLink:
    """Serve *card* to vpcd at *host*:*port*.

    :meth:`serve` connects (retrying with exponential backoff while vpcd is not up yet), then
    answers control messages and APDUs until :meth:`stop`, ``stopped.set()`` + :meth:`wake`,
    or Ctrl-C. When vpcd closes the connection (pcscd restarted) it connects again.

    :param quickack: set ``TCP_QUICKACK`` after every read (leave it on; see the module doc).
    :param backoff: first and longest wait between connection attempts, in seconds.
    :param stop_event: an event of the caller's that stops the link when set (looked at
        within :data:`STOP_POLL` seconds; :meth:`stop` is immediate).
    """

    def __init__(
        self,
        card: CardLike,
        host: str = "127.0.0.1",
        port: int = VPCD_DEFAULT_PORT,
        *,
        quickack: bool = True,
        backoff: tuple[float, float] = (0.02, 1.0),
        stop_event: threading.Event | None = None,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.quickack = quickack
        self.backoff = backoff
        self.name = f"vpcd:{host}:{port}"
        #: Set when the link has been asked to stop (set it and call :meth:`wake`, or :meth:`stop`).
        self.stopped = stop_event if stop_event is not None else threading.Event()
        #: Set while a connection to vpcd is up.
        self.connected = threading.Event()
        #: Set on the first "power on" of each connection: pcscd has seen the card.
        self.powered = threading.Event()
        self.commands = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._drop = threading.Event()
        self._present = threading.Event()
        self._present.set()
        self._removed = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- control from other threads -----------------------------------------------------

    def stop(self) -> None:
        """Stop serving (from any thread, or a signal handler): :meth:`serve` closes the
        socket and returns. Does not wait; :meth:`close` does."""
        self.stopped.set()
        self._present.set()  # wakes a wait for insert_card()
        self.wake()

    def close(self, timeout: float = 5.0) -> None:
        """Stop and wait until the serving thread started by :meth:`start` has finished."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise LinkError(f"{self.name}: serving thread did not stop within {timeout} s")

    def wake(self) -> None:
        """Interrupt a wait so that :attr:`stopped` is looked at now."""
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def remove_card(self, timeout: float = 5.0) -> None:
        """Take the card out of the field: close the connection to vpcd and stay away until
        :meth:`insert_card`. Returns once the socket is closed. Called from inside
        ``card.process`` (the serving thread), it models a card pulled mid-command: the
        command's answer is never sent."""
        self._present.clear()
        self._removed.clear()
        if self._sock is None:
            return
        self._drop.set()
        self.wake()
        if threading.current_thread() is self._thread:
            return  # called by the card inside process(): the answer is not sent
        if not self._removed.wait(timeout):
            raise LinkError(f"{self.name}: connection not closed within {timeout} s")

    def insert_card(self) -> None:
        """Present the card again: connect to vpcd (again)."""
        self._present.set()

    def start(self) -> threading.Thread:
        """Run :meth:`serve` in a daemon thread; returns it (``join`` it after :meth:`stop`)."""
        self._thread = threading.Thread(target=self.serve, name=self.name, daemon=True)
        self._thread.start()
        return self._thread

    def __enter__(self) -> VpcdLink:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- serving ------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve until stopped. Returns normally on :meth:`stop` and on Ctrl-C."""
        try:
            while not self.stopped.is_set():
                sock = self._connect()
                if sock is None:
                    break
                try:
                    self._serve_connection(sock)
                except (_Stopped, _Dropped):
                    pass
                except (ConnectionError, LinkError) as exc:
                    log.info("%s: connection lost (%s); reconnecting", self.name, exc)
                finally:
                    self._close(sock)
        except KeyboardInterrupt:
            log.info("%s: stopped by Ctrl-C", self.name)
        finally:
            self.stopped.set()
            self._wake_r.close()
            self._wake_w.close()

    def _connect(self) -> socket.socket | None:
        """Connect to vpcd, retrying with exponential backoff until it listens or we stop."""
        delay, longest = self.backoff
        while not self.stopped.is_set():
            if not self._present.is_set():
                self._present.wait()
                continue
            self._drop.clear()
            try:
                sock = socket.create_connection((self.host, self.port), timeout=5.0)
            except OSError as exc:
                log.debug("%s: %s; retrying in %.2f s", self.name, exc, delay)
                if self.stopped.wait(delay):
                    return None
                delay = min(delay * 2, longest)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._quickack(sock)
            self._sock = sock
            self.connected.set()
            log.info("%s: connected (the card is in the field)", self.name)
            return sock
        return None

    def _close(self, sock: socket.socket) -> None:
        self.connected.clear()
        self.powered.clear()
        self._sock = None
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        self._removed.set()

    def _quickack(self, sock: socket.socket) -> None:
        if self.quickack:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _serve_connection(self, sock: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                (length,) = struct.unpack(">H", self._recv_exact(sock, selector, 2))
                message = self._recv_exact(sock, selector, length)
                answer = self._handle(message)
                if self._drop.is_set():  # removed while the card was computing: no answer
                    log.info("%s: card removed from the field mid-command", self.name)
                    raise _Dropped
                if answer is not None:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)

    def _recv_exact(
        self, sock: socket.socket, selector: selectors.BaseSelector, count: int
    ) -> bytes:
        buffer = bytearray(count)
        view = memoryview(buffer)
        got = 0
        while got < count:
            events = selector.select(STOP_POLL)
            if not events and self.stopped.is_set():
                raise _Stopped
            for key, _ in events:
                if key.fileobj is self._wake_r:
                    try:
                        self._wake_r.recv(64)
                    except BlockingIOError:
                        pass
                    if self.stopped.is_set():
                        raise _Stopped
                    if self._drop.is_set():
                        log.info("%s: card removed from the field", self.name)
                        raise _Dropped
                    continue
                n = sock.recv_into(view[got:])
                self._quickack(sock)
                if n == 0:
                    raise ConnectionResetError("vpcd closed the connection")
                got += n
        return bytes(buffer)

    def _handle(self, message: bytes) -> bytes | None:
        """One message from vpcd; the answer to send, if any."""
        if len(message) == 1:
            control = message[0]
            if control in (VPCD_CTRL_ON, VPCD_CTRL_RESET):
                log.debug("%s: %s", self.name, "power on" if control == VPCD_CTRL_ON else "reset")
                self.card.reset()
                self.powered.set()
            elif control == VPCD_CTRL_OFF:
                log.debug("%s: power off", self.name)
            elif control == VPCD_CTRL_ATR:
                return bytes(self.card.atr)
            else:
                log.warning("%s: unknown control message %02X ignored", self.name, control)
            return None
        if not message:
            log.warning("%s: empty message ignored", self.name)
            return None
        self.commands += 1
        log.debug("%s: command %s", self.name, describe_command(message))
        return process_guarded(self.card, message, self.name)
