"""The admin API's request schemas: JSON Schema 2020-12 (what OpenAPI 3.1 uses), published in
``GET /openapi.json`` and checked with ``jsonschema`` before any handler runs, so the store only
ever holds values of the type and form its columns and the authorization flow expect.

One schema per route body (:data:`BODIES`), per path parameter (:data:`PATH_PARAMETERS`) and per
query parameter (:data:`QUERY_PARAMETERS`). :func:`first_error` names the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from emvtap.device_types import DEVICE_TYPE_NAMES
from switch.domain import DEFAULT_DOMAINS
from switch.lifecycle import CHANNELS, LIFECYCLE
from switch.tsp import SCHEME_NAMES

__all__ = ["BODIES", "PATH_PARAMETERS", "QUERY_PARAMETERS", "FieldError", "first_error"]

Schema = dict[str, Any]

#: ISO/IEC 7812 primary account number: 12 to 19 digits
PAN: Schema = {"type": "string", "pattern": "^[0-9]{12,19}$"}
#: an amount in minor units; DE 4 holds 12 digits
AMOUNT: Schema = {"type": "integer", "minimum": -999_999_999_999, "maximum": 999_999_999_999}
NON_NEGATIVE_AMOUNT: Schema = {**AMOUNT, "minimum": 0}
ROW_ID: Schema = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
YYMM: Schema = {"type": "string", "pattern": "^[0-9]{2}(0[1-9]|1[0-2])$"}
#: device ids and event subjects: printable ASCII words, no spaces or controls
IDENTIFIER: Schema = {"type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,64}$"}
TOKEN_REQUESTOR_ID: Schema = {"type": "string", "pattern": "^[0-9]{11}$"}
TWO_DIGITS: Schema = {"type": "string", "pattern": "^[0-9]{2}$"}
#: a name: any text without control characters
TEXT: Schema = {"type": "string", "maxLength": 64, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}
DOMAIN: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "entry_modes": {"type": "array", "maxItems": 8, "items": TWO_DIGITS},
        "merchants": {
            "type": "array",
            "maxItems": 64,
            "items": {"type": "string", "pattern": "^[ -~]{1,15}$"},
        },
        "token_requestor_ids": {"type": "array", "maxItems": 16, "items": TOKEN_REQUESTOR_ID},
    },
}
#: params of a lifecycle event (switch/LIFECYCLE.md); anything else must be a short scalar
EVENT_PARAMS: Schema = {
    "type": "object",
    "maxProperties": 8,
    "properties": {
        "new_span": PAN,
        "new_expiry": YYMM,
        "amount": NON_NEGATIVE_AMOUNT,
        "token_expiry": YYMM,
        "domain": DOMAIN,
        "token_requestor_id": TOKEN_REQUESTOR_ID,
        "assurance_level": TWO_DIGITS,
    },
    "additionalProperties": {
        "anyOf": [TEXT, {"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 2**31}]
    },
}


def _object(required: tuple[str, ...], **properties: Schema) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "additionalProperties": False,
        "properties": properties,
    }


#: handler name → schema of its JSON body
BODIES: dict[str, Schema] = {
    "add_account": _object(
        (),
        holder=TEXT,
        kind={"enum": ["debit", "credit"]},
        currency={"type": "string", "pattern": "^[0-9]{3}$"},
        balance=AMOUNT,
        credit_limit=NON_NEGATIVE_AMOUNT,
        daily_limit={"anyOf": [NON_NEGATIVE_AMOUNT, {"type": "null"}]},
        pin={"type": "string", "pattern": "^[0-9]{4,12}$"},
    ),
    "add_card": _object(
        ("span", "account_id"),
        span=PAN,
        account_id=ROW_ID,
        expiry=YYMM,
        psn=TWO_DIGITS,
        no_password_limit=NON_NEGATIVE_AMOUNT,
    ),
    "provision": _object(
        ("span", "device_id", "device_type", "token_requestor_id"),
        span=PAN,
        device_id=IDENTIFIER,
        device_type={"enum": list(DEVICE_TYPE_NAMES)},
        token_requestor_id=TOKEN_REQUESTOR_ID,
        channel={"enum": list(CHANNELS)},
        purpose={"enum": sorted(DEFAULT_DOMAINS)},
        assurance_level=TWO_DIGITS,
        scheme={"enum": list(SCHEME_NAMES)},
    ),
    "event": _object(
        ("event", "subject", "channel"),
        event={"enum": sorted(LIFECYCLE)},
        subject=IDENTIFIER,
        channel={"enum": list(CHANNELS)},
        params=EVENT_PARAMS,
    ),
    "replenish": _object(
        (),
        count={"type": "integer", "minimum": 1, "maximum": 1000},
        channel={"enum": list(CHANNELS)},
    ),
}

#: path parameter → schema
PATH_PARAMETERS: dict[str, Schema] = {"span": PAN, "mpan": PAN}

#: query parameter → schema (query values are strings)
QUERY_PARAMETERS: dict[str, Schema] = {
    "span": PAN,
    "mpan": PAN,
    "device_id": IDENTIFIER,
    "since": {"type": "string", "pattern": "^[0-9]{1,18}$"},
    "limit": {"type": "string", "pattern": "^([1-9][0-9]{0,3}|10000)$"},
}

_BODY_VALIDATORS = {name: Draft202012Validator(s) for name, s in BODIES.items()}
_PARAMETER_VALIDATOR = Draft202012Validator(
    {"type": "object", "properties": {**PATH_PARAMETERS, **QUERY_PARAMETERS}}
)


class FieldError(ValueError):
    """A request value that does not match the published schema; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _field_of(error: ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator in ("required", "additionalProperties") and "'" in error.message:
        path.append(str(error.message).split("'")[1])  # the missing or unexpected member
    return ".".join(path) or "body"


#: JSON Schema keyword → what the value must be (never the value itself: it may be a PAN)
_MUST: dict[str, str] = {
    "type": "be of type {}",
    "pattern": "match {!r}",
    "enum": "be one of {}",
    "minimum": "be at least {}",
    "maximum": "be at most {}",
    "maxLength": "be at most {} characters",
    "maxItems": "have at most {} items",
    "maxProperties": "have at most {} members",
    "anyOf": "match one of the allowed forms",
}


def _message(error: ValidationError) -> str:
    if error.validator in ("required", "additionalProperties"):
        return str(error.message)
    form = _MUST.get(str(error.validator), f"satisfy {error.validator}")
    return "must " + form.format(error.validator_value)


def first_error(handler: str, body: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
    """Raise :class:`FieldError` for the first path/query parameter or body field that does not
    match its schema."""
    error = best_match(_PARAMETER_VALIDATOR.iter_errors(dict(parameters)))
    if error is None and handler in _BODY_VALIDATORS:
        error = best_match(_BODY_VALIDATORS[handler].iter_errors(dict(body)))
    if error is not None:
        raise FieldError(_field_of(error), _message(error))
