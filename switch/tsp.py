"""Token service provider: over-the-air issuance of device cards and HCE limited-use keys
(docs/domain.md, "Device cards", "SPAN and MPAN"; TF v2.3).

Provisioning binds a physical card (SPAN) to a device:

- a new MPAN from the token BIN range, Luhn-valid and unique;
- the mapping rules of docs/domain.md, enforced here and by the store's unique indexes: one MPAN per
  SPAN per device, several per device, exactly one default per device (the first card);
- the token's ICC master keys derived from the TSP's issuer master keys (EMV Book 2 A1.4), kept
  in the vault;
- the personalisation profile in the ``emvtap perso`` format (the same generator), with the
  account's PAR (one PAR for every token of the account), the in-app no-password limit, and for
  an HCE device the first batch of limited-use keys *instead of* the master keys.

Every scheme (``scheme``: ``quickpass``, ``visa``, ``mastercard``; docs/domain.md, "Keys of the
cloud-based cards") is provisioned the same way: the application of that scheme
(:mod:`emvtap.perso` or :mod:`emvtap.perso_schemes`) personalised with the MPAN.

HCE limited-use keys (docs/domain.md): the key for ATC *n* is the card's AC session key for
that ATC by the limited-use row of the card's CVN (``emvtap.cryptogram_versions``: PBOC
SK = 3DES_MK(0…0‖n) ‖ 3DES_MK(0…0‖n⊕FFFF), Visa and Mastercard cloud EMV CSK with R = n‖0…0),
with the SM integrity and confidentiality session keys for the same ATC when they depend on
the ATC alone. The TSP records each one, the host verifies an
HCE cryptogram only with the key issued for its ATC and only once (:mod:`switch.authorize`).
A batch travels as JSON (``emvtap-luk-batch/1``)::

    {"format": "emvtap-luk-batch/1", "mpan": "6250…", "batch": 2, "no_password_limit": 30000,
     "keys": [{"atc": 11, "ac": "<hex>", "smi": "<hex>", "smc": "<hex>", "batch": 2,
               "expires": ""}, ...]}
"""

from __future__ import annotations

import calendar
import json
import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emvtap.cryptogram_versions import LIMITED_USE_CVN, cryptogram_version
from emvtap.device_types import DeviceType
from emvtap.luhn import luhn_complete, luhn_valid
from emvtap.masking import masked_repr
from emvtap.private_files import write_private_text
from emvtap.profile import CardProfile
from switch.domain import default_domain
from switch.store import Store, StoreError, utc_now
from switch.token_states import TokenState

__all__ = [
    "LUK_BATCH_FORMAT",
    "SCHEME_NAMES",
    "Provisioned",
    "ProvisioningError",
    "TspConfig",
    "luhn_valid",
    "provision",
    "replenish_limited_use_keys",
]

LUK_BATCH_FORMAT = "emvtap-luk-batch/1"
#: the schemes a device card can be provisioned in (``--scheme``)
SCHEME_NAMES = ("quickpass", "visa", "mastercard")
_PAR_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


class ProvisioningError(ValueError):
    """Provisioning refused; ``reason`` is a short code (``card_not_active``,
    ``already_on_device``, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TspConfig:
    token_bin: str = "625094"  # the test TSP's token BIN range (as emvtap perso uses)
    #: token BIN ranges of the other schemes (test ranges, not real issuers')
    scheme_token_bins: tuple[tuple[str, str], ...] = (("visa", "489537"), ("mastercard", "535425"))
    key_seed: int = 8583  # selects the TSP's issuer master keys (emvtap.perso.issuer_keys)
    par_prefix: str = "U001"  # BIN controller prefix of the PARs this TSP assigns
    luk_batch_size: int = 10
    token_validity_years: int = 3


@dataclass(frozen=True)
class Provisioned:
    mpan: str
    is_default: bool
    #: emvtap-card-profile/1, ready for json.dumps (keys: kept out of reprs)
    profile: dict[str, Any] = field(repr=False)
    #: the first batch (HCE) in LUK_BATCH_FORMAT
    limited_use_keys: dict[str, Any] | None = field(repr=False)

    def __repr__(self) -> str:
        return masked_repr(self, ("mpan",))


def _new_mpan(store: Store, config: TspConfig, rng: random.Random, scheme: str) -> str:
    token_bin = dict(config.scheme_token_bins).get(scheme, config.token_bin)
    for _ in range(1000):
        body = token_bin + "".join(str(rng.randrange(10)) for _ in range(15 - len(token_bin)))
        mpan = luhn_complete(body)
        if store.token(mpan) is None and store.card(mpan) is None:
            return mpan
    raise ProvisioningError("bin_exhausted", "no free MPAN found in the token BIN range")


def _new_par(config: TspConfig, rng: random.Random) -> str:
    return config.par_prefix + "".join(rng.choice(_PAR_ALPHABET) for _ in range(25))


def _token_expiry(now: datetime, card_expiry: str, years: int) -> str:
    """YYMM: ``years`` from now, never later than the physical card's own expiry."""
    own = f"{(now.year + years) % 100:02d}{now.month:02d}"
    return min(own, card_expiry)


