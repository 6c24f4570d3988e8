"""The issuer host behind the switch: it sees the real card number (SPAN), never the token
(docs/domain.md), and decides on card status, expiry, currency, online PIN
(:mod:`switch.pin`), the in-app no-password limit, the daily limit and the available balance or
credit.

One check per row of :data:`ISSUER_CHECKS`, first failure wins; an approval posts the amount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from emvtap.masking import masked_repr
from switch.codes import Reason
from switch.pin import TEST_ZPK, verify_pin
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
    pin_block: bytes | None = field(default=None, repr=False)  # DE 52, under the ZPK
    pin_pan: str = ""  # the PAN the terminal built the PIN block with (the MPAN)
    online_pin_cvm: bool = False  # CVM Results 9F34 say "enciphered PIN online"

    def __repr__(self) -> str:
        return masked_repr(self, ("span", "pin_pan"))


@dataclass(frozen=True)
class _Ctx:
    req: IssuerRequest
    card: Card
    account: Account
    spent_today: int
    pin_ok: bool | None  # None: no PIN in the request


def _in_app(req: IssuerRequest) -> bool:
    return req.entry_mode[:2] == "81" or req.channel == "A"


ISSUER_CHECKS: tuple[tuple[Reason, Callable[[_Ctx], bool]], ...] = (
    (Reason.CARD_CANCELLED, lambda c: c.card.status == "cancelled"),
    (Reason.CARD_LOST, lambda c: c.card.status == "lost"),
    (Reason.CARD_EXPIRED, lambda c: c.card.expiry < c.req.yymm),
    (Reason.CURRENCY_MISMATCH, lambda c: c.account.currency != c.req.currency),
    (Reason.PIN_REQUIRED, lambda c: c.req.online_pin_cvm and c.req.pin_block is None),
    (Reason.PIN_INCORRECT, lambda c: c.pin_ok is False),
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


def decide(store: Store, req: IssuerRequest, zpk: bytes = TEST_ZPK) -> tuple[Reason, int | None]:
    """``(reason, account_id)``; on approval the amount is already debited (in the caller's
    transaction, so it commits together with the authorization record)."""
    found = store.card_and_account(req.span)
    if found is None:
        return Reason.UNKNOWN_TOKEN, None
    card, account = found
    pin_ok = (
        verify_pin(account.pin_hash, zpk, req.pin_block, req.pin_pan)
        if req.pin_block is not None
        else None
    )
    ctx = _Ctx(req, card, account, store.approved_today(account.account_id, req.day), pin_ok)
    for reason, failed in ISSUER_CHECKS:
        if failed(ctx):
            return reason, account.account_id
    store.post(account.account_id, -req.amount, day=req.day)
    return Reason.APPROVED, account.account_id
