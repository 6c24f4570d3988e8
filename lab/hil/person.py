"""The person at the readers, for the physical actions a hardware run needs: presenting a real
card or phone, taking it away (also in the middle of a transaction), laying the emulator reader
on the terminal reader.

:class:`ConsolePerson` talks on the controlling terminal (``/dev/tty``, so prompts get through
even when pytest captures stdin and stdout); :class:`NoPerson` is the virtual rigs' stand-in,
which refuses anything only a person can do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import IO, Protocol

from lab.hil.results import NotRunnable

__all__ = ["ConsolePerson", "NoPerson", "Person"]


class Person(Protocol):
    def tell(self, message: str) -> None:
        """Say what to do; the reader itself notices when it is done (a card arriving)."""
        ...

    def confirm(self, message: str) -> None:
        """Say what to do and wait until the person says it is done."""
        ...


class ConsolePerson:
    """A person at the keyboard: prompts on /dev/tty (or the given streams), Enter confirms."""

    def __init__(self, out: IO[str] | None = None, inp: IO[str] | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self._out, self._in = out, inp
        self._echo = echo

    def _streams(self) -> tuple[IO[str], IO[str]]:
        if self._out is None or self._in is None:
            try:
                tty = open("/dev/tty", "r+")  # noqa: SIM115 - kept for the whole run
            except OSError as exc:
                raise NotRunnable(f"a person must act at the reader, but there is no "
                                  f"terminal to ask on ({exc})") from exc
            self._out = self._out or tty
            self._in = self._in or tty
        return self._out, self._in

    def tell(self, message: str) -> None:
        out, _ = self._streams()
        out.write(f"\n>>> {message}\n")
        out.flush()

    def confirm(self, message: str) -> None:
        out, inp = self._streams()
        out.write(f"\n>>> {message}\n    Press Enter when done. ")
        out.flush()
        if not inp.readline():
            raise NotRunnable(f"no answer from the person ({message})")

    def close(self) -> None:
        for stream in {self._out, self._in} - {None}:
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]


class NoPerson:
    """Nobody at the readers (virtual runs, CI): asking for an action is not runnable."""

    def tell(self, message: str) -> None:
        raise NotRunnable(f"needs a person at real readers: {message}")

    def confirm(self, message: str) -> None:
        raise NotRunnable(f"needs a person at real readers: {message}")