def _limited_use_batch(
    store: Store,
    mpan: str,
    key_ac: bytes,
    key_smi: bytes,
    key_smc: bytes,
    first_atc: int,
    count: int,
    batch: int,
    now: datetime,
    cvn: int = 0x01,
) -> dict[str, Any]:
    if first_atc + count - 1 > 0xFFFF:
        raise ProvisioningError("atc_exhausted", "the token's ATC range is used up")
    method = cryptogram_version(cvn)
    keys = [
        {"atc": atc, **method.limited_use_keys(key_ac, key_smi, key_smc, atc), "batch": batch,
         "expires": ""}
        for atc in range(first_atc, first_atc + count)
    ]
    store.add_limited_use_keys(
        mpan, batch, {k["atc"]: bytes.fromhex(k["ac"]) for k in keys}, now=now
    )
    return {"format": LUK_BATCH_FORMAT, "mpan": mpan, "batch": batch, "keys": keys}


def _personalisation_profile(
    config: TspConfig,
    *,
    scheme: str,
    mpan: str,
    span: str,
    device_id: str,
    device_type: DeviceType,
    token_requestor_id: str,
    token_expiry: str,
) -> CardProfile:
    from emvtap.perso import generate_profile  # the generators `emvtap perso` uses
    from emvtap.perso_schemes import SCHEMES, generate_scheme_application, ppse_fci
    from emvtap.profile import TokenInfo

    year, month = 2000 + int(token_expiry[:2]), int(token_expiry[2:])
    expiry_yymmdd = token_expiry + f"{calendar.monthrange(year, month)[1]:02d}"
    if scheme == "quickpass":
        return generate_profile(
            config.key_seed,
            pan=mpan,
            span=span,
            device_id=device_id,
            device_type=device_type,
            token_requestor_id=token_requestor_id,
            expiry=expiry_yymmdd,
            psn="01",
        )
    app, _ = generate_scheme_application(
        SCHEMES[scheme], config.key_seed, pan=mpan, psn="01", expiry=expiry_yymmdd, priority=1
    )
    token = TokenInfo(
        mpan=mpan,
        span=span,
        span_expiry="",
        token_expiry=token_expiry,
        device_id=device_id,
        device_type=device_type,
        token_requestor_id=token_requestor_id,
        par="",
    )
    return CardProfile(
        pan=mpan,
        psn="01",
        expiry=expiry_yymmdd,
        effective="251101",
        ppse_fci=ppse_fci([app]),
        applications=(app,),
        token=token,
        seed=config.key_seed,
    )


