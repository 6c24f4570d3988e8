"""The ``emvtap`` command: a root group whose sub-groups live with their actors and are loaded
only when used (``terminal``, ``card``, ``switch``), plus ``perso``, ``demo``, ``doctor`` and
``hil``.

Every command exits with a code of :mod:`emvtap.exit_codes` (docs/exit-codes.md): usage errors
2 (click's own), environment problems 4, Ctrl-C 130, a bug of ours 70 - never a traceback.
``-v`` works on the root and on every command: ``emvtap -v terminal pay …`` and
``emvtap terminal pay … -v`` are the same. Library logs (nfcpy) appear only with ``-v``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from emvtap.exit_codes import ExitCode

__all__ = ["main"]

#: sub-command → "module:attribute" of a click command, imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "terminal": "terminal.cli:terminal_group",
    "card": "hce_card.cli:card_group",
    "switch": "switch.cli:switch_group",
    "perso": "lab.perso_cli:perso",
    "doctor": "lab.doctor_cli:doctor",
    "hil": "lab.hil_cli:hil",
    "bench": "lab.bench_cli:bench",
    "demo": "lab.demo:demo",
    "readers": "lab.readers_cli:readers",
    "wallet": "lab.wallet.cli:wallet_group",
    "merchant": "lab.merchant.cli:merchant_group",
}

#: Loggers of the libraries we drive: silent unless -v, and never below INFO (nfcpy logs every
#: frame in hex at DEBUG - PAN, track 2 and name in clear).
LIBRARY_LOGGERS = ("nfc",)
VERBOSE_HELP = "More logging: -v info (and library logs), -vv debug. Also before the command."


class _LibraryFilter(logging.Filter):
    """Drops library records below :attr:`threshold` (a filter on the handler, not a logger
    level: nfcpy sets its own logger's level when it is imported)."""

    threshold = logging.CRITICAL + 1

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] in LIBRARY_LOGGERS:
            return record.levelno >= self.threshold
        return True


_FILTER = _LibraryFilter()
_verbosity = 0


def set_verbosity(count: int) -> None:
    """Logging for *count* ``-v`` in all: warnings only, info (with library logs), debug."""
    global _verbosity
    _verbosity = count
    level = logging.WARNING - 10 * min(count, 2)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    root.setLevel(level)
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    _FILTER.threshold = logging.INFO if count else logging.CRITICAL + 1
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def _more_verbose(_ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        set_verbosity(_verbosity + value)


def add_verbose_option(command: click.Command) -> click.Command:
    """Give *command* and every sub-command a ``-v`` that adds to the root's."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbose_option(sub)
        return command
    if not any({"-v", "--verbose"} & set(getattr(p, "opts", ())) for p in command.params):
        command.params.append(click.Option(
            ["-v", "--verbose", "verbose_"], count=True, expose_value=False, is_eager=True,
            callback=_more_verbose, help=VERBOSE_HELP))
    return command


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            if name == "card":  # the Java Card applet's host commands join the card group here
                from lab.applet.cli import register

                register(command)
            return add_verbose_option(command)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, epilog="""\b
Examples:
  emvtap perso --seed 1 --out card.json
  emvtap terminal pay --reader pcsc:0 --amount 12.34 --switch 127.0.0.1:8583
  emvtap -v hil run scenarios/ --virtual
Exit codes: docs/exit-codes.md (0 ok, 1 declined, 2 usage, 3 other outcome, 4 environment,
5 refused, 70 internal error, 130 Ctrl-C). JSON formats: docs/json-formats.md.""")
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.version_option(package_name="emvtap")
def cli(verbose: int) -> None:
    """emvtap: an EMV contactless lab - POS kernel, card (HCE or Java Card) and a tokenising
    ISO 8583 switch, on real NFC readers or virtual ones."""
    set_verbosity(verbose)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every end is an exit code of :mod:`emvtap.exit_codes`, never a
    traceback for the user (EMVTAP_DEBUG=1 shows it)."""
    try:
        code = cli.main(args=argv, prog_name="emvtap", standalone_mode=False)
    except click.Abort:  # click's form of KeyboardInterrupt (and EOF at a prompt)
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:  # a file or a port the command needs: the machine, not a bug
        if os.environ.get("EMVTAP_DEBUG"):
            raise
        where = f" {exc.filename}" if exc.filename else ""
        click.echo(f"emvtap: error:{where} {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.ENVIRONMENT)
    except Exception as exc:  # a bug of ours: say so briefly, keep the details for -vv
        if os.environ.get("EMVTAP_DEBUG"):
            raise
        from emvtap.masking import mask_text

        logging.getLogger("emvtap").debug("unexpected error", exc_info=True)
        click.echo(f"emvtap: internal error: {type(exc).__name__}: {mask_text(str(exc))} "
                   "(set EMVTAP_DEBUG=1 for the traceback)", err=True)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


if __name__ == "__main__":
    main()
