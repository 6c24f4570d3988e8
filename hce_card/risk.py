"""Card risk management and card action analysis (EMV 4.4 Book 3, 10.8 and 9.3 "card action
analysis"; Contactless C-3/C-7 card risk management on the quick path), and the Card
Verification Results the card reports in its IAD.

The card's parameters come from the profile (``risk`` and ``extra.risk``), overridden by what
the issuer wrote with PUT DATA (:data:`PUT_DATA_PARAMETERS`). The checks are a table of
(condition, reason) rows; the first cryptogram never goes above what the terminal asked for
(AAC < TC < ARQC, Book 3 6.5.5.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emvtap.bits import Bit, CryptogramType, set_bits
from emvtap.profile import ApplicationProfile
from hce_card.state import AppState

__all__ = [
    "CVR_BITS",
    "PUT_DATA_PARAMETERS",
    "CvrFacts",
    "Decision",
    "RiskParameters",
    "TransactionFacts",
    "build_cvr",
    "first_ac_decision",
    "offline_reasons",
    "second_ac_decision",
    "velocity_exceeded",
]

DEFAULT_CURRENCY = bytes.fromhex("0156")


def _n(value: bytes) -> int:
    """A numeric (n, BCD) data element as an integer; non-BCD reads as 0."""
    text = value.hex()
    return int(text) if text.isdigit() else 0


@dataclass(frozen=True)
class PutDataParameter:
    """A data element the issuer may update with PUT DATA, and its length (Book 3 Annex A)."""

    name: str
    length: int
    numeric: bool


#: PUT DATA targets (tag → parameter). 9F14/9F23 the consecutive offline limits, 9F54/9F5C the
#: cumulative offline amount limits, 9F79/9F77/9F78/9F6D the PBOC e-cash balance, balance limit,
#: single transaction limit and reset threshold (JR/T 0025.13).
PUT_DATA_PARAMETERS: dict[int, PutDataParameter] = {
    0x9F14: PutDataParameter("lower consecutive offline limit", 1, False),
    0x9F23: PutDataParameter("upper consecutive offline limit", 1, False),
    0x9F54: PutDataParameter("cumulative offline amount limit", 6, True),
    0x9F5C: PutDataParameter("cumulative offline amount upper limit", 6, True),
    0x9F79: PutDataParameter("e-cash balance", 6, True),
    0x9F77: PutDataParameter("e-cash balance limit", 6, True),
    0x9F78: PutDataParameter("e-cash single transaction limit", 6, True),
    0x9F6D: PutDataParameter("e-cash reset threshold", 6, True),
}


@dataclass(frozen=True)
class RiskParameters:
    """The card's risk parameters for one transaction."""

    allow_offline: bool = True
    offline_amount_limit: int = 0
    lower_consecutive_offline_limit: int = 0
    upper_consecutive_offline_limit: int = 0
    cumulative_offline_limit: int | None = None
    cumulative_offline_upper_limit: int | None = None
    currency: bytes = DEFAULT_CURRENCY
    #: decline (AAC) in the second GENERATE AC when the ARPC fails or is missing
    issuer_authentication_required: bool = True
    #: the in-app no-password limit (docs/domain.md, "Two ways to pay"; pushed with the profile and
    #: each key batch as ``no_password_limit``): above it, CDCVM is needed
    cdcvm_limit: int | None = None
    #: PBOC e-cash purse (None: no e-cash on this application)
    ecash_balance: int | None = None
    ecash_single_limit: int | None = None

    @classmethod
    def for_application(cls, app: ApplicationProfile, state: AppState) -> RiskParameters:
        """Profile values, then ``extra.risk``, then PUT DATA values from the state."""
        extra: Mapping[str, Any] = app.extra.get("risk", {})
        ecash: Mapping[str, Any] = app.extra.get("ecash", {})
        data = {int(k, 16): bytes.fromhex(v) for k, v in state.data.items()}
        lower = app.risk.consecutive_offline_limit
        lower = data[0x9F14][0] if 0x9F14 in data else lower
        upper = int(extra.get("upper_consecutive_offline_limit", lower))
        upper = data[0x9F23][0] if 0x9F23 in data else upper

        def amount(tag: int, key: str, source: Mapping[str, Any]) -> int | None:
            if tag in data:
                return _n(data[tag])
            return int(source[key]) if source.get(key) is not None else None

        limit = state.no_password_limit
        for source in (extra.get("cdcvm_limit"), app.extra.get("cdcvm_limit"),
                       app.extra.get("no_password_limit")):
            limit = source if limit is None else limit
        return cls(
            allow_offline=app.risk.allow_offline,
            offline_amount_limit=app.risk.offline_amount_limit,
            lower_consecutive_offline_limit=lower,
            upper_consecutive_offline_limit=max(upper, lower),
            cumulative_offline_limit=amount(0x9F54, "cumulative_offline_limit", extra),
            cumulative_offline_upper_limit=amount(0x9F5C, "cumulative_offline_upper_limit",
                                                  extra),
            currency=bytes.fromhex(str(extra.get("currency", "0156"))),
            issuer_authentication_required=bool(extra.get("issuer_authentication_required",
                                                          True)),
            cdcvm_limit=int(limit) if limit is not None else None,
            ecash_balance=amount(0x9F79, "balance", ecash),
            ecash_single_limit=amount(0x9F78, "single_limit", ecash),
        )


