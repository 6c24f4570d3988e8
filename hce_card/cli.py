"""``emvtap card``: the software card on a card link."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import click

from emvtap.device_types import DEVICE_TYPE_NAMES, DeviceType
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
@click.option("--cdcvm", is_flag=True,
              help="The wallet user has authenticated on the device: transactions that need a "
                   "CVM are marked device-verified (CTQ byte 2 b8).")
def run(profile_path: str, link: str, state_path: Path | None, cdcvm: bool) -> None:
    """Serve the card tap after tap until Ctrl-C (each command logged, PAN masked)."""
    from hce_card.card import HceCard
    from hce_card.link import open_link

    state_path = state_path or _default_state(profile_path)
    try:
        card = HceCard.from_files(profile_path, state_path, cdcvm=lambda: cdcvm)
    except (ProfileError, ValueError, OSError) as exc:
        raise click.UsageError(f"cannot load the card: {exc}") from exc
    for aid, status in card.wallet_status().items():
        click.echo(f"HCE wallet {aid}: {status}", err=True)
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


_SCHEMES = ("quickpass", "visa", "mastercard", "multi")


@card_group.command("perso")
@click.option("--scheme", type=click.Choice(_SCHEMES), default="multi", show_default=True,
              help="quickpass: UnionPay qPBOC; visa: qVSDC-style; mastercard: M/Chip-style with "
                   "CDA; multi: all three in one card, listed in the PPSE.")
@click.option("--seed", type=int, required=True, help="Same seed, same profile bytes.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--ecash", type=int, default=None,
              help="With quickpass/multi: a PBOC e-cash purse with this balance (minor units).")
@click.option("--hce", "hce_keys", type=click.IntRange(0, 1000), default=None,
              help="Write the HCE form: no master key, this many limited-use keys computed "
                   "locally as a test TSP would (use `emvtap card replenish` with a switch).")
@click.option("--device-type", type=click.Choice(DEVICE_TYPE_NAMES), default=None,
              help="The device the card is on (default: handset-se, or hce with --hce).")
@click.option("--device-id", default=None, help="The device id of its token (default: seeded).")
def perso(scheme: str, seed: int, out: Path, ecash: int | None, hce_keys: int | None,
          device_type: str | None, device_id: str | None) -> None:
    """Write a test device card of another scheme, or with several applications: a token
    (MPAN, SPAN, device) comes with it, so `emvtap switch enroll` can register it."""
    from dataclasses import replace

    from emvtap.perso import generate_profile
    from emvtap.perso_schemes import (
        generate_mastercard_profile,
        generate_multi_application_profile,
        generate_visa_profile,
        hce_wallet_profile,
        test_luk_batch,
        with_device_token,
    )

    if scheme == "multi":
        profile = generate_multi_application_profile(seed, ecash_balance=ecash)
    elif scheme == "quickpass":
        profile = generate_profile(seed)
        if ecash is not None:
            app = profile.applications[0]
            profile = replace(profile, applications=(replace(app, extra=app.extra | {
                "ecash": {"balance": ecash}}),))
    else:
        profile = (generate_visa_profile if scheme == "visa" else generate_mastercard_profile)(
            seed)
    device_type = device_type or ("hce" if hce_keys is not None else "handset-se")
    if profile.token is not None:
        profile = replace(profile, token=replace(profile.token, device_type=DeviceType(
            device_type), device_id=device_id or profile.token.device_id))
    profile = with_device_token(profile, seed, device_type=device_type, device_id=device_id)
    if hce_keys is not None:
        batch = test_luk_batch(profile.applications[0], 1, hce_keys) if hce_keys else None
        profile = hce_wallet_profile(profile, batch)
    profile.save(out)
    apps = ", ".join(f"{a.label} ({a.aid.hex().upper()}, kernel {a.kernel_id:02X})"
                     for a in profile.applications)
    token = profile.token
    assert token is not None
    click.echo(f"wrote {out}: {mask_pan(profile.pan)}: {apps}; token for card "
               f"{mask_pan(token.span)} on {token.device_type} {token.device_id}")


@card_group.command()
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="Card profile JSON.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Card state file; default: next to the profile.")
def authenticate(profile_path: str, state_path: Path | None) -> None:
    """The wallet user authenticated on the device (CDCVM): the next transaction that needs a
    CVM is marked device-verified (CTQ byte 2 b8). A running card picks it up at its next
    SELECT."""
    from hce_card.state import USER_VERIFIED_MARKER

    state_file = state_path or _default_state(profile_path)
    inbox = state_file.with_name(state_file.name + ".inbox")
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / USER_VERIFIED_MARKER).touch()
    click.echo("user verified on the device: the next transaction that needs a CVM is "
               "device-verified")


def _default_state(profile_path: str | Path) -> Path:
    return Path(profile_path).with_suffix(".state.json")


@card_group.command()
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
        raise click.ClickException(str(exc)) from exc
    assert store.inbox is not None
    # only the card writes its state: the batch waits in the inbox for the card's next SELECT
    target = drop_in_inbox(store.inbox, raw, batch)
    atcs = [k.atc for k in batch.keys]
    span = f"ATC {min(atcs)}-{max(atcs)}" if atcs else "no keys"
    click.echo(f"batch {batch.batch} for {mask_pan(profile.pan)}: {len(atcs)} keys ({span}) "
               f"in {target.name}; the card holds {wallet_status(store, app.aid)} until it "
               "imports them")

