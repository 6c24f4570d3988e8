"""Register an already personalised device card (an ``emvtap perso`` profile) with the switch:
the account and physical card (SPAN), the device, and the token (MPAN → SPAN, state, ICC master
keys) — so that taps of that card can be authorised (``emvtap switch enroll``).

The profile is read with the core's model (:meth:`emvtap.profile.CardProfile.from_dict`, format
in docs/contracts.md): a profile it refuses is refused here with its message. The switch uses
``pan`` (the MPAN), ``psn``, ``expiry``, ``token``, and the first application's ``keys`` and
``cvn``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emvtap.profile import CardProfile, ProfileError
from switch.domain import default_domain
from switch.pin import hash_pin
from switch.store import Store, StoreError
from switch.token_states import TokenState

__all__ = ["EnrollConflict", "EnrollError", "enroll_profile", "enrolment_status", "load_profile"]


class EnrollError(ValueError):
    """A profile the switch cannot register (not a device card, or malformed)."""


class EnrollConflict(EnrollError):
    """The MPAN is enrolled already, with other card keys: another card with the same number.
    Replacing its keys would make the enrolled card's taps decline (cryptogram failure)."""


def load_profile(path: str | Path) -> CardProfile:
    """The profile at ``path``; :class:`EnrollError` saying why when it is not one."""
    try:
        return CardProfile.load(path)
    except OSError as exc:
        raise EnrollError(f"{path}: cannot read the profile ({exc})") from None
    except ProfileError as exc:
        raise EnrollError(f"bad profile: {exc}") from None


def _card_profile(profile: CardProfile | Mapping[str, Any]) -> CardProfile:
    if isinstance(profile, CardProfile):
        return profile
    try:
        return CardProfile.from_dict(dict(profile))
    except ProfileError as exc:
        raise EnrollError(f"bad profile: {exc}") from None


def _same_card(token: Any, span: str, keys: tuple[bytes, bytes, bytes]) -> bool:
    """The enrolled token is this card: same SPAN, same three keys (compared in constant
    time)."""
    same_keys = [hmac.compare_digest(a, b) for a, b in
                 zip((token.key_ac, token.key_smi, token.key_smc), keys, strict=True)]
    return all(same_keys) and hmac.compare_digest(token.span.encode(), span.encode())


def enrolment_status(store: Store, profile: CardProfile | Mapping[str, Any]) -> str:
    """``"new"`` (MPAN not enrolled, or not a device card: :func:`enroll_profile` says so),
    ``"same"`` (enrolled, this card) or ``"different"`` (enrolled with other keys or SPAN)."""
    card_profile = _card_profile(profile)
    token = card_profile.token
    if token is None:
        return "new"
    existing = store.token(token.mpan)
    if existing is None:
        return "new"
    keys = card_profile.application.keys
    same = _same_card(existing, token.span, (keys.ac, keys.smi, keys.smc))
    return "same" if same else "different"


def enroll_profile(
    store: Store,
    profile: CardProfile | Mapping[str, Any],
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
    replaced). ``pin`` sets the account's transaction PIN (docs/domain.md: the device card
    shares the SPAN account's PIN)."""
    card_profile = _card_profile(profile)
    token = card_profile.token
    if token is None:
        raise EnrollError("the profile has no token: it is not a device card")
    mpan, span, device_id = token.mpan, token.span, token.device_id
    if card_profile.pan != mpan:
        raise EnrollError("profile pan and token.mpan differ")
    span_expiry, token_expiry = token.span_expiry[:4], token.token_expiry[:4]
    trid, par = token.token_requestor_id, token.par
    app = card_profile.application
    if app.extra.get("key_mode") == "limited-use" or not any(app.keys.ac):
        raise EnrollError(
            "the profile is an HCE card without master keys: its keys come from the token"
            " service (emvtap switch provision --device-type hce, or emvtap wallet add-card)"
        )
    key_triple = (app.keys.ac, app.keys.smi, app.keys.smc)
    psn, cvn = card_profile.psn, app.cvn

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
                to_state="active",  # the physical card's status
                detail={"account_id": account_id},
            )
        else:
            account_id = card.account_id
        if pin is not None:
            store.update_account(account_id, pin_hash=hash_pin(pin))
        if store.device(device_id) is None:
            store.add_device(device_id, token.device_type, account_id)
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
                to_state=TokenState.ACTIVE,
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