@dataclass(frozen=True)
class TransactionFacts:
    """What card risk management looks at: the transaction and the card's counters."""

    amount: int
    currency: bytes
    state: AppState

    @property
    def new_card(self) -> bool:
        """No online transaction yet (VIS CVR byte 3 b5)."""
        return self.state.last_online_atc == 0


def offline_reasons(risk: RiskParameters, facts: TransactionFacts) -> list[str]:
    """Book 3 10.8 / C-7 card risk management: every reason the card has to go online rather
    than approve offline (empty: offline approval is allowed)."""
    st = facts.state
    cumulative = st.cumulative_offline_amount + facts.amount
    rows: list[tuple[bool, str]] = [
        (not risk.allow_offline, "card is online-only"),
        (facts.amount > risk.offline_amount_limit, "amount above the card's offline limit"),
        (st.consecutive_offline >= risk.lower_consecutive_offline_limit,
         "lower consecutive offline limit reached"),
        (risk.cumulative_offline_limit is not None and cumulative > risk.cumulative_offline_limit,
         "cumulative offline amount limit exceeded"),
        (facts.currency != risk.currency, "transaction currency is not the card's currency"),
        (st.issuer_authentication_failed, "issuer authentication failed last time"),
        (st.last_online_not_completed, "last online transaction not completed"),
    ]
    return [why for hit, why in rows if hit]


def velocity_exceeded(risk: RiskParameters, facts: TransactionFacts) -> bool:
    """The velocity checks (consecutive offline count, cumulative offline amount) are beyond
    their lower limits (VIS CVR byte 3 b6 "exceeded velocity checking counters")."""
    st = facts.state
    cumulative = st.cumulative_offline_amount + facts.amount
    return st.consecutive_offline >= risk.lower_consecutive_offline_limit or (
        risk.cumulative_offline_limit is not None and cumulative > risk.cumulative_offline_limit)


def upper_limits_exceeded(risk: RiskParameters, facts: TransactionFacts) -> list[str]:
    """The upper velocity limits (Book 3 10.8): beyond them the card declines offline."""
    st = facts.state
    cumulative = st.cumulative_offline_amount + facts.amount
    rows: list[tuple[bool, str]] = [
        (not risk.allow_offline, "card is online-only"),
        (st.consecutive_offline >= risk.upper_consecutive_offline_limit,
         "upper consecutive offline limit reached"),
        (risk.cumulative_offline_upper_limit is not None
         and cumulative > risk.cumulative_offline_upper_limit,
         "cumulative offline amount upper limit exceeded"),
        (facts.amount > risk.offline_amount_limit, "amount above the card's offline limit"),
    ]
    return [why for hit, why in rows if hit]


