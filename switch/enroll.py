"""Register an already personalised device card (an ``emvtap perso`` profile) with the switch:
the account and physical card (SPAN), the device, and the token (MPAN → SPAN, state, ICC master
keys) — so that taps of that card can be authorised (issue 2 §6, ``emvtap switch enroll``).

The profile is read as plain JSON (format in docs/contracts.md); only the fields the switch needs
are used: ``pan`` (the MPAN), ``psn``, ``expiry``, ``token{...}``, ``applications[0].keys`` and
``applications[0].cvn``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from switch.domain import default_domain
from switch.pin import hash_pin
from switch.store import Store, StoreError

__all__ = ["EnrollConflict", "EnrollError", "enroll_profile", "enrolment_status", "load_profile"]

PROFILE_FORMAT = "emvtap-card-profile/1"
DEVICE_TYPES = ("handset-se", "wearable-se", "hce")


class EnrollError(ValueError):
    """A profile the switch cannot register (not a device card, or malformed)."""


class EnrollConflict(EnrollError):
    """The MPAN is enrolled already, with other card keys: another card with the same number.
    Replacing its keys would make the enrolled card's taps decline (cryptogram failure)."""


def load_profile(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EnrollError(f"{path}: cannot read the profile ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        raise EnrollError(f"{path}: not an {PROFILE_FORMAT} profile")
    return data


def _malformed(exc: Exception) -> EnrollError:
    """What is wrong with a profile, in the profile's words (not Python's)."""
    if isinstance(exc, KeyError):
        return EnrollError(f"the profile has no {exc.args[0]!r} field")
    if isinstance(exc, IndexError):
        return EnrollError("the profile has no application (applications is empty)")
    return EnrollError("the profile's token, applications or keys are not JSON objects/lists")


def _same_card(token: Any, span: str, keys: tuple[bytes, bytes, bytes]) -> bool:
    """The enrolled token is this card: same SPAN, same three keys (compared in constant
    time)."""
    same_keys = [hmac.compare_digest(a, b) for a, b in
                 zip((token.key_ac, token.key_smi, token.key_smc), keys, strict=True)]
    return all(same_keys) and hmac.compare_digest(token.span.encode(), span.encode())


def enrolment_status(store: Store, profile: Mapping[str, Any]) -> str:
    """``"new"`` (MPAN not enrolled), ``"same"`` (enrolled, this card) or ``"different"``
    (enrolled with other keys or SPAN)."""
    token = profile.get("token")
    if not isinstance(token, Mapping):
        return "new"  # not a device card: enroll_profile says so
    try:
        mpan, span = str(token["mpan"]), str(token["span"])
        keys = profile["applications"][0]["keys"]
        key_triple = (_hex_key(keys, "ac"), _hex_key(keys, "smi"), _hex_key(keys, "smc"))
    except (KeyError, IndexError, TypeError) as exc:
        raise _malformed(exc) from None
    existing = store.token(mpan)
    if existing is None:
        return "new"
    return "same" if _same_card(existing, span, key_triple) else "different"


def _hex_key(keys: Mapping[str, Any], name: str) -> bytes:
    try:
        key = bytes.fromhex(keys[name])
    except (KeyError, TypeError, ValueError):
        raise EnrollError(f"applications[0].keys.{name} missing or not hex") from None
    if len(key) != 16:
        raise EnrollError(f"applications[0].keys.{name} is {len(key)} bytes, not 16")
    return key


def enroll_profile(
    store: Store,
    profile: Mapping[str, Any],
    *,
    balance: int = 100_000,
    currency: str = "156",
    kind: str = "debit",
    daily_limit: int | None = None,
    no_password_limit: int = 0,
    pin: str | None = None,
    channel: str = "network",
    force: bool = False,
) -> str:
    """Register the profile's token; returns the MPAN. Re-enrolling the same card refreshes its
    token data and keeps its state, ATC history and account; an MPAN enrolled with other keys
    or on another card raises :class:`EnrollConflict` unless ``force`` (then the keys are
    replaced). ``pin`` sets the account's transaction PIN (the device card shares the SPAN
    account's PIN)."""
    token = profile.get("token")
    if not isinstance(token, Mapping):
        raise EnrollError("the profile has no token: it is not a device card")
    try:
        mpan, span = str(token["mpan"]), str(token["span"])
        span_expiry = str(token["span_expiry"])[:4]
        token_expiry = str(token.get("token_expiry") or str(profile["expiry"])[:4])[:4]
        device_id, device_type = str(token["device_id"]), str(token["device_type"])
        trid, par = str(token["token_requestor_id"]), str(token["par"])
        app = profile["applications"][0]
        keys = app["keys"]
    except (KeyError, IndexError, TypeError) as exc:
        raise _malformed(exc) from None
    if str(profile.get("pan", mpan)) != mpan:
        raise EnrollError("profile pan and token.mpan differ")
    if device_type not in DEVICE_TYPES:
        raise EnrollError(f"device_type {device_type!r} not one of {DEVICE_TYPES}")
    key_triple = (_hex_key(keys, "ac"), _hex_key(keys, "smi"), _hex_key(keys, "smc"))
    psn = str(profile.get("psn", "00"))
    cvn = int(app.get("cvn", 1))

    with store.transaction():
        card = store.card(span)
        if card is None:
            account_id = store.add_account(
                kind=kind, currency=currency, balance=balance, daily_limit=daily_limit
            )
            store.add_card(
                span, account_id, span_expiry, psn=psn, no_password_limit=no_password_limit
            )
            store.append_event(
                channel=channel,
                event="card.enrolled",
                subject=f"card:{span}",
                to_state="active",
                detail={"account_id": account_id},
            )
        else:
            account_id = card.account_id
        if pin is not None:
            store.update_account(account_id, pin_hash=hash_pin(pin))
        if store.device(device_id) is None:
            store.add_device(device_id, device_type, account_id)
        existing = store.token(mpan)
        if existing is not None and not force and not _same_card(existing, span, key_triple):
            raise EnrollConflict(
                f"token …{mpan[-4:]} is enrolled already with other card keys (another card "
                "with the same MPAN); --force replaces its keys, and the enrolled card's taps "
                "will then decline")
        if existing is None:
            is_default = not store.tokens(device_id=device_id, include_deleted=False)
            try:
                store.add_token(
                    mpan=mpan,
                    span=span,
                    device_id=device_id,
                    token_expiry=token_expiry,
                    psn=psn,
                    token_requestor_id=trid,
                    par=par,
                    keys=key_triple,
                    cvn=cvn,
                    is_default=is_default,
                    domain=default_domain("contactless"),
                )
            except StoreError as exc:
                raise EnrollError(str(exc)) from None
            store.append_event(
                channel=channel,
                event="token.enrolled",
                subject=f"token:{mpan}",
                mpan=mpan,
                to_state="active",
                detail={"device_id": device_id, "default": is_default},
            )
        else:
            store.update_token(
                mpan,
                key_ac=key_triple[0],
                key_smi=key_triple[1],
                key_smc=key_triple[2],
                psn=psn,
                cvn=cvn,
                token_expiry=token_expiry,
                par=par,
                token_requestor_id=trid,
            )
            store.append_event(
                channel=channel,
                event="token.re-enrolled",
                subject=f"token:{mpan}",
                mpan=mpan,
                from_state=existing.state,
                to_state=existing.state,
            )
    return mpan
