"""The merchant server's side of an in-app payment (docs/domain.md, "In-app payment"): the
merchant's key pair, the order it asks the wallet to pay (amount, currency, date and an
unpredictable number of its own), and the charge: decrypt the wallet's payment token, check it
is this order's, and send the acquirer's 0100 to the switch.

The 0100 of an in-app payment differs from a tap's in three places: DE 22 is ``812`` (POS entry
mode 81, e-commerce / in-app, the PIN capability 2 = no PIN entry), DE 48 sub-element 05 marks
the channel ``A`` (in-app) and sub-element 07 says whether the device verified the cardholder,
and DE 41/42 name the merchant's server instead of a terminal. DE 55 carries the device card's
EMV data as it computed it over the merchant's data.

A merchant directory holds ``merchant.json`` (id, name, public key), ``merchant.key`` (its P-256
private key, owner-only) and ``orders/`` (one JSON file per order, with its result).
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emvtap import iso8583
from emvtap.iso8583 import TokenData, encode_token_data
from emvtap.masking import mask_pan
from emvtap.tlv import TlvError, decode
from lab.payment_token import (
    PaymentTokenError,
    decrypt_payment_token,
    generate_merchant_key,
    load_private_key,
    public_key_pem,
)

__all__ = [
    "IN_APP_ENTRY_MODE",
    "ORDER_FORMAT",
    "PAYLOAD_FORMAT",
    "ChargeResult",
    "Merchant",
    "MerchantError",
    "authorization_request",
    "init_merchant",
]

ORDER_FORMAT = "emvtap-inapp-order/1"
PAYLOAD_FORMAT = "emvtap-inapp-payment/1"
#: DE 22: POS entry mode 81 (e-commerce / in-app, docs/domain.md Domain restrictions), PIN
#: entry capability 2 (none)
IN_APP_ENTRY_MODE = "812"
#: DE 55 of an in-app payment must carry what the issuer recomputes the cryptogram over
REQUIRED_ICC_TAGS = (0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x9F02, 0x5F2A, 0x9A)

_stan = itertools.count(int.from_bytes(os.urandom(2), "big") % 900000 + 1)


def _token_requestor_id(payload: dict[str, Any]) -> str | None:
    """The wallet's token requestor id (DE 48 sub-element 01, 11 digits), when the payment
    token names one; anything else in its place is refused."""
    value = payload.get("token_requestor_id")
    if value is None:
        return None
    if not (isinstance(value, str) and len(value) == 11 and value.isdigit()):
        raise MerchantError("the payment token's token requestor id is not 11 digits")
    return value


class MerchantError(ValueError):
    """Something the merchant refuses, with the reason."""


@dataclass(frozen=True)
class ChargeResult:
    order_id: str
    approved: bool
    response_code: str
    reason: str
    pan: str  # masked
    amount: int
    device_verified: bool

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def init_merchant(directory: str | Path, merchant_id: str, name: str = "") -> dict[str, Any]:
    """Create a merchant: its key pair and ``merchant.json``."""
    if not merchant_id or len(merchant_id) > 15 or not merchant_id.isascii():
        raise MerchantError("the merchant id is 1 to 15 ASCII characters (DE 42)")
    d = Path(directory)
    (d / "orders").mkdir(parents=True, exist_ok=True)
    key = generate_merchant_key(d / "merchant.key")
    info = {"merchant_id": merchant_id, "name": name or merchant_id,
            "terminal_id": "INAPP001", "public_key": public_key_pem(key)}
    (d / "merchant.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


class Merchant:
    """A merchant directory (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        try:
            self.info = json.loads((self.dir / "merchant.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MerchantError(f"{self.dir} is not a merchant (emvtap merchant init): {exc}"
                                ) from None
        self.merchant_id: str = self.info["merchant_id"]

    def new_order(self, amount: int, currency: str = "156", now: datetime | None = None
                  ) -> dict[str, Any]:
        """An order for the wallet to pay: the merchant's transaction data, with a fresh
        unpredictable number (EMV Book 4, 6.5.6: the terminal's 9F37 - here the merchant's)."""
        if amount <= 0:
            raise MerchantError("the amount must be positive")
        now = now or datetime.now(UTC)
        order = {
            "format": ORDER_FORMAT,
            "order_id": f"{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}",
            "merchant_id": self.merchant_id,
            "merchant_name": self.info.get("name", self.merchant_id),
            "amount": amount,
            "currency": currency,
            "date": f"{now:%y%m%d}",
            "unpredictable_number": secrets.token_bytes(4).hex().upper(),
            "public_key": self.info["public_key"],
        }
        (self.dir / "orders" / f"{order['order_id']}.json").write_text(json.dumps(order) + "\n")
        return order

    def order(self, order_id: str) -> dict[str, Any]:
        path = self.dir / "orders" / f"{Path(order_id).name}.json"
        if not path.exists():
            raise MerchantError(f"no order {order_id!r} at this merchant")
        return json.loads(path.read_text())

    def open_token(self, token: Any) -> dict[str, Any]:
        """Decrypt the wallet's payment token and check it pays one of our open orders."""
        try:
            payload = decrypt_payment_token(token, load_private_key(self.dir / "merchant.key"),
                                            self.merchant_id)
        except PaymentTokenError as exc:
            raise MerchantError(str(exc)) from None
        if payload.get("format") != PAYLOAD_FORMAT:
            raise MerchantError(f"the payment token's payload is not {PAYLOAD_FORMAT}")
        order = self.order(str(payload.get("order_id", "")))
        if order.get("result"):
            raise MerchantError(f"order {order['order_id']} was already charged")
        try:
            icc = {t.tag: t.value for t in decode(bytes.fromhex(payload["icc_data"]))}
        except (KeyError, ValueError, TlvError) as exc:
            raise MerchantError(f"the payment token's EMV data is not BER-TLV: {exc}") from None
        missing = [f"{t:02X}" for t in REQUIRED_ICC_TAGS if t not in icc]
        if missing:
            raise MerchantError(f"the EMV data lacks {' '.join(missing)}")
        # the cryptogram must cover this order: our number, amount and currency
        if icc[0x9F37].hex().upper() != order["unpredictable_number"]:
            raise MerchantError("the cryptogram is not over this order's unpredictable number")
        if int(icc[0x9F02].hex()) != order["amount"] or int(payload["amount"]) != order["amount"]:
            raise MerchantError("the cryptogram is not over this order's amount")
        if icc[0x5F2A].hex()[-3:] != order["currency"]:
            raise MerchantError("the cryptogram is not over this order's currency")
        return payload | {"_order": order}

    def charge(self, token: Any, switch: str, timeout: float = 10.0) -> ChargeResult:
        """Decrypt, send the 0100 to ``switch`` (HOST:PORT), record the result in the order."""
        from emvtap.endpoints import parse_host_port

        payload = self.open_token(token)
        order = payload.pop("_order")
        host, port = parse_host_port(switch, default_host="127.0.0.1")
        fields = authorization_request(payload, self.info)
        try:
            response = iso8583.exchange(host, port, fields, timeout=timeout)
        except (OSError, iso8583.MessageFormatError) as exc:
            raise MerchantError(f"the switch at {host}:{port} did not answer: {exc}") from None
        code = str(response.get("39", ""))
        result = ChargeResult(order["order_id"], code == "00", code, _meaning(code),
                              mask_pan(payload["pan"]), order["amount"],
                              bool(payload.get("device_verified")))
        order["result"] = result.to_json()
        (self.dir / "orders" / f"{order['order_id']}.json").write_text(json.dumps(order) + "\n")
        return result


def _meaning(code: str) -> str:
    from switch.codes import RESPONSE_CODES

    meanings = [o.meaning for o in RESPONSE_CODES.values() if o.code == code]
    return meanings[0] if len(meanings) == 1 else {"00": "approved"}.get(
        code, " / ".join(dict.fromkeys(meanings)) or f"response code {code}")


def authorization_request(payload: dict[str, Any], merchant: dict[str, Any],
                          now: datetime | None = None) -> dict[str, Any]:
    """The acquirer's 0100 for an in-app payment (see the module docstring)."""
    now = now or datetime.now(UTC)
    stan = f"{next(_stan) % 1000000:06d}"
    return {
        "t": "0100",
        "2": payload["pan"],
        "3": "000000",
        "4": f"{int(payload['amount']):012d}",
        "7": now.strftime("%m%d%H%M%S"),
        "11": stan,
        "12": now.strftime("%H%M%S"),
        "13": now.strftime("%m%d"),
        "14": payload.get("expiry", "0000"),
        "22": IN_APP_ENTRY_MODE,
        "23": payload.get("psn", "000"),
        "37": now.strftime("%y%j") + f"{int(stan):07d}",
        "41": str(merchant.get("terminal_id", "INAPP001"))[:8].ljust(8),
        "42": str(merchant["merchant_id"])[:15].ljust(15),
        "48": encode_token_data(TokenData(token_requestor_id=_token_requestor_id(payload),
                                          channel="A",
                                          device_verified=bool(payload.get("device_verified")))),
        "49": str(payload["currency"]),
        "55": bytes.fromhex(payload["icc_data"]),
    }
