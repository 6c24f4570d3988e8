"""The wallet on the device (docs/domain.md, "The system around a tap": wallet ↔ wallet server
↔ the network's token service): the device cards it holds, the device passcode, over-the-air
issuance through the wallet server, the device channel's lifecycle, the pushes of the network,
and in-app payment.

A wallet is a directory::

    wallet.json          device id and type, wallet server URL, passcode (salted PBKDF2),
                         the cards: MPAN, scheme, form, status, default, limit, files
    cards/MPAN.json      HCE: the device card's profile (no master key; limited-use keys)
    cards/MPAN.state.json HCE: the card's state (ATC, keys left, the pushed limit)

An SE card's secrets live in the secure element (the applet on its reader): the wallet keeps
its reader spec, never its keys.

In-app payment (docs/domain.md, "Two ways to pay, two limits"): the wallet compares the amount
with the issuer's no-password limit the network pushed to this device; above it the device
passcode is required and without it the device refuses. The device card then computes its
cryptogram over the merchant's order - amount, currency, date and the merchant's unpredictable
number - through the same commands a terminal sends (SELECT, GET PROCESSING OPTIONS / GENERATE
AC; EMV Book 3, 6.5 and 10), here sent by the wallet itself. Its EMV data goes back to the
merchant encrypted to the merchant's public key (:mod:`lab.payment_token`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emvtap.masking import mask_pan
from emvtap.private_files import write_private_text
from lab.payment_token import PaymentTokenError, encrypt_payment_token

__all__ = [
    "WALLET_FORMAT",
    "Wallet",
    "WalletError",
    "in_app_terminal_config",
]

WALLET_FORMAT = "emvtap-wallet/1"
_PBKDF2_ROUNDS = 100_000


class WalletError(ValueError):
    """What the wallet refuses or cannot do, with the reason."""


def _hash_passcode(passcode: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", passcode.encode(), salt, _PBKDF2_ROUNDS).hex()


def in_app_terminal_config(merchant_id: str, currency: str) -> Any:
    """The data the wallet sends its device card for an in-app payment: the terminal defaults
    with no reader limits (the issuer's no-password limit is what applies in an app,
    docs/domain.md), always online (the cryptogram must be an ARQC), no PIN pad, and "no CVM"
    as the only terminal CVM (the device verified the cardholder, or did not need to)."""
    from terminal.config import TerminalConfig

    d = TerminalConfig.defaults_dict()
    d["merchant_id"] = merchant_id[:15].ljust(15)
    d["terminal_id"] = "INAPP001"
    d["transaction_currency_code"] = "0" + currency[-3:]
    d["terminal_capabilities"] = "E008C8"  # byte 2: no CVM required only
    d["pin_pad"] = False
    d["terminal_floor_limit"] = 0
    d["random_selection"] = {"target_percentage": 0, "max_target_percentage": 0,
                             "threshold": 0}
    for combination in d["combinations"]:
        combination |= {"transaction_limit": None, "cvm_required_limit": None,
                        "floor_limit": 0}
    return TerminalConfig.from_dict(d)


class _Deferred(OSError):
    """The wallet keeps the authorisation request instead of sending it."""


class _Capture:
    """An ``authorise`` for the kernel that keeps the 0100 the card's data went into: the
    merchant, not the device, sends it to the acquirer."""

    target = "merchant (in-app)"

    def __init__(self) -> None:
        self.request: dict[str, Any] | None = None

    def __call__(self, fields: dict[str, Any]) -> dict[str, Any]:
        self.request = dict(fields)
        raise _Deferred("the merchant sends the authorisation")


@dataclass
class Wallet:
    """A wallet directory (see the module docstring)."""

    dir: Path
    data: dict[str, Any]

    # --- files ----------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: str | Path, device_id: str, device_type: str, passcode: str,
               server: str = "", reader: str = "") -> Wallet:
        from emvtap.device_types import DeviceType

        try:
            device_type = DeviceType.parse(device_type).value
        except ValueError as exc:
            raise WalletError(str(exc)) from None
        if not passcode.isdigit() or not 4 <= len(passcode) <= 12:
            raise WalletError("the device passcode is 4 to 12 digits")
        d = Path(directory)
        if (d / "wallet.json").exists():
            raise WalletError(f"{d} already holds a wallet")
        (d / "cards").mkdir(parents=True, exist_ok=True)
        salt = secrets.token_bytes(16)
        data = {"format": WALLET_FORMAT, "device_id": device_id, "device_type": device_type,
                "server": server, "se_reader": reader, "passcode_salt": salt.hex(),
                "passcode_hash": _hash_passcode(passcode, salt), "cards": []}
        wallet = cls(d, data)
        wallet.save()
        return wallet

    @classmethod
    def open(cls, directory: str | Path) -> Wallet:
        d = Path(directory)
        try:
            data = json.loads((d / "wallet.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WalletError(f"{d} is not a wallet (emvtap wallet init): {exc}") from None
        if data.get("format") != WALLET_FORMAT:
            raise WalletError(f"{d}/wallet.json is not {WALLET_FORMAT}")
        return cls(d, data)

    def save(self) -> None:
        write_private_text(self.dir / "wallet.json", json.dumps(self.data, indent=1) + "\n")

    @property
    def device_id(self) -> str:
        return str(self.data["device_id"])

    @property
    def device_type(self) -> str:
        return str(self.data["device_type"])

    def check_passcode(self, passcode: str | None) -> bool:
        """The device verified the cardholder (CDCVM): the passcode matches."""
        if not passcode:
            return False
        given = _hash_passcode(passcode, bytes.fromhex(self.data["passcode_salt"]))
        return hmac.compare_digest(given, self.data["passcode_hash"])

    def cards(self) -> list[dict[str, Any]]:
        return list(self.data["cards"])

    def card(self, mpan_or_suffix: str | None = None) -> dict[str, Any]:
        """A card by MPAN or its last digits; the default card when none is named."""
        live = [c for c in self.data["cards"] if c["status"] != "deleted"]
        if mpan_or_suffix:
            found = [c for c in live if c["mpan"].endswith(mpan_or_suffix)]
        else:
            found = [c for c in live if c.get("default")] or live[:1]
        if len(found) != 1:
            what = f"card …{mpan_or_suffix}" if mpan_or_suffix else "a default card"
            raise WalletError(f"the wallet holds {len(found)} matching {what}")
        return found[0]

    def _update_card(self, mpan: str, **changes: Any) -> None:
        for c in self.data["cards"]:
            if c["mpan"] == mpan:
                c.update(changes)
        self.save()

    # --- the wallet server ----------------------------------------------------------------

    def _server(self, method: str, path: str, body: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        base = str(self.data.get("server") or "")
        if not base:
            raise WalletError("the wallet has no wallet server (emvtap wallet init --server)")
        request = urllib.request.Request(
            base.rstrip("/") + path, method=method,
            data=json.dumps(body or {}).encode() if method == "POST" else None,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except (ValueError, AttributeError):
                detail = ""
            raise WalletError(f"the wallet server refused: {detail or exc}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise WalletError(f"the wallet server at {base} did not answer: {exc}") from None

    # --- over-the-air issuance ------------------------------------------------------------

    def add_card(self, span: str, scheme: str = "quickpass", purpose: str = "any",
                 token_requestor_id: str = "50012345678", se_reader: str | None = None,
                 timeout: float = 10.0) -> dict[str, Any]:
        """Ask the network (through the wallet server) for a device card for ``span`` on this
        device; install what comes back: the STORE DATA script into the secure element on
        its reader (SE forms), or the profile with its first key batch into the HCE app."""
        answer = self._server("POST", "/v1/cards", {
            "span": span, "device_id": self.device_id, "device_type": self.device_type,
            "scheme": scheme, "purpose": purpose, "token_requestor_id": token_requestor_id})
        mpan = str(answer["mpan"])
        entry: dict[str, Any] = {
            "mpan": mpan, "scheme": scheme, "form": self.device_type, "status": "active",
            "default": bool(answer.get("is_default")), "purpose": purpose,
            "no_password_limit": int(answer.get("no_password_limit") or 0), "events_seen": 0,
            "token_requestor_id": token_requestor_id,
        }
        if self.device_type == "hce":
            profile_path = self.dir / "cards" / f"{mpan}.json"
            write_private_text(profile_path, json.dumps(answer["profile"], indent=1) + "\n")
            entry |= {"profile": str(profile_path.name),
                      "state": f"{mpan}.state.json"}
        else:
            reader = se_reader or str(self.data.get("se_reader") or "")
            if not reader:
                raise WalletError("an SE form needs the secure element's reader (--se-reader)")
            count = _run_script(reader, [bytes.fromhex(a) for a in answer["script"]], timeout)
            entry |= {"reader": reader, "script_apdus": count}
        if entry["default"]:
            for c in self.data["cards"]:
                c["default"] = False
        self.data["cards"].append(entry)
        self.save()
        return entry

    def import_card(self, profile_path: Path, state_path: Path) -> dict[str, Any]:
        """Take an HCE device card the token service already issued to this device (its
        profile and state files, e.g. from ``emvtap switch provision``) into the wallet."""
        from emvtap.perso_schemes import SCHEMES
        from emvtap.profile import CardProfile, ProfileError

        if self.device_type != "hce":
            raise WalletError("only an HCE card can be imported: an SE card lives in its "
                              "secure element (emvtap wallet add-card)")
        try:
            profile = CardProfile.load(profile_path)
        except (ProfileError, OSError) as exc:
            raise WalletError(f"cannot read the card: {exc}") from None
        token = profile.token
        if token is None or token.device_id != self.device_id:
            raise WalletError(f"the card is not a device card of {self.device_id}")
        if any(c["mpan"] == profile.pan for c in self.data["cards"]):
            raise WalletError("the card is already in the wallet")
        app = profile.applications[0]
        scheme = next((n for n, s in SCHEMES.items() if s.aid == app.aid), "quickpass")
        entry = {"mpan": profile.pan, "scheme": scheme, "form": "hce", "status": "active",
                 "default": not any(c["status"] != "deleted" for c in self.data["cards"]),
                 "purpose": app.extra.get("purpose", ""),
                 "no_password_limit": int(app.extra.get("no_password_limit") or 0),
                 "events_seen": 0, "profile": str(Path(profile_path).resolve()),
                 "token_requestor_id": token.token_requestor_id,
                 "state": str(Path(state_path).resolve())}
        self.data["cards"].append(entry)
        self.save()
        return entry

    # --- lifecycle through the device channel ----------------------------------------------

    def lifecycle(self, action: str, mpan_or_suffix: str | None) -> dict[str, Any]:
        """suspend, resume, delete or set-default one card: the wallet asks, the network
        decides (the device channel, docs/domain.md Channels); the answer is applied here."""
        card = self.card(mpan_or_suffix)
        answer = self._server("POST", f"/v1/cards/{card['mpan']}/{action}",
                              {"device_id": self.device_id})
        self.sync()
        return answer

    def sync(self) -> list[str]:
        """Fetch what the network pushed for this device's cards and apply it to each device
        card (docs/domain.md: the limit, a suspension, a deletion reach the device). Returns
        one line per change."""
        changes: list[str] = []
        for card in [c for c in self.data["cards"] if c["status"] != "deleted"]:
            answer = self._server(
                "GET", f"/v1/cards/{card['mpan']}/updates?since={card.get('events_seen', 0)}")
            card["events_seen"] = int(answer.get("last_event", card.get("events_seen", 0)))
            changes += self._apply(card, answer)
        self.save()
        return changes

    def _apply(self, card: dict[str, Any], answer: dict[str, Any]) -> list[str]:
        out = []
        name = mask_pan(card["mpan"])
        limit = answer.get("no_password_limit")
        if limit is not None and int(limit) != card.get("no_password_limit"):
            card["no_password_limit"] = int(limit)
            out.append(f"{name}: no-password limit now {int(limit) / 100:.2f}")
            if card["form"] == "hce":  # the SDK path: the limit goes into the card's inbox
                self._hce_inbox(card, {"format": "emvtap-luk-batch/1", "mpan": card["mpan"],
                                       "keys": [], "no_password_limit": int(limit)})
        state = answer.get("state")
        if state and state != card["status"]:
            out.append(f"{name}: {card['status']} → {state}")
            card["status"] = state
            if state == "deleted":
                card["default"] = False
                if card["form"] == "hce":  # the keys leave the phone with the card
                    for f in (card.get("profile"), card.get("state")):
                        if f:
                            (self.dir / "cards" / f).unlink(missing_ok=True)
        if "is_default" in answer and bool(answer["is_default"]) != bool(card.get("default")):
            card["default"] = bool(answer["is_default"])
            if card["default"]:
                out.append(f"{name}: now the default card")
        for batch in answer.get("key_batches", []):
            self._hce_inbox(card, batch)
            out.append(f"{name}: {len(batch.get('keys', []))} limited-use keys")
        return out

    def replenish_if_low(self, card: dict[str, Any]) -> int:
        """HCE: when the card holds few limited-use keys (``hce_card.wallet.LOW_WATER``), ask
        the token service for the next batch, as the network's SDK does; the number of keys
        fetched (the card imports them at its next start)."""
        from hce_card.card import HceCard
        from hce_card.wallet import LOW_WATER, wallet_status

        # the card as it starts: its first batch and whatever waits in its inbox imported
        hce = HceCard.from_files(self.dir / "cards" / card["profile"],
                                 self.dir / "cards" / card["state"])
        held = wallet_status(hce.store, hce.profile.applications[0].aid).unused
        if held > LOW_WATER:
            return 0
        batch = self._server("POST", f"/v1/cards/{card['mpan']}/keys",
                             {"device_id": self.device_id})
        self._hce_inbox(card, batch, prefix="keys")
        return len(batch.get("keys", []))

    def _hce_inbox(self, card: dict[str, Any], document: dict[str, Any], prefix: str = "push"
                   ) -> None:
        from hce_card.state import StateStore

        store = StateStore(self.dir / "cards" / card["state"])
        assert store.inbox is not None
        store.inbox.mkdir(parents=True, exist_ok=True)
        name = f"{prefix}-{datetime.now(UTC):%Y%m%d%H%M%S%f}-{secrets.token_hex(2)}.json"
        write_private_text(store.inbox / name, json.dumps(document))

    # --- in-app payment -------------------------------------------------------------------

    def pay_in_app(self, order: dict[str, Any], amount: int, passcode: str | None = None,
                   mpan_or_suffix: str | None = None, timeout: float = 10.0
                   ) -> dict[str, Any]:
        """The payment token for ``order`` (see the module docstring); :class:`WalletError`
        when the device refuses."""
        if int(order.get("amount", amount)) != amount:
            raise WalletError(f"the merchant asks {int(order['amount']) / 100:.2f}, "
                              f"not {amount / 100:.2f}")
        card = self.card(mpan_or_suffix)
        if card["status"] != "active":
            raise WalletError(f"card {mask_pan(card['mpan'])} is {card['status']}")
        verified = self.check_passcode(passcode)
        if passcode and not verified:
            raise WalletError("wrong device passcode")
        limit = int(card.get("no_password_limit") or 0)
        if amount > limit and not verified:
            raise WalletError(
                f"{amount / 100:.2f} is above the issuer's no-password limit of "
                f"{limit / 100:.2f}: the device passcode is needed (--passcode)")
        try:
            un = bytes.fromhex(str(order["unpredictable_number"]))
            merchant_id = str(order["merchant_id"])
            currency = str(order.get("currency", "156"))
            when = datetime.strptime(str(order["date"]), "%y%m%d").replace(tzinfo=UTC)
        except (KeyError, ValueError) as exc:
            raise WalletError(f"the merchant's order is malformed: {exc}") from None
        if len(un) != 4:
            raise WalletError("the merchant's unpredictable number is not 4 bytes")
        if card["form"] == "hce":
            self.replenish_if_low(card)
        request, result = self._cryptogram(card, amount, un, merchant_id, currency, when,
                                           verified, timeout)
        payload = {
            "format": "emvtap-inapp-payment/1",
            "order_id": order.get("order_id"),
            "pan": request["2"],
            "expiry": request.get("14", "0000"),
            "psn": request.get("23", "000"),
            "amount": amount,
            "currency": currency,
            "icc_data": bytes(request["55"]).hex().upper(),
            "device_verified": verified,
            "device_id": self.device_id,
            # the wallet is the token requestor: the acquirer passes its id on in DE 48
            # (docs/domain.md, Domain restrictions)
            "token_requestor_id": card.get("token_requestor_id"),
            "atc": result.atc,
        }
        try:
            token = encrypt_payment_token(payload, str(order["public_key"]), merchant_id)
        except (PaymentTokenError, KeyError) as exc:
            raise WalletError(f"cannot encrypt to the merchant: {exc}") from None
        return token

    def _cryptogram(self, card: dict[str, Any], amount: int, un: bytes, merchant_id: str,
                    currency: str, when: datetime, verified: bool, timeout: float
                    ) -> tuple[dict[str, Any], Any]:
        from terminal.pay import perform_transaction
        from terminal.transport import open_transport

        config = in_app_terminal_config(merchant_id, currency)
        capture = _Capture()
        if card["form"] == "hce":
            from hce_card.card import HceCard

            hce = HceCard.from_files(self.dir / "cards" / card["profile"],
                                     self.dir / "cards" / card["state"],
                                     cdcvm=lambda: verified)
            transport = open_transport("loopback:", card=hce)
        else:  # the secure element answers on its reader
            if verified:
                self._se_user_verified(card)
            transport = open_transport(card["reader"])
        clock = datetime.now(UTC)
        result = perform_transaction(
            transport, config, amount, authorise=capture,
            now=when.replace(hour=clock.hour, minute=clock.minute, second=clock.second),
            unpredictable_number=un, card_timeout=timeout, merchant_forced_online=True,
            rng=random.Random(int.from_bytes(os.urandom(4), "big")))
        if capture.request is None or "55" not in capture.request:
            raise WalletError(f"the device card gave no online cryptogram: "
                              f"{result.final_outcome or result.outcome} ({result.reason})")
        return capture.request, result

    def _se_user_verified(self, card: dict[str, Any]) -> None:
        """The SE form's CDCVM signal is the applet's; the lab's applet has none, so an SE
        card's device verification is reported by the wallet in the payment token only."""


def _run_script(reader: str, apdus: list[bytes], timeout: float) -> int:
    """Send the personalisation script (STORE DATA commands) to the secure element on
    ``reader``; every command must answer 9000."""
    from terminal.transport import open_transport
    from terminal.transport.base import TransportError

    try:
        transport = open_transport(reader)
    except (TransportError, ValueError) as exc:
        raise WalletError(f"the secure element's reader {reader!r}: {exc}") from None
    try:
        transport.connect(timeout)
        for n, apdu in enumerate(apdus):
            response = transport.transmit(apdu)
            sw = int.from_bytes(response[-2:], "big")
            if sw != 0x9000:
                raise WalletError(f"the secure element answered {sw:04X} to script command "
                                  f"{n + 1}/{len(apdus)}")
    except (OSError, TransportError) as exc:
        raise WalletError(f"the secure element on {reader}: {exc}") from None
    finally:
        transport.close()
    return len(apdus)

