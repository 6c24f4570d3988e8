"""The ISO 8583 server: asyncio TCP on 127.0.0.1 (by default), 2-byte big-endian length framing
(:func:`emvtap.iso8583.frame`), one SQLite store (docs/architecture.md,
"Failure handling").

Concurrency and durability: one thread. Connections are served by the event loop and every
request is queued for the batcher, which takes whatever requests are waiting (up to
``max_batch``), runs each in its own savepoint, commits the batch once (``synchronous=FULL``:
fsync), and only then are the responses written to the sockets — group commit, so an approval is
durable before its response leaves and the fsync cost is shared by concurrent requests. While a
batch runs (and fsyncs) the loop does not read; the requests that arrive meanwhile wait in the
kernel's socket buffers and make up the next batch. The store is used from the loop thread only:
a separate host thread was measured to lose more to GIL hand-offs around every SQLite call than
it gained (see ``python -m switch.loadgen``).

Bad input: a frame longer than :data:`emvtap.iso8583.MAX_MESSAGE_LEN` is refused from its
length alone (connection closed, nothing more read); a malformed message gets DE 39 = 30 when its
MTI is readable, otherwise the connection is closed; an idle connection is closed after
``idle_timeout`` seconds; none of it stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emvtap.iso8583 import MAX_MESSAGE_LEN, frame
from switch.authorize import Authorizer, HostConfig
from switch.store import Store

__all__ = ["SwitchServer", "run"]

log = logging.getLogger("switch.server")

_Job = tuple[bytes, "asyncio.Future[bytes | None]"]


class SwitchServer:
    def __init__(
        self,
        db_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8583,
        synchronous: str = "FULL",
        idle_timeout: float = 30.0,
        read_timeout: float = 5.0,
        max_batch: int = 256,
        config: HostConfig | None = None,
    ) -> None:
        self.db_path = str(db_path)
        self.host = host
        self.port = port
        self.synchronous = synchronous
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.max_batch = max_batch
        self.config = config
        self._store: Store | None = None
        self._authorizer: Authorizer | None = None
        self._queue: asyncio.Queue[_Job] | None = None
        self._server: asyncio.base_events.Server | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.stats: dict[str, float] = {
            "requests": 0,
            "batches": 0,
            "connections": 0,
            "closed_bad_input": 0,
            "host_seconds": 0.0,  # time spent in batches (authorization + commit)
        }

    # --- lifecycle -----------------------------------------------------------------------------

    def _open_store(self) -> None:
        self._store = Store(self.db_path, synchronous=self.synchronous)
        self._authorizer = Authorizer(self._store, self.config)

    async def start(self) -> int:
        """Open the store, bind, start serving; returns the bound port (``port=0``: ephemeral)."""
        self._open_store()
        self._queue = asyncio.Queue()
        self._batcher = asyncio.create_task(self._run_batches(), name="switch-batcher")
        self._server = await asyncio.start_server(self._serve_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("switch listening on %s:%d (db %s)", self.host, self.port, self.db_path)
        return self.port

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        async with self._server:
            await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
        if self._store is not None:
            self._store.close()
            self._store = None

    # --- the host thread -----------------------------------------------------------------------

    def _process_batch(self, messages: list[bytes]) -> list[bytes | None]:
        assert self._store is not None and self._authorizer is not None
        started = time.perf_counter()
        with self._store.batch():
            results = [self._authorizer.handle_raw(m) for m in messages]
        self.stats["host_seconds"] += time.perf_counter() - started
        return results

    async def _run_batches(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)  # let every connection with a frame ready enqueue it
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = self._process_batch([m for m, _ in batch])
            except Exception as exc:  # the batch did not commit: no response may go out
                log.exception("batch of %d failed to commit", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.stats["batches"] += 1
            self.stats["requests"] += len(batch)
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    # --- connections ---------------------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        peer = writer.get_extra_info("peername")
        self.stats["connections"] += 1
        try:
            await self._client_loop(reader, writer, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connection %s failed", peer)
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _client_loop(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                head = await asyncio.wait_for(reader.readexactly(2), self.idle_timeout)
            except TimeoutError:
                log.info("connection %s idle for %.0fs; closing", peer, self.idle_timeout)
                return
            except asyncio.IncompleteReadError:
                return  # peer closed between messages
            (length,) = struct.unpack(">H", head)
            if length > MAX_MESSAGE_LEN:
                self.stats["closed_bad_input"] += 1
                log.warning(
                    "connection %s: frame of %d bytes refused (max %d); closing",
                    peer,
                    length,
                    MAX_MESSAGE_LEN,
                )
                return
            try:
                body = await asyncio.wait_for(reader.readexactly(length), self.read_timeout)
            except (TimeoutError, asyncio.IncompleteReadError):
                self.stats["closed_bad_input"] += 1
                log.warning("connection %s: frame of %d bytes not completed; closing", peer, length)
                return
            fut: asyncio.Future[bytes | None] = loop.create_future()
            await self._queue.put((body, fut))
            response = await fut
            if response is None:
                self.stats["closed_bad_input"] += 1
                log.warning(
                    "connection %s: unreadable message, no response possible; closing", peer
                )
                return
            writer.write(frame(response))
            await writer.drain()


async def run(
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8583,
    on_started: Callable[[int], None] | None = None,
    **kw: Any,
) -> None:
    """Serve until cancelled (the CLI's ``switch serve``); ``on_started(port)`` once bound."""
    server = SwitchServer(db_path, host=host, port=port, **kw)
    bound = await server.start()
    if on_started is not None:
        on_started(bound)
    try:
        await server.serve_forever()
    finally:
        await server.stop()