def provision(
    store: Store,
    *,
    span: str,
    device_id: str,
    device_type: DeviceType | str,
    token_requestor_id: str,
    channel: str = "device",
    purpose: str = "contactless",
    assurance_level: str = "00",
    config: TspConfig | None = None,
    rng: random.Random | None = None,
    now: datetime | None = None,
    out: str | Path | None = None,
    scheme: str = "quickpass",
) -> Provisioned:
    """Bind SPAN to the device: a new MPAN, its keys, its profile (written to ``out`` if given).

    Raises :class:`ProvisioningError` when a mapping rule or a state forbids it."""
    config = config or TspConfig()
    rng = rng or random.Random(secrets.randbits(64))
    now = now or utc_now()
    try:
        device_type = DeviceType.parse(device_type)
    except ValueError as exc:
        raise ProvisioningError("bad_device_type", str(exc)) from None
    if not (len(token_requestor_id) == 11 and token_requestor_id.isdigit()):
        raise ProvisioningError("bad_token_requestor_id", "token requestor id is 11 digits")
    domain = default_domain(purpose)
    if scheme not in SCHEME_NAMES:
        raise ProvisioningError("bad_scheme", f"scheme must be one of {', '.join(SCHEME_NAMES)}")

    with store.transaction():
        card = store.card(span)
        if card is None:
            raise ProvisioningError("unknown_card", f"no card …{span[-4:]}")
        if card.status != "active":
            raise ProvisioningError("card_not_active", f"card …{span[-4:]} is {card.status}")
        device = store.device(device_id)
        if device is None:
            store.add_device(device_id, device_type, card.account_id)
            store.append_event(
                channel=channel,
                event="device.registered",
                subject=f"device:{device_id}",
                to_state="active",  # the device's status
                detail={"device_type": device_type},
                now=now,
            )
        else:
            if device.device_type is not device_type:
                raise ProvisioningError(
                    "device_type_mismatch", f"device {device_id} is a {device.device_type}"
                )
            if device.status != "active" or not device.signed_in or not device.passcode_set:
                raise ProvisioningError(
                    "device_not_ready",
                    f"device {device_id}: status {device.status}, signed in {device.signed_in},"
                    f" passcode {device.passcode_set}",
                )
        live = store.tokens(device_id=device_id, include_deleted=False)
        if any(t.span == span for t in live):
            raise ProvisioningError(
                "already_on_device",
                f"card …{span[-4:]} is already on device {device_id}"
                " (one MPAN per SPAN per device)",
            )
        mpan = _new_mpan(store, config, rng, scheme)
        par = card.par or _new_par(config, rng)
        if card.par is None:
            store.update_card(span, par=par)
        token_expiry = _token_expiry(now, card.expiry, config.token_validity_years)
        card_profile = _personalisation_profile(
            config,
            scheme=scheme,
            mpan=mpan,
            span=span,
            device_id=device_id,
            device_type=device_type,
            token_requestor_id=token_requestor_id,
            token_expiry=token_expiry,
        )
        card_app = card_profile.application
        keys = (card_app.keys.ac, card_app.keys.smi, card_app.keys.smc)
        is_default = not live
        limited_use = device_type.limited_use
        # an HCE card computes with the limited-use row of its CVN (emvtap's CVN table)
        cvn = LIMITED_USE_CVN.get(card_app.cvn, card_app.cvn) if limited_use else card_app.cvn
        try:
            store.add_token(
                mpan=mpan,
                span=span,
                device_id=device_id,
                token_expiry=token_expiry,
                psn=card_profile.psn,
                token_requestor_id=token_requestor_id,
                par=par,
                keys=keys,
                cvn=cvn,
                limited_use=limited_use,  # type: ignore[arg-type]
                is_default=is_default,
                assurance_level=assurance_level,
                domain=domain,
                now=now,
            )
        except StoreError as exc:
            raise ProvisioningError("vault_rule", str(exc)) from None

        profile = card_profile.to_dict()
        app = profile["applications"][0]
        profile["token"] |= {"par": par, "span_expiry": card.expiry, "token_expiry": token_expiry}
        app.setdefault("extra", {})
        app["extra"] |= {
            "purpose": purpose,
            "no_password_limit": card.no_password_limit,
            "token_domain": domain,
        }
        batch = None
        if limited_use:
            batch = _limited_use_batch(
                store, mpan, *keys, first_atc=1, count=config.luk_batch_size, batch=1, now=now,
                cvn=cvn,
            )
            batch["no_password_limit"] = card.no_password_limit
            # no master key on the phone (docs/domain.md, Device types): the keys slot holds zeros
            app["keys"] = {k: "00" * 16 for k in ("ac", "smi", "smc")}
            app["cvn"] = cvn
            app["extra"] |= {"key_mode": "limited-use", "limited_use_keys": batch["keys"]}
        store.append_event(
            channel=channel,
            event="token.provisioned",
            subject=f"token:{mpan}",
            mpan=mpan,
            to_state=TokenState.ACTIVE,
            detail={
                "device_id": device_id,
                "default": is_default,
                "purpose": purpose,
                "limited_use": limited_use,
                "scheme": scheme,
            },
            now=now,
        )
    if out is not None:
        write_private_text(out, json.dumps(profile, indent=1) + "\n")  # it holds keys
    return Provisioned(mpan, is_default, profile, batch)


def replenish_limited_use_keys(
    store: Store,
    mpan: str,
    *,
    count: int | None = None,
    channel: str = "device",
    config: TspConfig | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A new batch of limited-use keys for the next ATCs of an active HCE token
    (``emvtap card replenish`` calls this through the admin API)."""
    config = config or TspConfig()
    now = now or utc_now()
    count = count or config.luk_batch_size
    if not 1 <= count <= 1000:
        raise ProvisioningError("bad_count", "a batch holds 1 to 1000 keys")
    with store.transaction():
        token = store.token(mpan)
        if token is None:
            raise ProvisioningError("unknown_token", f"no token …{mpan[-4:]}")
        if not token.limited_use:
            raise ProvisioningError("not_limited_use", "the token is not an HCE token")
        if token.state is not TokenState.ACTIVE:
            raise ProvisioningError("token_not_active", f"the token is {token.state}")
        status = store.limited_use_key_status(mpan)
        first = max(status["highest_atc"], token.max_atc) + 1
        batch_no = status["last_batch"] + 1
        card = store.card(token.span)
        batch = _limited_use_batch(
            store,
            mpan,
            token.key_ac,
            token.key_smi,
            token.key_smc,
            first_atc=first,
            count=count,
            batch=batch_no,
            now=now,
            cvn=token.cvn,
        )
        batch["no_password_limit"] = card.no_password_limit if card else 0
        store.append_event(
            channel=channel,
            event="token.keys_replenished",
            subject=f"token:{mpan}",
            mpan=mpan,
            from_state=token.state,
            to_state=token.state,
            detail={"batch": batch_no, "first_atc": first, "count": count},
            now=now,
        )
    return batch
