"""The ``emvtap`` command: a root group whose sub-groups live with their actors and are loaded
only when used (``terminal``, ``card``, ``switch``), plus ``perso``, ``demo`` and ``doctor``.

Exit codes of a transaction: 0 approved, 1 declined, 2 any other outcome (try again, try another
interface, end application); 3 for bad usage or input (click's own usage errors exit 2 too).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

import click

from emvtap.device_types import DEVICE_TYPE_NAMES, DeviceType

__all__ = ["main"]

#: sub-command → "module:attribute" of a click command, imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "terminal": "terminal.cli:terminal_group",
    "card": "hce_card.cli:card_group",
    "switch": "switch.cli:switch_group",
    "doctor": "lab.doctor_cli:doctor",
    "hil": "lab.hil_cli:hil",
    "demo": "lab.demo:demo",
    "wallet": "lab.wallet.cli:wallet_group",
    "merchant": "lab.merchant.cli:merchant_group",
}


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
            return command
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="emvtap")
def cli(verbose: int) -> None:
    """emvtap: an EMV contactless lab - POS kernel, card (HCE or Java Card) and a tokenising
    ISO 8583 switch, on real NFC readers or virtual ones."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # nfcpy logs every frame in hex at DEBUG - PAN, track 2 and name in clear: never that
    logging.getLogger("nfc").setLevel(max(level, logging.INFO))


@cli.command()
@click.option("--seed", type=click.IntRange(-(2**63), 2**63 - 1), required=True,
              help="Same seed, same profile bytes.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--device-type", type=click.Choice(DEVICE_TYPE_NAMES),
              default=DeviceType.HANDSET_SE.value, show_default=True)
def perso(seed: int, out: Path, device_type: str) -> None:
    """Write a complete UnionPay QuickPass device-card profile (test keys, test CA)."""
    from emvtap.masking import mask_pan
    from emvtap.perso import generate_profile

    profile = generate_profile(seed, device_type=DeviceType(device_type))
    profile.save(out)
    token = profile.token
    click.echo(f"wrote {out}: AID {profile.application.aid.hex().upper()}, "
               f"MPAN {mask_pan(profile.pan)}"
               + (f" → SPAN {mask_pan(token.span)}, device {token.device_id}" if token else ""))


def main() -> None:
    """Console entry point: never a traceback for the user (EMVTAP_DEBUG=1 shows it)."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug of ours: say so briefly, keep the details for -vv
        if os.environ.get("EMVTAP_DEBUG"):
            raise
        from emvtap.masking import mask_text

        logging.getLogger("emvtap").debug("unexpected error", exc_info=True)
        click.echo(f"emvtap: internal error: {type(exc).__name__}: {mask_text(str(exc))} "
                   "(set EMVTAP_DEBUG=1 for the traceback)", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
