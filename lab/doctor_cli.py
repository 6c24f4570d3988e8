"""The ``emvtap doctor`` command: run :mod:`lab.doctor`'s checks, print a table or JSON,
exit 0 when the machine is ready for ``--role``, 1 when it is not."""

from __future__ import annotations

from collections.abc import Callable

import click

from emvtap.endpoints import parse_host_port
from lab.doctor import ROLES, DoctorEnv, render_table, run_doctor

__all__ = ["doctor", "make_doctor_command"]


def _switch_address(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    if value is None:
        return None
    try:
        return parse_host_port(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def make_doctor_command(env_factory: Callable[[], DoctorEnv] = DoctorEnv) -> click.Command:
    """The click command, with the doctor's environment made by *env_factory* (tests pass fake
    trees and probes)."""

    @click.command("doctor")
    @click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
    @click.option(
        "--switch",
        metavar="HOST:PORT",
        callback=_switch_address,
        help="also check the mock switch: TCP connect, then a 0800 echo",
    )
    @click.option(
        "--role",
        type=click.Choice(ROLES),
        default="both",
        show_default=True,
        help="what this machine must be ready for",
    )
    @click.option(
        "--nfc-timeout",
        type=click.FloatRange(min=0.5),
        default=10.0,
        show_default=True,
        help="seconds nfcpy may take to probe the USB readers",
    )
    @click.pass_context
    def doctor(
        ctx: click.Context,
        as_json: bool,
        switch: tuple[str, int] | None,
        role: str,
        nfc_timeout: float,
    ) -> None:
        """Check that readers, drivers, permissions, pcscd, nfcpy, the switch and the CA keys
        are ready, and print the fix for whatever is not."""
        env = env_factory()
        env.nfc_timeout = nfc_timeout
        report = run_doctor(role, switch, env)  # type: ignore[arg-type]  # click.Choice(ROLES)
        if as_json:
            click.echo(report.to_json())
        else:
            from rich.console import Console

            render_table(report, Console())
        ctx.exit(report.exit_code)

    return doctor


doctor = make_doctor_command()
