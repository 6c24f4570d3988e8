"""Token Domain Restriction Controls (TF v2.3; docs/domain.md): where a token may be used.

A token's ``domain`` (stored as JSON) may hold:

==========================  ==================================================================
key                         meaning
==========================  ==================================================================
``entry_modes``             allowed POS entry modes, the first two digits of DE 22 (``07``
                            contactless chip, ``91`` contactless magstripe, ``81`` in-app /
                            e-commerce, ``05`` contact chip)
``merchants``               allowed card acceptor ids (DE 42); absent = any merchant
``token_requestor_ids``     allowed token requestor ids (DE 48 sub-element 01 when present);
                            absent = only the requestor the token was issued to
==========================  ==================================================================

The defaults follow docs/domain.md: an SE or HCE device card is a contactless card
(``07``, ``91``); a remote-payment token is valid in-app only (``81``). A transaction outside
the domain is declined with DE 39 = 57 even when its cryptogram is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switch.codes import Reason

__all__ = [
    "CONTACTLESS_ENTRY_MODES",
    "DEFAULT_DOMAINS",
    "IN_APP_ENTRY_MODES",
    "check_domain",
    "default_domain",
]

CONTACTLESS_ENTRY_MODES = ("07", "91")
IN_APP_ENTRY_MODES = ("81",)

#: token purpose → default domain
DEFAULT_DOMAINS: dict[str, dict[str, Any]] = {
    "contactless": {"entry_modes": list(CONTACTLESS_ENTRY_MODES)},
    "in-app": {"entry_modes": list(IN_APP_ENTRY_MODES)},
    "any": {},
}


def default_domain(purpose: str = "contactless") -> dict[str, Any]:
    try:
        return {k: list(v) for k, v in DEFAULT_DOMAINS[purpose].items()}
    except KeyError:
        raise ValueError(f"token purpose must be one of {sorted(DEFAULT_DOMAINS)}") from None


def check_domain(
    domain: Mapping[str, Any],
    *,
    entry_mode: str,
    merchant_id: str | None,
    token_requestor_id: str | None,
    issued_to: str | None = None,
) -> Reason | None:
    """The first domain rule the transaction breaks, or ``None`` when it is inside the domain."""
    modes = domain.get("entry_modes")
    if modes is not None and entry_mode[:2] not in modes:
        return Reason.DOMAIN_ENTRY_MODE
    merchants = domain.get("merchants")
    if merchants is not None and (merchant_id or "").strip() not in merchants:
        return Reason.DOMAIN_MERCHANT
    requestors = domain.get("token_requestor_ids", [issued_to] if issued_to else None)
    if (
        requestors is not None
        and token_requestor_id is not None
        and (token_requestor_id not in requestors)
    ):
        return Reason.DOMAIN_TOKEN_REQUESTOR
    return None
