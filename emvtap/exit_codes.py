"""The exit codes of every ``emvtap`` command: one table, so a script can tell a declined
payment from a mistyped option, a missing reader or a bug of ours.

Click's own usage errors exit 2, so 2 means "the command line or an input file is wrong" for
every command, and no outcome of a tap uses it. ``docs/exit-codes.md`` and the README show
:data:`EXIT_CODES` as a table (``tests/unit/test_exit_codes.py`` keeps them identical).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EXIT_CODES", "ExitCode", "markdown_table"]


class ExitCode(IntEnum):
    """Process exit status of an ``emvtap`` command."""

    OK = 0
    DECLINED = 1
    USAGE = 2
    TRY_AGAIN = 3
    ENVIRONMENT = 4
    REFUSED = 5
    INTERNAL = 70
    INTERRUPTED = 130


#: code → (name, meaning): the documented table.
EXIT_CODES: dict[ExitCode, tuple[str, str]] = {
    ExitCode.OK: ("ok", "approved; the command did what it was asked; doctor: ready; hil: every "
                        "scenario that ran passed"),
    ExitCode.DECLINED: ("declined", "declined (by the card, the terminal or the issuer); "
                                    "doctor: not ready; hil: a scenario failed"),
    ExitCode.USAGE: ("usage", "bad command line or bad input: unknown option, invalid value, "
                              "unreadable or invalid profile, configuration or scenario file"),
    ExitCode.TRY_AGAIN: ("other-outcome", "any other tap outcome: try again, try another "
                                          "interface, end application (no card, card removed)"),
    ExitCode.ENVIRONMENT: ("environment", "the machine is not ready: no such reader, port in "
                                          "use, switch unreachable, output or database path "
                                          "missing or not writable"),
    ExitCode.REFUSED: ("refused", "the switch's store refused the request: unknown or ambiguous "
                                  "MPAN/SPAN/device, already enrolled with other keys, event "
                                  "not allowed in this state"),
    ExitCode.INTERNAL: ("internal", "a bug of emvtap (EMVTAP_DEBUG=1 shows the traceback)"),
    ExitCode.INTERRUPTED: ("interrupted", "stopped by Ctrl-C (SIGINT)"),
}


def markdown_table() -> str:
    """:data:`EXIT_CODES` as the Markdown table of ``docs/exit-codes.md`` and the README."""
    lines = ["| code | name | meaning |", "|---|---|---|"]
    lines += [f"| {int(code)} | `{name}` | {meaning} |" for code, (name, meaning)
              in EXIT_CODES.items()]
    return "\n".join(lines)
