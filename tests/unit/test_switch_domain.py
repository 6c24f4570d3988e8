"""switch.domain: Token Domain Restriction Controls (TF v2.3; docs/domain.md, Domain
restrictions), every rule with its whole answer, including the token requestor id that DE 48
may leave out."""

from __future__ import annotations

import pytest

from switch.codes import Reason
from switch.domain import check_domain, default_domain

TRID = "50012345678"
OTHER = "50099999999"
POS, IN_APP = "071", "812"

#: (domain, entry mode, merchant, DE 48 requestor id, issued to) → the rule broken (or None)
CASES = [
    # token requestor: the token's own requestor when the domain names none
    ({}, POS, "M1", TRID, TRID, None),
    ({}, POS, "M1", OTHER, TRID, Reason.DOMAIN_TOKEN_REQUESTOR),
    ({}, POS, "M1", None, TRID, None),  # a POS terminal does not know the wallet
    ({}, IN_APP, "M1", TRID, TRID, None),
    ({}, IN_APP, "M1", OTHER, TRID, Reason.DOMAIN_TOKEN_REQUESTOR),
    ({}, IN_APP, "M1", None, TRID, Reason.DOMAIN_TOKEN_REQUESTOR),  # remote: must name itself
    ({}, IN_APP, "M1", None, None, None),  # a token bound to no requestor
    # an explicit list of requestors overrides the one the token was issued to
    ({"token_requestor_ids": [OTHER]}, POS, "M1", OTHER, TRID, None),
    ({"token_requestor_ids": [OTHER]}, POS, "M1", TRID, TRID, Reason.DOMAIN_TOKEN_REQUESTOR),
    ({"token_requestor_ids": [OTHER]}, IN_APP, "M1", None, TRID,
     Reason.DOMAIN_TOKEN_REQUESTOR),
    # entry modes: the first two digits of DE 22
    (default_domain("contactless"), POS, "M1", None, TRID, None),
    (default_domain("contactless"), "912", "M1", None, TRID, None),
    (default_domain("contactless"), IN_APP, "M1", TRID, TRID, Reason.DOMAIN_ENTRY_MODE),
    (default_domain("contactless"), "051", "M1", None, TRID, Reason.DOMAIN_ENTRY_MODE),
    (default_domain("in-app"), POS, "M1", TRID, TRID, Reason.DOMAIN_ENTRY_MODE),
    (default_domain("in-app"), IN_APP, "M1", TRID, TRID, None),
    (default_domain("any"), "051", "M1", None, TRID, None),
    # merchants: DE 42 as sent (space padded) against the list
    ({"merchants": ["M1"]}, POS, "M1             ", None, TRID, None),
    ({"merchants": ["M1"]}, POS, "M2", None, TRID, Reason.DOMAIN_MERCHANT),
    ({"merchants": ["M1"]}, POS, None, None, TRID, Reason.DOMAIN_MERCHANT),
    # the first rule broken is the one reported: entry mode, then merchant, then requestor
    ({"entry_modes": ["07"], "merchants": ["M1"]}, IN_APP, "M2", OTHER, TRID,
     Reason.DOMAIN_ENTRY_MODE),
    ({"merchants": ["M1"]}, POS, "M2", OTHER, TRID, Reason.DOMAIN_MERCHANT),
]


@pytest.mark.parametrize(("domain", "entry_mode", "merchant", "trid", "issued_to", "broken"),
                         CASES)
def test_check_domain_reports_the_first_rule_broken(domain, entry_mode, merchant, trid,
                                                    issued_to, broken) -> None:
    assert check_domain(domain, entry_mode=entry_mode, merchant_id=merchant,
                        token_requestor_id=trid, issued_to=issued_to) is broken


def test_default_domains_by_purpose() -> None:
    assert default_domain("contactless") == {"entry_modes": ["07", "91"]}
    assert default_domain("in-app") == {"entry_modes": ["81"]}
    assert default_domain("any") == {}
    with pytest.raises(ValueError, match="token purpose must be one of"):
        default_domain("atm")


def test_default_domain_is_a_copy_the_caller_may_change() -> None:
    domain = default_domain("contactless")
    domain["entry_modes"].append("05")
    assert default_domain("contactless") == {"entry_modes": ["07", "91"]}
