"""The token card lifecycle (docs/domain.md, "Token lifecycle"; TF v2.3).

Every event is one row of :data:`LIFECYCLE`: who may ask for it (the channel: ``device`` = the
wallet / handset maker, ``bank`` = the issuer, ``network`` = the switch operator), what it does
to its subject (a token, a physical card, a device) and what it does to **every affected MPAN**.
The README table (``switch/LIFECYCLE.md``) is this table in prose, one test per row.

Suspension is modelled as *holds*: each cause that suspends a token adds a named hold (``bank``,
``device``, ``network``, ``card_lost``, ``device_lost``, ``passcode_removed``); the token is
``suspended`` while any hold remains and ``active`` when the last is released. So a device found
again does not resume a token the bank suspended. ``deleted`` is final.

Every change is appended to the event log with the channel that asked, in the same transaction
as the change itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from emvtap.masking import masked_repr
from switch.store import Store, StoreError, Token, utc_now
from switch.token_states import Effect, TokenEffect, TokenState

__all__ = [
    "CHANNELS",
    "LIFECYCLE",
    "LifecycleError",
    "Policy",
    "TokenChange",
    "apply_event",
]

CHANNELS = ("device", "bank", "network")
_TOKEN_CHANNELS = frozenset(CHANNELS)
_CARD_CHANNELS = frozenset({"bank", "network"})
_DEVICE_CHANNELS = frozenset({"device", "bank", "network"})


class LifecycleError(ValueError):
    """An event that is unknown, asked for by a channel that may not, or aimed at a subject
    that does not exist or cannot take it (e.g. resuming a deleted token)."""


class Rule(NamedTuple):
    subject: str  # token | card | device
    channels: frozenset[str]
    subject_update: Mapping[str, Any]  # columns set on the card or device
    token_effect: Effect  # what it does to every affected token
    description: str


def _hold(name: str) -> Effect:
    return Effect(TokenEffect.HOLD, name)


def _release(name: str) -> Effect:
    return Effect(TokenEffect.RELEASE, name)


_DELETE, _DEFAULT, _UPDATE = (Effect(TokenEffect.DELETE), Effect(TokenEffect.DEFAULT),
                              Effect(TokenEffect.UPDATE))
_REMAP, _PUSH, _NONE = Effect(TokenEffect.REMAP), Effect(TokenEffect.PUSH), Effect(TokenEffect.NONE)

#: The lifecycle effect table. ``{channel}`` in a hold name is the asking channel.
LIFECYCLE: dict[str, Rule] = {
    # active, started by the user (device channel) — or the bank / network on their behalf
    "token.suspend": Rule(
        "token", _TOKEN_CHANNELS, {}, _hold("{channel}"), "suspend one device card"
    ),
    "token.resume": Rule(
        "token", _TOKEN_CHANNELS, {}, _release("{channel}"),
        "lift the asking channel's suspension",
    ),
    "token.delete": Rule("token", _TOKEN_CHANNELS, {}, _DELETE, "delete one device card"),
    "token.set_default": Rule(
        "token", frozenset({"device", "network"}), {}, _DEFAULT, "make it the device's default"
    ),
    # passive: the bank updates a device card (token expiry, domain)
    "token.update": Rule(
        "token", frozenset({"bank", "network"}), {}, _UPDATE, "bank updates token data"
    ),
    # passive: events on the physical card
    "card.lost": Rule(
        "card", _CARD_CHANNELS, {"status": "lost"}, _hold("card_lost"), "physical card lost"
    ),
    "card.found": Rule(
        "card", _CARD_CHANNELS, {"status": "active"}, _release("card_lost"),
        "physical card found",
    ),
    "card.renewed": Rule(
        "card", _CARD_CHANNELS, {}, _REMAP, "new expiry and/or new PAN; tokens survive"
    ),
    "card.cancelled": Rule(
        "card", _CARD_CHANNELS, {"status": "cancelled"}, _DELETE, "physical card cancelled"
    ),
    "card.no_password_limit": Rule(
        "card", _CARD_CHANNELS, {}, _PUSH, "issuer changes the in-app no-password limit"
    ),
    # passive: events on the device
    "device.lost": Rule(
        "device", _DEVICE_CHANNELS, {"status": "lost"}, _hold("device_lost"), "device lost"
    ),
    "device.found": Rule(
        "device", _DEVICE_CHANNELS, {"status": "active"}, _release("device_lost"),
        "device found",
    ),
    "device.wiped": Rule(
        "device", _DEVICE_CHANNELS, {"status": "wiped"}, _DELETE, "device erased remotely"
    ),
    "device.restored": Rule(
        "device",
        _DEVICE_CHANNELS,
        {"status": "active"},
        _DELETE,
        "device fully restored (factory reset): its SE content is gone",
    ),
    # passive: the user's account on the device
    "device.signed_out": Rule(
        "device", _DEVICE_CHANNELS, {"signed_in": 0}, _DELETE, "account signed out"
    ),
    "device.signed_in": Rule(
        "device", _DEVICE_CHANNELS, {"signed_in": 1}, _NONE, "account signed in again"
    ),
    "device.passcode_removed": Rule(
        "device",
        _DEVICE_CHANNELS,
        {"passcode_set": 0},
        Effect(TokenEffect.POLICY, "passcode_removed"),
        "passcode or biometrics removed",
    ),
    "device.passcode_set": Rule(
        "device",
        _DEVICE_CHANNELS,
        {"passcode_set": 1},
        _release("passcode_removed"),
        "passcode or biometrics set again",
    ),
}


@dataclass(frozen=True)
class Policy:
    """Operator choices (docs/domain.md): passcode removed → ``suspend`` or ``delete``."""

    passcode_removed: str = "suspend"

    def effect(self, name: str) -> Effect:
        if name == "passcode_removed":
            if self.passcode_removed not in ("suspend", "delete"):
                raise LifecycleError("passcode_removed policy is suspend or delete")
            return _hold("passcode_removed") if self.passcode_removed == "suspend" else _DELETE
        raise LifecycleError(f"no policy {name!r}")


@dataclass(frozen=True)
class TokenChange:
    mpan: str
    from_state: TokenState
    to_state: TokenState
    holds: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return masked_repr(self, ("mpan",))


class _Run:
    """One event being applied: collects the token changes and writes their log rows."""

    def __init__(self, store: Store, event: str, channel: str, now: datetime) -> None:
        self.store, self.event, self.channel, self.now = store, event, channel, now
        self.changes: list[TokenChange] = []
        self.touched_devices: set[str] = set()

    def log(self, token: Token, to_state: TokenState, holds: set[str], **detail: Any) -> None:
        self.changes.append(
            TokenChange(token.mpan, token.state, to_state, tuple(sorted(holds)), detail)
        )
        self.store.append_event(
            channel=self.channel,
            event=self.event,
            subject=f"token:{token.mpan}",
            mpan=token.mpan,
            from_state=token.state,
            to_state=to_state,
            detail={"holds": sorted(holds), **detail},
            now=self.now,
        )

    def hold(self, token: Token, name: str) -> None:
        holds = set(token.holds) | {name}
        self.store.update_token(token.mpan, state=TokenState.of_holds(holds), holds=holds,
                                now=self.now)
        self.log(token, TokenState.of_holds(holds), holds)

    def release(self, token: Token, name: str) -> None:
        holds = set(token.holds) - {name}
        self.store.update_token(token.mpan, state=TokenState.of_holds(holds), holds=holds,
                                now=self.now)
        self.log(token, TokenState.of_holds(holds), holds)

    def delete(self, token: Token) -> None:
        self.store.update_token(token.mpan, state=TokenState.DELETED, is_default=False,
                                now=self.now)
        self.touched_devices.add(token.device_id)
        self.log(token, TokenState.DELETED, set(token.holds), was_default=token.is_default)

    def promote_defaults(self) -> None:
        """docs/domain.md: exactly one default per device — deleting the default promotes the
        oldest remaining device card."""
        for device_id in sorted(self.touched_devices):
            live = self.store.tokens(device_id=device_id, include_deleted=False)
            if live and not any(t.is_default for t in live):
                self.store.update_token(live[0].mpan, is_default=True, now=self.now)
                self.log(live[0], live[0].state, set(live[0].holds), became_default=True)


def _apply_token_effect(run: _Run, effect: Effect, token: Token,
                        params: Mapping[str, Any]) -> None:
    name = effect.hold_name(run.channel)
    if token.state is TokenState.DELETED:
        return  # final: nothing touches a deleted token
    if effect.kind is TokenEffect.HOLD:
        run.hold(token, name)
    elif effect.kind is TokenEffect.RELEASE:
        run.release(token, name)
    elif effect.kind is TokenEffect.DELETE:
        run.delete(token)
    elif effect.kind is TokenEffect.PUSH:
        run.log(token, token.state, set(token.holds), pushed=dict(params))
    elif effect.kind is TokenEffect.NONE:
        pass
    else:
        raise LifecycleError(f"effect {effect} does not apply to one token")


def _token_event(run: _Run, rule: Rule, effect: Effect, mpan: str,
                 params: Mapping[str, Any]) -> None:
    token = run.store.token(mpan)
    if token is None:
        raise LifecycleError(f"no token …{mpan[-4:]}")
    if token.state is TokenState.DELETED:
        raise LifecycleError(f"token …{mpan[-4:]} is deleted")
    if effect.kind is TokenEffect.DEFAULT:
        for other in run.store.tokens(device_id=token.device_id, include_deleted=False):
            if other.is_default and other.mpan != mpan:
                run.store.update_token(other.mpan, is_default=False, now=run.now)
                run.log(other, other.state, set(other.holds), default=False)
        run.store.update_token(mpan, is_default=True, now=run.now)
        run.log(token, token.state, set(token.holds), default=True)
    elif effect.kind is TokenEffect.UPDATE:
        allowed = {"token_expiry", "domain", "token_requestor_id", "assurance_level"}
        values = {k: v for k, v in params.items() if k in allowed}
        if not values or set(params) - allowed:
            raise LifecycleError(f"token.update takes {sorted(allowed)}")
        run.store.update_token(mpan, now=run.now, **values)
        run.log(token, token.state, set(token.holds), updated=sorted(values))
    else:
        if (
            effect.kind is TokenEffect.RELEASE
            and effect.hold_name(run.channel) not in token.holds
            and token.state is TokenState.SUSPENDED
        ):
            raise LifecycleError(
                f"token …{mpan[-4:]} is held by {list(token.holds)}, not by {run.channel}"
            )
        _apply_token_effect(run, effect, token, params)
        if effect.kind is TokenEffect.DELETE:
            run.promote_defaults()


def _card_event(run: _Run, rule: Rule, effect: Effect, span: str,
                params: Mapping[str, Any]) -> None:
    card = run.store.card(span)
    if card is None:
        raise LifecycleError(f"no card …{span[-4:]}")
    if card.status == "cancelled":
        raise LifecycleError(f"card …{span[-4:]} is cancelled")
    tokens = run.store.tokens(span=span, include_deleted=False)
    subject_detail: dict[str, Any] = {}
    if effect.kind is TokenEffect.REMAP:
        new_span = params.get("new_span")
        new_expiry = params.get("new_expiry") or card.expiry
        if not new_span and "new_expiry" not in params:
            raise LifecycleError("card.renewed needs new_expiry and/or new_span")
        if new_span and new_span != span:
            run.store.add_card(
                new_span,
                card.account_id,
                new_expiry,
                psn=card.psn,
                no_password_limit=card.no_password_limit,
                par=card.par,
            )
            run.store.update_card(span, status="cancelled", replaced_by=new_span)
            for token in tokens:
                try:
                    run.store.update_token(token.mpan, span=new_span, now=run.now)
                except StoreError as exc:
                    raise LifecycleError(str(exc)) from None
                holds = set(token.holds) - {"card_lost"}
                run.store.update_token(token.mpan, state=TokenState.of_holds(holds), holds=holds,
                                       now=run.now)
                run.log(token, TokenState.of_holds(holds), holds, remapped_to=f"…{new_span[-4:]}")
            subject_detail = {"replaced_by": f"…{new_span[-4:]}", "expiry": new_expiry}
        else:
            run.store.update_card(span, expiry=new_expiry)
            for token in tokens:
                run.log(token, token.state, set(token.holds), span_expiry=new_expiry)
            subject_detail = {"expiry": new_expiry}
    elif effect.kind is TokenEffect.PUSH:
        if "amount" not in params:
            raise LifecycleError("card.no_password_limit needs amount")
        amount = int(params["amount"])
        run.store.update_card(span, no_password_limit=amount)
        for token in tokens:
            _apply_token_effect(run, _PUSH, token, {"no_password_limit": amount})
        subject_detail = {"no_password_limit": amount}
    else:
        if rule.subject_update:
            run.store.update_card(span, **rule.subject_update)
        for token in tokens:
            _apply_token_effect(run, effect, token, params)
        if effect.kind is TokenEffect.DELETE:
            run.promote_defaults()
    run.store.append_event(
        channel=run.channel,
        event=run.event,
        subject=f"card:{span}",
        from_state=card.status,
        to_state=rule.subject_update.get("status", card.status),
        detail=subject_detail,
        now=run.now,
    )


def _device_event(
    run: _Run, rule: Rule, effect: Effect, device_id: str, params: Mapping[str, Any]
) -> None:
    device = run.store.device(device_id)
    if device is None:
        raise LifecycleError(f"no device {device_id}")
    run.store.update_device(device_id, **rule.subject_update)
    for token in run.store.tokens(device_id=device_id, include_deleted=False):
        _apply_token_effect(run, effect, token, params)
    run.store.append_event(
        channel=run.channel,
        event=run.event,
        subject=f"device:{device_id}",
        from_state=device.status,
        to_state=rule.subject_update.get("status", device.status),
        detail=dict(rule.subject_update),
        now=run.now,
    )


def apply_event(
    store: Store,
    event: str,
    subject: str,
    *,
    channel: str,
    params: Mapping[str, Any] | None = None,
    policy: Policy | None = None,
    now: datetime | None = None,
) -> list[TokenChange]:
    """Apply one lifecycle event to ``subject`` (an MPAN, a SPAN or a device id, per the
    event's row) and return what happened to each affected MPAN. All or nothing."""
    rule = LIFECYCLE.get(event)
    if rule is None:
        raise LifecycleError(f"unknown event {event!r}; one of {sorted(LIFECYCLE)}")
    if channel not in rule.channels:
        raise LifecycleError(f"{event} cannot come from the {channel} channel")
    effect = rule.token_effect
    if effect.kind is TokenEffect.POLICY:
        effect = (policy or Policy()).effect(effect.name)
    run = _Run(store, event, channel, now or utc_now())
    params = params or {}
    handler = {"token": _token_event, "card": _card_event, "device": _device_event}[rule.subject]
    with store.transaction():
        handler(run, rule, effect, subject, params)
    return run.changes