@dataclass(frozen=True)
class Decision:
    cid: CryptogramType
    reason: str
    #: the velocity checks went beyond a limit (VIS CVR byte 3 b6)
    velocity_exceeded: bool = False


def first_ac_decision(requested: CryptogramType, risk: RiskParameters,
                      facts: TransactionFacts) -> Decision:
    """Card action analysis of the first GENERATE AC (Book 3 9.3; Book 3 6.5.5.4: the card
    never answers with a cryptogram above the one requested)."""
    if requested == CryptogramType.AAC:
        return Decision(CryptogramType.AAC, "terminal requested an AAC")
    if requested == CryptogramType.ARQC:
        return Decision(CryptogramType.ARQC, "terminal requested an online authorisation")
    reasons = offline_reasons(risk, facts)
    if not reasons:
        return Decision(CryptogramType.TC, "offline approval within card limits")
    return Decision(CryptogramType.ARQC, "; ".join(reasons), velocity_exceeded(risk, facts))


def second_ac_decision(
    requested: CryptogramType,
    risk: RiskParameters,
    facts: TransactionFacts,
    issuer: IssuerOutcome,
) -> Decision:
    """Card action analysis of the second GENERATE AC (Book 3 9.3, 10.9): an approval (TC)
    needs the issuer's approval with a valid ARPC, or, when the terminal could not go online
    (ARC Y3/Z3), the card's own offline limits."""
    if requested == CryptogramType.AAC:
        return Decision(CryptogramType.AAC, "terminal requested an AAC")
    if issuer.unable_to_go_online:
        exceeded = upper_limits_exceeded(risk, facts)
        if exceeded:
            return Decision(CryptogramType.AAC,
                            "unable to go online and " + "; ".join(exceeded),
                            velocity_exceeded(risk, facts))
        return Decision(CryptogramType.TC,
                        "unable to go online: approved offline within card limits")
    if issuer.authentication is False:
        if risk.issuer_authentication_required:
            return Decision(CryptogramType.AAC, "issuer authentication failed")
    elif issuer.authentication is None and risk.issuer_authentication_required:
        return Decision(CryptogramType.AAC, "issuer authentication data missing")
    if not issuer.approved:
        return Decision(CryptogramType.AAC, "issuer declined")
    return Decision(CryptogramType.TC, "issuer approved")


@dataclass(frozen=True)
class IssuerOutcome:
    """The online result as the card sees it in the second GENERATE AC."""

    authentication: bool | None  # None: not performed (no ARPC)
    approved: bool
    unable_to_go_online: bool = False


# --- Card Verification Results ------------------------------------------------------------------


@dataclass(frozen=True)
class CvrFacts:
    """What the CVR reports about one cryptogram (:data:`CVR_BITS` names each fact's bit).
    Build it with :meth:`for_cryptogram`, on both paths."""

    first_ac: CryptogramType
    second_ac: CryptogramType | None = None  # None: second GENERATE AC not requested
    issuer_authentication_failed_now: bool = False
    issuer_authentication_performed: bool = False
    unable_to_go_online: bool = False
    last_online_not_completed: bool = False
    velocity_exceeded: bool = False
    new_card: bool = False
    issuer_authentication_failed_last: bool = False
    issuer_authentication_not_performed_last: bool = False
    script_commands_last: int = 0
    script_failed_last: bool = False
    offline_dda_performed: bool = False
    cda_performed: bool = False
    lower_consecutive_exceeded: bool = False
    upper_consecutive_exceeded: bool = False
    extra: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def for_cryptogram(cls, facts: TransactionFacts, first_ac: CryptogramType,
                       **this_transaction: Any) -> CvrFacts:
        """The facts of a cryptogram: ``this_transaction`` (the cryptograms, what was
        performed, what was exceeded) and what the card remembers from its last online
        transaction, read from the state when this transaction began (``facts.state``)."""
        last = facts.state
        return cls(
            first_ac=first_ac,
            new_card=facts.new_card,
            issuer_authentication_failed_last=last.issuer_authentication_failed,
            issuer_authentication_not_performed_last=last.issuer_authentication_not_performed,
            last_online_not_completed=last.last_online_not_completed,
            script_commands_last=last.script_commands,
            script_failed_last=last.script_failed,
            **this_transaction,
        )


