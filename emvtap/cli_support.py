"""What every ``emvtap`` command line shares: errors with their exit code
(:mod:`emvtap.exit_codes`), ``--json FILE|-`` checked before any work is done, and the JSON
document envelope (``format`` name/version and a timestamp; schemas in ``docs/json-formats.md``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from emvtap.exit_codes import ExitCode

__all__ = [
    "STDOUT",
    "EnvironmentProblem",
    "Refused",
    "check_writable",
    "document",
    "emit_json",
    "json_option",
]

F = TypeVar("F", bound=Callable[..., Any])

#: ``--json -``: the document goes to stdout, everything human to stderr.
STDOUT = Path("-")


class EnvironmentProblem(click.ClickException):
    """The machine is not ready: no such reader, port in use, a path that cannot be written."""

    exit_code = int(ExitCode.ENVIRONMENT)


class Refused(click.ClickException):
    """The store or the service refused the request (unknown subject, conflict)."""

    exit_code = int(ExitCode.REFUSED)


def check_writable(path: str | Path, what: str = "output file") -> Path:
    """*path* can be created or replaced: its directory exists and is writable, it is not a
    directory. Raises :class:`EnvironmentProblem` naming the file otherwise. Run it before the
    work whose result goes there (a tap must not happen when its record cannot be written)."""
    path = Path(path)
    if path == STDOUT:
        return path
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise EnvironmentProblem(f"{what} {path}: is a directory")
    if not parent.is_dir():
        raise EnvironmentProblem(f"{what} {path}: directory {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise EnvironmentProblem(f"{what} {path}: not writable")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"{what} {path}: directory {parent} is not writable")
    return path


def _json_target(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    return None if value is None else check_writable(value, "--json")


def json_option(what: str = "the result") -> Callable[[F], F]:
    """``--json FILE|-``: write *what* as a JSON document to FILE, or to stdout with ``-``
    (then every human line goes to stderr). The target is checked when the command line is
    parsed, before the command does anything."""
    return click.option(
        "--json", "json_path", metavar="FILE|-", default=None, callback=_json_target,
        help=f"Write {what} as JSON to FILE ('-': stdout, human output to stderr); "
             "schema in docs/json-formats.md.")


def document(name: str, version: int, body: dict[str, Any]) -> dict[str, Any]:
    """A JSON document: ``format`` {name, version}, ``created`` (UTC, ISO 8601), then *body*."""
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"format": {"name": name, "version": version}, "created": created} | body


def emit_json(path: Path | None, doc: dict[str, Any]) -> None:
    """Write *doc* to *path* (``-``: stdout); nothing when *path* is None."""
    if path is None:
        return
    text = json.dumps(doc, indent=1, default=str)
    if path == STDOUT:
        click.echo(text)
        return
    try:
        path.write_text(text + "\n")
    except OSError as exc:
        raise EnvironmentProblem(f"--json {path}: {exc.strerror or exc}") from exc


def human(json_path: Path | None) -> Callable[..., None]:
    """``click.echo`` for the human lines: to stderr when the JSON goes to stdout."""
    err = json_path == STDOUT

    def echo(message: str = "") -> None:
        click.echo(message, err=err)

    return echo
