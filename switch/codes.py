"""Why the switch answers what it answers: every outcome of the authorization flow as a reason,
and the one table that maps a reason to its DE 39 response code (ISO 8583:1987 response codes,
among them for reversals 13 "invalid amount", 21 "no action taken" and 25 "unable to locate
record on file";
``1A`` as Visa/UnionPay use it for "additional cardholder verification required").

The reason is stored with each authorization and shown in the admin history; the acquirer only
ever sees DE 39.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

__all__ = ["RESPONSE_CODES", "Outcome", "Reason", "response_code"]


class Reason(StrEnum):
    APPROVED = "approved"
    FORMAT_ERROR = "format_error"
    ICC_DATA_INVALID = "icc_data_invalid"
    UNKNOWN_TOKEN = "unknown_token"
    TOKEN_DELETED = "token_deleted"
    TOKEN_SUSPENDED = "token_suspended"
    TOKEN_EXPIRED = "token_expired"
    DOMAIN_ENTRY_MODE = "domain_entry_mode"
    DOMAIN_MERCHANT = "domain_merchant"
    DOMAIN_TOKEN_REQUESTOR = "domain_token_requestor"
    UNSUPPORTED_CVN = "unsupported_cvn"
    CRYPTOGRAM_INVALID = "cryptogram_invalid"
    NOT_AN_ARQC = "not_an_arqc"
    AMOUNT_MISMATCH = "amount_mismatch"
    ATC_REPLAYED = "atc_replayed"
    ATC_TOO_OLD = "atc_too_old"
    LIMITED_USE_KEY_NOT_ISSUED = "limited_use_key_not_issued"
    LIMITED_USE_KEY_USED = "limited_use_key_used"
    CARD_LOST = "card_lost"
    CARD_CANCELLED = "card_cancelled"
    CARD_EXPIRED = "card_expired"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    DAILY_LIMIT = "daily_limit_exceeded"
    CURRENCY_MISMATCH = "currency_mismatch"
    PIN_INCORRECT = "pin_incorrect"
    PIN_REQUIRED = "pin_required"
    IN_APP_VERIFICATION_REQUIRED = "in_app_verification_required"
    INVALID_TRANSACTION = "invalid_transaction"
    DUPLICATE_TRANSMISSION = "duplicate_transmission"
    ORIGINAL_NOT_FOUND = "original_not_found"
    ALREADY_REVERSED = "already_reversed"
    NOTHING_TO_REVERSE = "nothing_to_reverse"
    REVERSAL_AMOUNT_INVALID = "reversal_amount_invalid"
    REVERSED = "reversed"
    PARTIALLY_REVERSED = "partially_reversed"
    NETWORK_OK = "network_ok"
    SYSTEM_ERROR = "system_error"


class Outcome(NamedTuple):
    code: str  # DE 39
    meaning: str


#: reason → DE 39. One row per reason; README's response-code table is this table.
RESPONSE_CODES: dict[Reason, Outcome] = {
    Reason.APPROVED: Outcome("00", "approved"),
    Reason.NETWORK_OK: Outcome("00", "network management accepted"),
    Reason.REVERSED: Outcome("00", "reversal accepted, the original undone"),
    Reason.PARTIALLY_REVERSED: Outcome("00", "reversal accepted, DE 4 of the original undone"),
    Reason.ALREADY_REVERSED: Outcome("21", "no action taken: the original is already undone"),
    Reason.NOTHING_TO_REVERSE: Outcome("21", "no action taken: the original posted nothing"),
    Reason.REVERSAL_AMOUNT_INVALID: Outcome(
        "13", "invalid amount: zero or more than what is left to reverse"
    ),
    Reason.FORMAT_ERROR: Outcome("30", "format error: malformed or missing data element"),
    Reason.ICC_DATA_INVALID: Outcome("30", "format error: DE 55 missing or not the data needed"),
    Reason.UNKNOWN_TOKEN: Outcome("14", "invalid card number: no such token or card"),
    Reason.TOKEN_DELETED: Outcome("14", "invalid card number: the device card was deleted"),
    Reason.TOKEN_SUSPENDED: Outcome("62", "restricted card: the device card is suspended"),
    Reason.TOKEN_EXPIRED: Outcome("54", "expired card: the token has expired"),
    Reason.DOMAIN_ENTRY_MODE: Outcome("57", "not permitted: outside the token's channel"),
    Reason.DOMAIN_MERCHANT: Outcome("57", "not permitted: merchant outside the token domain"),
    Reason.DOMAIN_TOKEN_REQUESTOR: Outcome("57", "not permitted: token requestor mismatch"),
    Reason.UNSUPPORTED_CVN: Outcome("05", "do not honour: cryptogram version not supported"),
    Reason.CRYPTOGRAM_INVALID: Outcome("05", "do not honour: ARQC verification failed"),
    Reason.NOT_AN_ARQC: Outcome("05", "do not honour: the card did not ask to go online"),
    Reason.AMOUNT_MISMATCH: Outcome("05", "do not honour: DE 4 differs from the signed 9F02"),
    Reason.ATC_REPLAYED: Outcome("05", "do not honour: ATC/cryptogram already used"),
    Reason.ATC_TOO_OLD: Outcome("05", "do not honour: ATC far below the highest seen"),
    Reason.LIMITED_USE_KEY_NOT_ISSUED: Outcome("05", "do not honour: no limited-use key issued"),
    Reason.LIMITED_USE_KEY_USED: Outcome("05", "do not honour: limited-use key already used"),
    Reason.CARD_LOST: Outcome("41", "lost card: the physical card is reported lost"),
    Reason.CARD_CANCELLED: Outcome("14", "invalid card number: the physical card is cancelled"),
    Reason.CARD_EXPIRED: Outcome("54", "expired card: the physical card has expired"),
    Reason.INSUFFICIENT_FUNDS: Outcome("51", "insufficient funds"),
    Reason.DAILY_LIMIT: Outcome("61", "exceeds the daily amount limit"),
    Reason.CURRENCY_MISMATCH: Outcome("12", "invalid transaction: currency not the account's"),
    Reason.PIN_INCORRECT: Outcome("55", "incorrect PIN"),
    Reason.PIN_REQUIRED: Outcome("55", "PIN required: DE 52 missing for online PIN"),
    Reason.IN_APP_VERIFICATION_REQUIRED: Outcome(
        "1A",
        "additional cardholder verification required: in-app amount above the no-password"
        " limit without device verification",
    ),
    Reason.INVALID_TRANSACTION: Outcome("12", "invalid transaction (processing code or MTI)"),
    Reason.DUPLICATE_TRANSMISSION: Outcome("94", "duplicate transmission with other content"),
    Reason.ORIGINAL_NOT_FOUND: Outcome("25", "unable to locate the original transaction"),
    Reason.SYSTEM_ERROR: Outcome("96", "system malfunction (nothing of the request was kept)"),
}


def response_code(reason: Reason) -> str:
    return RESPONSE_CODES[reason].code
