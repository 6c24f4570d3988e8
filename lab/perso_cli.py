"""``emvtap perso``: the one personalisation command - a test card profile of any scheme,
several applications, the HCE form. Same seed, same bytes; different seeds, different cards."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from emvtap.cli_support import check_writable, document, emit_json, human, json_option
from emvtap.device_types import DEVICE_TYPE_NAMES, DeviceType

__all__ = ["perso"]

SCHEMES = ("quickpass", "visa", "mastercard", "multi")
#: The summary's JSON format (docs/json-formats.md).
PERSO_FORMAT = ("emvtap.perso", 1)
MAX_SEED = 2**63 - 1


def _seed(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    if value is not None and not 0 <= value <= MAX_SEED:
        raise click.BadParameter(f"{value} is not a seed: a whole number from 0 to 2^63-1")
    return value


def _out(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Path | None:
    return None if value is None else check_writable(value, "--out")


@click.command("perso", epilog="""\b
Examples:
  emvtap perso --seed 1 --out card.json
  emvtap perso --scheme multi --seed 2 --ecash 2500 --out multi.json
  emvtap perso --scheme quickpass --seed 3 --hce 10 --out wallet.json --json -""")
@click.option("--scheme", type=click.Choice(SCHEMES), default="quickpass", show_default=True,
              help="quickpass: UnionPay qPBOC device card with its token (MPAN → SPAN); visa: "
                   "qVSDC-style; mastercard: M/Chip-style with CDA; multi: QuickPass, Visa and "
                   "Mastercard in one card, listed in the PPSE.")
@click.option("--seed", type=int, metavar="N", required=True, callback=_seed,
              help="Whole number from 0 to 2^63-1: same seed, same profile bytes; different "
                   "seeds, different cards (PAN, token, device and keys).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, callback=_out,
              help="Profile JSON to write (its directory must exist).")
@click.option("--device-type", type=click.Choice(DEVICE_TYPE_NAMES), default=None,
              help="The device the token is on [default: handset-se, or hce with --hce].")
@click.option("--device-id", default=None, help="The device id of its token [default: seeded].")
@click.option("--ecash", type=click.IntRange(0, 999_999_999_999), default=None, metavar="MINOR",
              help="quickpass/multi: a PBOC e-cash purse with this balance (minor units).")
@click.option("--hce", "hce_keys", type=click.IntRange(0, 1000), default=None, metavar="KEYS",
              help="The HCE form - no master key, this many limited-use keys "
                   "computed locally as a test TSP would (`emvtap card replenish` fetches "
                   "more from a switch).")
@json_option("a summary of the card written")
def perso(scheme: str, seed: int, out: Path, device_type: str | None, device_id: str | None,
          ecash: int | None, hce_keys: int | None, json_path: Path | None) -> None:
    """Write a test device card (test keys, test CA) of any scheme: a token (MPAN → SPAN on
    a device) comes with it, ready for `emvtap card run`, `emvtap switch enroll` and
    `emvtap card perso-applet`."""
    from emvtap.masking import mask_pan
    from emvtap.perso import generate_profile
    from emvtap.perso_schemes import (
        generate_mastercard_profile,
        generate_multi_application_profile,
        generate_visa_profile,
        hce_wallet_profile,
        test_luk_batch,
        with_device_token,
    )

    if ecash is not None and scheme not in ("quickpass", "multi"):
        raise click.BadParameter(f"--ecash needs a UnionPay card (--scheme quickpass or multi), "
                                 f"not {scheme}", param_hint="--ecash")
    device = DeviceType(device_type or (DeviceType.HCE if hce_keys is not None
                                        else DeviceType.HANDSET_SE))
    kw = {"device_type": device}
    if scheme == "multi":
        profile = generate_multi_application_profile(seed, ecash_balance=ecash, **kw)
    elif scheme == "quickpass":
        profile = generate_profile(seed, **kw)
        if ecash is not None:
            app = profile.applications[0]
            profile = replace(profile, applications=(replace(app, extra=app.extra | {
                "ecash": {"balance": ecash}}),))
    else:
        profile = (generate_visa_profile if scheme == "visa" else generate_mastercard_profile)(
            seed)
    if profile.token is not None and device_id is not None:
        profile = replace(profile, token=replace(profile.token, device_id=device_id))
    profile = with_device_token(profile, seed, device_type=device, device_id=device_id)
    if hce_keys is not None:
        batch = test_luk_batch(profile.applications[0], 1, hce_keys) if hce_keys else None
        profile = hce_wallet_profile(profile, batch)
    profile.save(out)
    token = profile.token
    echo = human(json_path)
    apps = ", ".join(f"{a.label} ({a.aid.hex().upper()}, kernel {a.kernel_id:02X})"
                     for a in profile.applications)
    echo(f"wrote {out}: {mask_pan(profile.pan)}: {apps}"
         + (f"; token → SPAN {mask_pan(token.span)}, device {token.device_id}" if token else ""))
    emit_json(json_path, document(*PERSO_FORMAT, {
        "profile": str(out),
        "scheme": scheme,
        "seed": seed,
        "pan": mask_pan(profile.pan),
        "applications": [{"aid": a.aid.hex().upper(), "label": a.label,
                          "kernel": a.kernel_id} for a in profile.applications],
        "token": None if token is None else {
            "mpan": mask_pan(token.mpan), "span": mask_pan(token.span),
            "device_id": token.device_id, "device_type": str(token.device_type)},
        "hce": hce_keys is not None,
    }))
