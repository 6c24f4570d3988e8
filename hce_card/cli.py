"""``emvtap card``: the software card on a card link."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import click

from emvtap.masking import mask_pan
from emvtap.profile import ProfileError

__all__ = ["card_group"]

log = logging.getLogger("emvtap.card")


@click.group("card")
def card_group() -> None:
    """The card side: HCE software card (or the Java Card applet bridge)."""


@card_group.command()
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="Card profile JSON (emvtap perso).")
@click.option("--link", default="vpcd:127.0.0.1:35963", show_default=True,
              help="loopback | vpcd:HOST:PORT | nfc:udp:HOST:PORT | nfc:usb[:...]")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Card state file (ATC, counters); default: next to the profile.")
def run(profile_path: str, link: str, state_path: Path | None) -> None:
    """Serve the card tap after tap until Ctrl-C (each command logged, PAN masked)."""
    from hce_card.card import HceCard
    from hce_card.link import open_link

    if state_path is None:
        state_path = Path(profile_path).with_suffix(".state.json")
    try:
        card = HceCard.from_files(profile_path, state_path)
    except (ProfileError, ValueError, OSError) as exc:
        raise click.UsageError(f"cannot load the card: {exc}") from exc
    try:
        card_link = open_link(link, card)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    signal.signal(signal.SIGTERM, lambda *_: card_link.stop())
    logging.getLogger("emvtap").setLevel(min(logging.getLogger().level, logging.INFO))
    click.echo(f"card {mask_pan(card.profile.pan)} (ATC {card.store.state.atc}) on {link}; "
               "Ctrl-C to stop", err=True)
    try:
        card_link.serve()
    except KeyboardInterrupt:
        pass
    click.echo(f"stopped; ATC {card.store.state.atc}", err=True)


try:  # the Java Card applet's commands, when that part is installed
    from hce_card.applet_cli import register as _register_applet
except ImportError:  # pragma: no cover - applet tooling not present
    pass
else:
    _register_applet(card_group)