#: CVR bits per layout (fact name → bit, bytes counted from 1 as the specs do).
#: "vis": VIS 1.4 / JR/T 0025.5 Annex, 4 bytes with the length 03 first.
#: "mchip": M/Chip 4 CVR, 6 bytes (bytes 4-6 - PIN and additional check table - not modelled).
CVR_BITS: dict[str, dict[str, Bit]] = {
    "vis": {
        "issuer_authentication_failed_now": Bit(2, 0x08, "issuer authentication failed"),
        "unable_to_go_online": Bit(2, 0x01, "unable to go online"),
        "last_online_not_completed": Bit(3, 0x80, "last online transaction not completed"),
        "velocity_exceeded": Bit(3, 0x20, "exceeded velocity checking counters"),
        "new_card": Bit(3, 0x10, "new card"),
        "issuer_authentication_failed_last": Bit(
            3, 0x08, "issuer authentication failure on last online transaction"),
        "issuer_authentication_not_performed_last": Bit(
            3, 0x04, "issuer authentication not performed after online authorisation"),
        "script_failed_last": Bit(4, 0x08, "issuer script processing failed"),
        "offline_dda_performed": Bit(4, 0x02, "offline dynamic data authentication performed"),
    },
    "mchip": {
        "offline_dda_performed": Bit(2, 0x80, "DDA returned"),
        "cda_performed": Bit(2, 0x40, "combined DDA/AC generation returned in 1st GENERATE AC"),
        "issuer_authentication_performed": Bit(2, 0x10, "issuer authentication performed"),
        "lower_consecutive_exceeded": Bit(3, 0x80, "lower consecutive offline limit exceeded"),
        "upper_consecutive_exceeded": Bit(3, 0x40, "upper consecutive offline limit exceeded"),
        "issuer_authentication_failed_now": Bit(3, 0x04, "issuer authentication failed"),
        "issuer_authentication_failed_last": Bit(3, 0x04, "issuer authentication failed"),
        "script_failed_last": Bit(3, 0x01, "script failed"),
    },
}

#: Cryptogram type codes in the CVR (both layouts: 00 AAC, 01 TC, 10 ARQC / not requested).
_AC_CODE: dict[CryptogramType, int] = {
    CryptogramType.AAC: 0b00, CryptogramType.TC: 0b01, CryptogramType.ARQC: 0b10}
_CVR_LENGTH = {"vis": 4, "mchip": 6}


def build_cvr(layout: str, facts: CvrFacts) -> bytes:
    """The CVR of ``layout`` for ``facts``: the AC types (byte 2 for "vis", byte 1 for
    "mchip": b8-b7 second GENERATE AC, 10 when not requested; b6-b5 first), then one bit per
    true fact of :data:`CVR_BITS`; "vis" adds its length 03 and the script counter (byte 4
    b8-b5)."""
    cvr = bytearray(_CVR_LENGTH[layout])
    ac_byte = 1 if layout == "vis" else 0
    second = 0b10 if facts.second_ac is None else _AC_CODE[facts.second_ac]
    cvr[ac_byte] = (second << 6) | (_AC_CODE[facts.first_ac] << 4)
    if layout == "vis":
        cvr[0] = 0x03
        cvr[3] |= min(facts.script_commands_last, 15) << 4
    table = CVR_BITS[layout]
    on = [bit for name, bit in table.items() if getattr(facts, name, False)
          or facts.extra.get(name, False)]
    return set_bits(bytes(cvr), *on)
