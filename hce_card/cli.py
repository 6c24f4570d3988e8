"""``emvtap card``: the software card on a card link."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import click

from emvtap.cli_support import EnvironmentProblem, Refused
from emvtap.masking import mask_pan
from emvtap.profile import ProfileError

__all__ = ["card_group"]

log = logging.getLogger("emvtap.card")


@click.group("card", epilog="""\b
Examples:
  emvtap perso --seed 1 --out card.json
  emvtap card run --profile card.json --link vpcd:127.0.0.1:35963""")
def card_group() -> None:
    """The card side: HCE software card (or the Java Card applet bridge)."""


@card_group.command(epilog="""\b
Examples:
  emvtap card run --profile card.json --link vpcd:127.0.0.1:35963   (pcscd's virtual reader)
  emvtap card run --profile card.json --link nfc:udp:127.0.0.1:50000
  emvtap card run --profile card.json --link nfc:usb:04e6:5591      (a second NFC reader)
Exit 4 when the link cannot be opened (udp port taken by another card, no reader).""")
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Card profile JSON (emvtap perso); or --recording.")
@click.option("--recording", "recording_path", type=click.Path(exists=True, dir_okay=False),
              default=None,
              help="Serve a recorded card instead (tests/data/cards/*.json): it answers the "
                   "recorded APDUs, see docs/recorded-cards.md.")
@click.option("--link", default="vpcd:127.0.0.1:35963", show_default=True,
              help="Where the card is tapped: vpcd:HOST:PORT (pcscd's vpcd reader), "
                   "nfc:udp:HOST:PORT (nfcpy's virtual radio), nfc:usb[:VID:PID] (a reader "
                   "in card-emulation mode), nfc:sim:CHIP:HOST:PORT (nfcpy's driver on a "
                   "simulated chip).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Card state file (ATC, counters); default: next to the profile.")
@click.option("--cdcvm", is_flag=True,
              help="The wallet user has authenticated on the device: transactions that need a "
                   "CVM are marked device-verified (CTQ byte 2 b8).")
@click.option("--attack", "attack_names", default=None, metavar="NAME[,NAME…]",
              help="Make the card lie as these catalogue attacks say (`emvtap bench attack "
                   "--list`); 'all' is refused, pick them.")
@click.option("--attack-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML attack file (catalogue ids and/or attacks of your own).")
@click.option("--personality", type=click.Choice(["acr122u"]), default=None,
              help="With --link vpcd:…: look like this reader with the card in its field "
                   "(ATR, UID, LED/buzzer and direct-transmit pseudo-APDUs).")
def run(profile_path: str | None, recording_path: str | None, link: str,
        state_path: Path | None, cdcvm: bool, attack_names: str | None,
        attack_file: str | None, personality: str | None) -> None:
    """Serve the card tap after tap until Ctrl-C (each command logged, PAN masked).

    \b
    Example:
      emvtap card run --recording tests/data/cards/visa_applepay.json --link nfc:udp:127.0.0.1:50123
    """
    from hce_card.card import HceCard
    from hce_card.link import open_link

    if (profile_path is None) == (recording_path is None):
        raise click.UsageError("give exactly one of --profile and --recording")
    attacks = _attacks(attack_names, attack_file)
    card: Any
    if recording_path is not None:
        from hce_card.recorded import RecordedCard, RecordingError

        try:
            card = RecordedCard.load(recording_path)
        except RecordingError as exc:
            raise click.UsageError(str(exc)) from exc
        described = f"recorded card {Path(recording_path).name} ({card.recording.card[:60]})"
    else:
        assert profile_path is not None
        state_path = state_path or _default_state(profile_path)
        try:
            card = HceCard.from_files(profile_path, state_path, cdcvm=lambda: cdcvm)
        except (ProfileError, ValueError, OSError) as exc:
            raise click.UsageError(f"cannot load the card: {exc}") from exc
        for aid, status in card.wallet_status().items():
            click.echo(f"HCE wallet {aid}: {status}", err=True)
        described = f"card {mask_pan(card.profile.pan)} (ATC {card.store.state.atc})"
    served: object = card
    if attacks:
        from hce_card.attacks import AttackCard

        served = AttackCard(card, attacks)
        click.echo("attacks armed: " + ", ".join(a.id for a in attacks), err=True)
    if personality is not None:
        if not link.startswith("vpcd"):
            raise click.UsageError("--personality is a PC/SC reader's: use it with --link vpcd:…")
        from hce_card.link.acr122u import with_personality

        served = with_personality(served, personality)
    # an attacking card on ISO-DEP keeps asking for time (S(WTX)) as long as its attack says
    options = {"max_command_seconds": 3600.0} if attacks and link.startswith("nfc:") else {}
    from hce_card.link.base import LinkError

    if link.partition(":")[0] == "loopback":
        raise click.BadParameter("loopback is an in-process link for tests; use vpcd: or "
                                 "nfc:udp: on the command line", param_hint="--link")
    try:
        card_link = open_link(link, served, **options)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--link") from exc
    if attacks:
        served.leave_field_hook = _leave_and_return(card_link)  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, lambda *_: card_link.stop())
    logging.getLogger("emvtap").setLevel(min(logging.getLogger().level, logging.INFO))
    click.echo(f"{described} on {link}; Ctrl-C to stop", err=True)
    try:
        card_link.serve()
    except KeyboardInterrupt:
        pass
    except (LinkError, OSError) as exc:
        raise EnvironmentProblem(f"{link}: {exc}") from None
    if recording_path is not None:
        click.echo("stopped", err=True)
    else:
        click.echo(f"stopped; ATC {card.store.state.atc}", err=True)


def _attacks(names: str | None, path: str | None) -> list:  # type: ignore[type-arg]
    """The attacks of --attack and --attack-file, or a usage error that says what is wrong."""
    if not names and not path:
        return []
    from hce_card.attacks import AttackError, load_attack_file, resolve

    try:
        if names and names.strip() == "all":
            raise AttackError("--attack all: a card tells one set of lies; name the attacks")
        return [*(resolve(names) if names else []), *(load_attack_file(path) if path else [])]
    except AttackError as exc:
        raise click.UsageError(str(exc)) from exc


def _leave_and_return(card_link: object, away: float = 2.0):  # type: ignore[no-untyped-def]
    """``remove_card`` on a served card: the link drops the field, the card comes back after
    *away* seconds so the next tap finds it (links without removal: no answer is all)."""
    import threading

    remove = getattr(card_link, "remove_card", None)
    insert = getattr(card_link, "insert_card", None)

    def leave() -> None:
        if remove is None:
            return
        remove()
        if insert is not None:
            threading.Timer(away, insert).start()

    return leave


@card_group.command(epilog="""\b
Example:
  emvtap card authenticate --profile card.json""")
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="Card profile JSON.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Card state file; default: next to the profile.")
def authenticate(profile_path: str, state_path: Path | None) -> None:
    """The wallet user authenticated on the device (CDCVM): the next transaction that needs a
    CVM is marked device-verified (CTQ byte 2 b8). A running card picks it up at its next
    SELECT."""
    from emvtap.profile import CardProfile
    from hce_card.state import USER_VERIFIED_MARKER

    try:
        CardProfile.load(profile_path)
    except (ProfileError, ValueError, OSError) as exc:
        raise click.BadParameter(f"{profile_path}: not a card profile ({exc})",
                                 param_hint="--profile") from None
    state_file = state_path or _default_state(profile_path)
    inbox = state_file.with_name(state_file.name + ".inbox")
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / USER_VERIFIED_MARKER).touch()
    click.echo("user verified on the device: the next transaction that needs a CVM is "
               "device-verified")


def _default_state(profile_path: str | Path) -> Path:
    return Path(profile_path).with_suffix(".state.json")


@card_group.command(epilog="""\b
Examples:
  emvtap card replenish --profile wallet.json --token-file switch.db.admin-token
  emvtap card replenish --profile wallet.json --switch 127.0.0.1:8584 --count 20""")
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="Card profile JSON of the HCE device card.")
@click.option("--switch", "switch", default="127.0.0.1:8584", show_default=True,
              help="HOST:PORT of the switch's admin API (the TSP endpoint).")
@click.option("--token", "admin_token", envvar="EMVTAP_SWITCH_ADMIN_TOKEN", default=None,
              help="Admin API bearer token ($EMVTAP_SWITCH_ADMIN_TOKEN).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File holding the bearer token (the switch's DB.admin-token).")
@click.option("--count", type=click.IntRange(1, 1000), default=None,
              help="Keys to ask for (default: the TSP's batch size).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Card state file; default: next to the profile.")
def replenish(profile_path: str, switch: str, admin_token: str | None, token_file: str | None,
              count: int | None, state_path: Path | None) -> None:
    """Fetch a new batch of limited-use keys from the switch's TSP for this HCE card.

    The batch goes to the card's inbox; a running card imports it at its next SELECT, a
    stopped one when it starts."""
    from emvtap.endpoints import parse_host_port
    from emvtap.profile import CardProfile
    from hce_card.replenish import (
        DEFAULT_ADMIN_PORT,
        ReplenishError,
        drop_in_inbox,
        request_batch,
    )
    from hce_card.state import StateStore
    from hce_card.wallet import is_wallet, wallet_status

    try:
        profile = CardProfile.load(profile_path)
        host, port = parse_host_port(switch, default_host="127.0.0.1",
                                     default_port=DEFAULT_ADMIN_PORT)
    except (ProfileError, ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    app = next((a for a in profile.applications if is_wallet(a)), None)
    if app is None:
        raise click.UsageError("the profile has no limited-use (HCE) application")
    if token_file:
        admin_token = Path(token_file).read_text().strip()
    if not admin_token:
        raise click.UsageError("the admin API needs a token: --token, --token-file or "
                               "$EMVTAP_SWITCH_ADMIN_TOKEN")
    store = StateStore(state_path or _default_state(profile_path))  # read only from here on
    try:
        batch, raw = request_batch(host, port, profile.pan, admin_token, count)
    except ReplenishError as exc:
        if "cannot reach" in str(exc):
            raise EnvironmentProblem(str(exc)) from None
        raise Refused(str(exc)) from None
    assert store.inbox is not None
    # only the card writes its state: the batch waits in the inbox for the card's next SELECT
    target = drop_in_inbox(store.inbox, raw, batch)
    atcs = [k.atc for k in batch.keys]
    span = f"ATC {min(atcs)}-{max(atcs)}" if atcs else "no keys"
    click.echo(f"batch {batch.batch} for {mask_pan(profile.pan)}: {len(atcs)} keys ({span}) "
               f"in {target.name}; the card holds {wallet_status(store, app.aid)} until it "
               "imports them")

