"""The other actors as processes: ``emvtap card run …`` and ``emvtap switch serve …`` started
and stopped by the runner, and one-shot ``emvtap …`` commands. The runner never imports the
card or the switch (docs/architecture.md: the actors meet on the wire); it runs their command lines.

Synchronisation is on what the process says, never on sleeps: a long-running child is
*ready* when a line of its output matches its banner (``… Ctrl-C to stop``, ``switch:
serving …``) and *gone* when its output ends and it has exited.

A command line this build does not have - click's "No such command", "No such option", or a
module that is not there - is :class:`~lab.hil.results.Unsupported`, naming what is
missing; any other failure is a :class:`~lab.hil.results.RigError` with the output's tail.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from emvtap.masking import mask_text
from lab.hil.results import RigError, Unsupported

__all__ = ["EMVTAP", "Child", "classify_failure", "command_line", "run_emvtap"]

#: The emvtap command of this interpreter (the same installation as the runner).
EMVTAP: tuple[str, ...] = (sys.executable, "-m", "lab.cli")


#: options whose value a report or a log never shows
SECRET_OPTIONS = frozenset({"--pin", "--token", "--zpk"})


def command_line(args: tuple[str, ...] | list[str]) -> str:
    """``emvtap ARGS`` as reports and logs show it: PANs masked, the values of
    :data:`SECRET_OPTIONS` hidden."""
    shown = [("****" if i and args[i - 1] in SECRET_OPTIONS else a) for i, a in enumerate(args)]
    return mask_text(" ".join(["emvtap", *shown]))


def _words(args: tuple[str, ...] | list[str]) -> list[str]:
    return [a for a in args if not a.startswith("-")]


def _missing_command(args: tuple[str, ...] | list[str], name: str) -> str:
    words = _words(args)
    parent = words[:words.index(name)] if name in words else words[:1]
    return f"command `emvtap {' '.join([*parent, name])}`"


def _missing_option(args: tuple[str, ...] | list[str], name: str) -> str:
    return f"option {name} of `emvtap {' '.join(_words(args)[:2])}`"


#: Output of a failed command that means "this build does not have it" → what is missing.
MISSING_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[list[str], str], str]], ...] = (
    (re.compile(r"No such command:? '([\w.-]+)'"), _missing_command),
    (re.compile(r"No such option:? '?(--?[\w-]+)'?"), _missing_option),
    (re.compile(r"No module named '([\w.]+)'"), lambda args, name: f"module {name}"),
)

TAIL_LINES = 20


def classify_failure(args: tuple[str, ...] | list[str], output: str, what: str) -> Exception:
    """The exception for an ``emvtap`` command that failed with *output*."""
    for pattern, missing in MISSING_PATTERNS:
        match = pattern.search(output)
        if match:
            return Unsupported(missing(list(args), match.group(1)))
    tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
    return RigError(f"{what} failed:\n{tail}")


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONUNBUFFERED": "1"}


def run_emvtap(args: list[str], *, timeout: float = 60.0, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> str:
    """Run ``emvtap ARGS`` to completion (*env* added to the environment); its output, or
    :class:`Unsupported` / :class:`RigError`."""
    argv = [*EMVTAP, *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd, env=_env() | (env or {}), check=False)
    except subprocess.TimeoutExpired as exc:
        raise RigError(f"`{command_line(args)}` did not finish within {timeout} s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise classify_failure(args, output, f"`{command_line(args)}` (exit {done.returncode})")
    return output


class Child:
    """A long-running ``emvtap`` process whose output goes to *log_path*, ready once a line
    matches *ready*."""

    def __init__(self, name: str, args: list[str], log_path: Path, ready: re.Pattern[str],
                 cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.ready_pattern = ready
        self.cwd = cwd
        self.env = env or {}
        self.ready_match: re.Match[str] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=200)
        self._changed = threading.Condition()
        self._ended = False
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [*EMVTAP, *self.args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, bufsize=1, cwd=self.cwd,
            env=_env() | self.env, start_new_session=True,
        )
        assert self._proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,),
                                        name=f"hil-{self.name}", daemon=True)
        self._reader.start()
        return self

    def _read(self, stream: IO[str]) -> None:
        with self.log_path.open("a") as log:
            log.write(f"$ {command_line(self.args)}\n")
            for line in stream:
                log.write(line)
                log.flush()
                with self._changed:
                    self._tail.append(line.rstrip("\n"))
                    if self.ready_match is None:
                        self.ready_match = self.ready_pattern.search(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_ready(self, timeout: float = 20.0) -> re.Match[str]:
        """Block until the banner appears; :class:`Unsupported` / :class:`RigError` when the
        process ends first (with what it said) or *timeout* passes."""
        with self._changed:
            self._changed.wait_for(lambda: self.ready_match is not None or self._ended, timeout)
            if self.ready_match is not None:
                return self.ready_match
            ended = self._ended
        if ended:
            code = self._proc.wait() if self._proc else None
            raise classify_failure(self.args, self.tail(),
                                   f"{self.name} (`{command_line(self.args)}`, exit {code})")
        raise RigError(f"{self.name} did not say it was ready within {timeout} s:\n{self.tail()}")

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait for the exit (SIGKILL after *timeout*), and for its last output."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        return self._proc.returncode

    def tail(self, lines: int = TAIL_LINES) -> str:
        with self._changed:
            return "\n".join(list(self._tail)[-lines:])

    def __repr__(self) -> str:
        return f"<Child {self.name} pid={self._proc.pid if self._proc else None}>"
