"""The issuer host behind the switch: it sees the real card number (SPAN), never the token
(tokens.md "Financial transactions"), and decides on card status, expiry, currency, the in-app
no-password limit, the daily limit and the available balance or credit.

One check per row of :data:`ISSUER_CHECKS`, first failure wins; an approval posts the amount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from switch.codes import Reason
from switch.store import Account, Card, Store

__all__ = ["ISSUER_CHECKS", "IssuerRequest", "decide"]


@dataclass(frozen=True)
class IssuerRequest:
    """A de-tokenised request as the issuer receives it."""

    span: str
    amount: int
    currency: str
    entry_mode: str  # DE 22
    channel: str | None  # DE 48 sub-element 05: P contactless POS, A in-app
    device_verified: bool | None  # DE 48 sub-element 07
    yymm: str  # today, for expiry checks
    day: str  # today YYYY-MM-DD, for the daily limit
    pin_ok: bool | None = None  # None: no online PIN in the request


@dataclass(frozen=True)
class _Ctx:
    req: IssuerRequest
    card: Card
    account: Account
    spent_today: int


def _in_app(req: IssuerRequest) -> bool:
    return req.entry_mode[:2] == "81" or req.channel == "A"


ISSUER_CHECKS: tuple[tuple[Reason, Callable[[_Ctx], bool]], ...] = (
    (Reason.CARD_CANCELLED, lambda c: c.card.status == "cancelled"),
    (Reason.CARD_LOST, lambda c: c.card.status == "lost"),
    (Reason.CARD_EXPIRED, lambda c: c.card.expiry < c.req.yymm),
    (Reason.CURRENCY_MISMATCH, lambda c: c.account.currency != c.req.currency),
    (Reason.PIN_INCORRECT, lambda c: c.req.pin_ok is False),
    (
        Reason.IN_APP_VERIFICATION_REQUIRED,
        lambda c: (
            _in_app(c.req) and c.req.amount > c.card.no_password_limit and not c.req.device_verified
        ),
    ),
    (
        Reason.DAILY_LIMIT,
        lambda c: (
            c.account.daily_limit is not None
            and c.spent_today + c.req.amount > c.account.daily_limit
        ),
    ),
    (Reason.INSUFFICIENT_FUNDS, lambda c: c.account.available < c.req.amount),
)


def decide(store: Store, req: IssuerRequest) -> tuple[Reason, int | None]:
    """``(reason, account_id)``; on approval the amount is already debited (in the caller's
    transaction, so it commits together with the authorization record)."""
    card = store.card(req.span)
    if card is None:
        return Reason.UNKNOWN_TOKEN, None
    account = store.account(card.account_id)
    if account is None:
        return Reason.UNKNOWN_TOKEN, None
    ctx = _Ctx(req, card, account, store.approved_today(account.account_id, req.day))
    for reason, failed in ISSUER_CHECKS:
        if failed(ctx):
            return reason, account.account_id
    store.post(account.account_id, -req.amount)
    return Reason.APPROVED, account.account_id
