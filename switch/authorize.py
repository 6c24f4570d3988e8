"""The authorization host: one request message in, one response message out.

Flow of a 0100 / 0200 (docs/architecture.md, "One tap, as data" step 5):

1. parse (:func:`emvtap.iso8583.decode_message`; malformed → DE 39 = 30 where the MTI is
   readable, else no answer and the connection is closed);
2. retransmission? (same MTI, DE 41, DE 11, DE 37) → the recorded response, byte for byte; the
   same key with other content → 94;
3. find the token (DE 2 = MPAN) → 14 when unknown;
4. token state (deleted 14, suspended 62), token expiry (54), domain (57);
5. ARQC from DE 55 with the token's keys, by the row of ``emvtap.cryptogram_versions`` for the
   CVN in the IAD (PBOC CVN 01, Visa CVN 18, Mastercard CVN 16; the token's enrolled CVN must
   match), or the HCE limited-use key for that ATC → 05;
6. DE 4 / DE 49 equal to the signed 9F02 / 5F2A → 05;
7. ATC: a verified (MPAN, ATC) already recorded → replay, 05; far below the highest → 05;
8. MPAN → SPAN, issuer host (card status, expiry, in-app limit, daily limit, balance);
9. response: DE 39, DE 38 on approval, DE 55 ``91`` = ARPC ‖ ARC whenever the ARQC verified
   (declines are authenticated too), ``72`` APPLICATION BLOCK when the token is deleted or the
   physical card lost/cancelled, DE 48 token data and DE 56 PAR; DE 2 stays the MPAN.

Everything a request changes (the record, the ATC, the balance, a limited-use key) is written in
the caller's transaction; the server commits it before the response leaves
(:mod:`switch.server`).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emvtap import tlv
from emvtap.device_types import DeviceType
from emvtap.iso8583 import (
    MTIS,
    MessageFormatError,
    TokenData,
    decode_message,
    decode_token_data,
    encode_message,
    encode_token_data,
)
from emvtap.masking import mask_pan, mask_text, redact_tlv_bytes
from switch.arqc import (
    IccData,
    IccDataError,
    application_block_script,
    icc_cryptogram_version,
    issuer_authentication_data,
    parse_icc_data,
    verify_arqc,
)
from switch.codes import Reason, response_code
from switch.domain import check_domain
from switch.issuer import IssuerRequest, decide
from switch.pin import TEST_ZPK
from switch.store import Store, Token, utc_now
from switch.token_states import TokenState

__all__ = ["MANDATORY_FIELDS", "SCRIPT_REASONS", "Authorizer", "HostConfig"]

log = logging.getLogger("switch.authorize")

#: request MTI → data elements without which the request is a format error (DE 39 = 30).
MANDATORY_FIELDS: dict[str, tuple[str, ...]] = {
    "0100": ("3", "4", "11", "22", "41", "49", "55"),
    "0200": ("3", "4", "11", "22", "41", "49", "55"),
    "0400": ("4", "11", "41", "90"),
    "0800": ("11", "70"),
}

#: data elements copied from the request into the response.
ECHOED_FIELDS: dict[str, tuple[str, ...]] = {
    "0100": ("2", "3", "4", "7", "11", "12", "13", "37", "41", "42", "49"),
    "0200": ("2", "3", "4", "7", "11", "12", "13", "37", "41", "42", "49"),
    "0400": ("2", "3", "4", "7", "11", "37", "41", "42", "49", "90"),
    "0800": ("7", "11", "70"),
}

#: processing codes (DE 3) the host accepts for 0100/0200.
PROCESSING_CODES = frozenset({"000000"})

#: network management codes (DE 70): sign-on, sign-off, echo test.
NETWORK_CODES = frozenset({"001", "002", "301"})

#: reasons for which the response carries an APPLICATION BLOCK script (when the ARQC verified).
SCRIPT_REASONS = frozenset({Reason.TOKEN_DELETED, Reason.CARD_LOST, Reason.CARD_CANCELLED})

#: DE 48 sub-element 04 from the device type.
DEVICE_TYPE_CODES = {
    DeviceType.HANDSET_SE: "01",
    DeviceType.WEARABLE_SE: "02",
    DeviceType.HCE: "03",
}
TOKEN_STATUS_CODES = {
    TokenState.ACTIVE: "A",
    TokenState.SUSPENDED: "S",
    TokenState.DELETED: "D",
}


@dataclass(frozen=True)
class HostConfig:
    #: an ATC at or below (highest verified ATC - window) is "too old" (a replayed ATC is declined)
    atc_window: int = 32
    #: zone PIN key DE 52 is enciphered under (switch.pin); kept out of reprs
    zpk: bytes = field(default=TEST_ZPK, repr=False)


@dataclass
class _Decision:
    reason: Reason
    token: Token | None = None
    icc: IccData | None = None
    session_key: bytes | None = field(default=None, repr=False)
    verified: bool = False
    account_id: int | None = None
    posted: int = 0
    atc_fresh: bool = False  # no verified cryptogram of this token has this ATC yet
    token_data: TokenData = field(default_factory=TokenData)


def _valid_stan(stan: str | None) -> bool:
    """DE 11 is n 6 (ISO 8583:1987): only such a value may be echoed in a reply."""
    return stan is not None and len(stan) == 6 and stan.isascii() and stan.isdigit()


def _pan_from_track2(track2: str | None) -> str | None:
    if not track2 or "=" not in track2:
        return None
    pan = track2.split("=", 1)[0]
    return pan if 12 <= len(pan) <= 19 else None


def _content_key(store: Store, fields: Mapping[str, Any]) -> str:
    """What must be identical for a message to be a retransmission (DE 7 may change): a keyed
    digest, since the fields include the PAN (:meth:`switch.sealing.Sealer.digest`)."""
    canon = {
        k: (v.hex() if isinstance(v, bytes | bytearray) else v)
        for k, v in fields.items()
        if k not in ("7", "52")
    }
    return store.sealer.digest(json.dumps(canon, sort_keys=True).encode())


@functools.lru_cache(maxsize=4096)
def _token_data_text(
    trid: str, status: str, par: str, device_type: str | None, channel: str | None, level: str
) -> str:
    """DE 48 of a response (the same few values over and over: cached)."""
    return encode_token_data(
        TokenData(
            token_requestor_id=trid,
            token_status=status,
            par=par if len(par) == 29 else None,
            device_type=device_type,
            channel=channel,
            assurance_level=level,
        )
    )


#: DE 48 sub-element 05 → the channel's name in the history (docs/domain.md)
CHANNEL_NAMES = {"A": "in-app", "P": "contactless"}


def _channel_name(entry_mode: str, channel: str | None) -> str:
    """The channel the issuer sees (docs/domain.md, A transaction with a token): DE 48's mark,
    else what the POS entry mode says (81: in-app)."""
    if channel in CHANNEL_NAMES:
        return CHANNEL_NAMES[channel]
    return "in-app" if entry_mode[:2] == "81" else "contactless"


def _online_pin_cvm(icc: IccData) -> bool:
    """CVM Results (9F34) byte 1, b6-b1 = 02: enciphered PIN verified online (Book 3 C3)."""
    cvm = icc.values.get(0x9F34)
    return bool(cvm) and cvm[0] & 0x3F == 0x02


def _auth_code(content_key: str) -> str:
    """DE 38: six digits derived from the request (unique enough for a lab; stable for a
    retransmission, which is answered from the record anyway)."""
    return f"{int(content_key[:12], 16) % 1_000_000:06d}"


def _stored_icc_data(value: Any, is_tlv: bool) -> str:
    """DE 55 as the record keeps it: track data, PAN and name overwritten; DE 55 that is not
    BER-TLV cannot be searched for them, so only its length is kept. ``is_tlv``: it already
    decoded (as DE 55 of an authorization whose ICC data parsed), no need to try again."""
    raw = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
    if not is_tlv:
        try:
            tlv.decode(raw)
        except tlv.TlvError:
            return f"<{len(raw)} bytes, not TLV: not kept>"
    return redact_tlv_bytes(raw).hex().upper()


def _stored_request(fields: Mapping[str, Any], icc_is_tlv: bool = False) -> dict[str, Any]:
    """The request as the record keeps it (PCI DSS 3.3, 3.5.1): never a PIN block (DE 52),
    the PAN (DE 2) masked, track 2 (DE 35) reduced to its masked PAN, DE 55 with any track
    data, PAN or name overwritten, and any PAN-like number in the other text fields masked."""
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if k == "52":
            continue
        if k == "2":
            v = mask_pan(str(v))
        elif k == "35":
            v = mask_pan(str(v).split("=")[0]) + "=…"
        elif k == "55":
            v = _stored_icc_data(v, icc_is_tlv)
        elif isinstance(v, str):
            v = mask_text(v)
        out[k] = v.hex().upper() if isinstance(v, bytes | bytearray) else v
    return out


class Authorizer:
    """Handles one decoded request at a time against the store (not thread-safe by design:
    the server runs all requests on one host thread, in batches)."""

    def __init__(
        self,
        store: Store,
        config: HostConfig | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.config = config or HostConfig()
        self.clock = clock
        self._device_types: dict[str, DeviceType] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "0100": self._authorize,
            "0200": self._authorize,
            "0400": self._reverse,
            "0800": self._network,
        }

    # --- entry points --------------------------------------------------------------------------

    def handle_raw(self, raw: bytes) -> bytes | None:
        """Response message for ``raw`` (both without the frame), or ``None`` when no answer is
        possible (MTI unreadable or not a request): the caller then closes the connection."""
        try:
            fields = decode_message(raw)
        except MessageFormatError as exc:
            log.warning("malformed message: %s (MTI %s)", exc, exc.mti)
            if exc.mti in MTIS and exc.mti in self._handlers:
                reply: dict[str, Any] = {"t": MTIS[exc.mti], "39": "30"}
                if _valid_stan(exc.stan):  # echo only what validated
                    reply["11"] = exc.stan
                return encode_message(reply)
            return None
        return self.handle(fields)

    def handle(self, fields: dict[str, Any]) -> bytes | None:
        mti = fields["t"]
        handler = self._handlers.get(mti)
        if handler is None:
            log.warning("message %s is not a request; closing", mti)
            return None
        try:
            with self.store.transaction():
                return handler(fields)
        except Exception:
            log.exception("host error on %s STAN %s", mti, fields.get("11"))
            try:
                return self._reply(fields, response_code(Reason.SYSTEM_ERROR))
            except MessageFormatError:  # nothing valid to answer with: the sender is closed
                return None

    def _pan_ref(self, pan: str) -> str:
        """How the record names a DE 2 that is no token (perhaps a clear card number): its
        keyed hash, never the number."""
        return "ref:" + self.store.pan_ref(pan)

    def _device_type(self, device_id: str) -> DeviceType | None:
        """A device's type never changes once registered: cached."""
        if device_id not in self._device_types:
            device = self.store.device(device_id)
            if device is None:
                return None
            self._device_types[device_id] = device.device_type
        return self._device_types[device_id]

    # --- response building ---------------------------------------------------------------------

    def _reply(self, req: Mapping[str, Any], code: str, **extra: Any) -> bytes:
        mti = req["t"]
        out: dict[str, Any] = {"t": MTIS[mti]}
        for key in ECHOED_FIELDS[mti]:
            if key in req:
                out[key] = req[key]
        out["39"] = code
        out.update({k: v for k, v in extra.items() if v is not None})
        return encode_message(dict(sorted(out.items(), key=lambda kv: _order(kv[0]))))

    def _format_error(self, req: Mapping[str, Any], why: str) -> bytes:
        log.warning("format error %s STAN %s: %s", req["t"], req.get("11"), why)
        return self._reply(req, response_code(Reason.FORMAT_ERROR))

    def _retransmission(self, req: Mapping[str, Any], content_key: str) -> bytes | None:
        """The recorded response of a retransmission, a 94 for a duplicate key with other
        content, or ``None`` for a new request."""
        prior = self.store.find_authorization(req["t"], req["41"], req["11"], req.get("37", ""))
        if prior is None:
            return None
        if prior["content_key"] == content_key:
            log.info(
                "retransmission %s STAN %s terminal %s answered from record %d (DE39 %s)",
                req["t"],
                req["11"],
                req["41"],
                prior["id"],
                prior["response_code"],
            )
            return bytes(prior["response"])
        log.warning("duplicate STAN %s terminal %s with other content", req["11"], req["41"])
        return self._reply(req, response_code(Reason.DUPLICATE_TRANSMISSION))

    # --- 0100 / 0200 ---------------------------------------------------------------------------

    def _authorize(self, req: dict[str, Any]) -> bytes:
        missing = [f for f in MANDATORY_FIELDS[req["t"]] if f not in req]
        pan = req.get("2") or _pan_from_track2(req.get("35"))
        if missing or not pan:
            return self._format_error(req, f"missing DE {' '.join(missing) or '2/35'}")
        try:
            token_data = decode_token_data(req["48"]) if "48" in req else TokenData()
        except MessageFormatError as exc:
            return self._format_error(req, str(exc))
        content_key = _content_key(self.store, req)
        prior = self._retransmission(req, content_key)
        if prior is not None:
            return prior

        now = self.clock()
        decision = self._decide(req, pan, token_data, now)
        amount = int(req["4"])
        record_atc = (
            decision.icc.atc_int
            if decision.verified and decision.atc_fresh and decision.icc is not None
            else None
        )
        auth_code = _auth_code(content_key) if decision.reason is Reason.APPROVED else None
        response = self._authorization_response(req, decision, auth_code)
        self.store.record_authorization(
            received_at=now,
            mti=req["t"],
            terminal_id=req["41"],
            stan=req["11"],
            rrn=req.get("37", ""),
            content_key=content_key,
            mpan=pan if decision.token else self._pan_ref(pan),
            span=decision.token.span if decision.token else None,
            account_id=decision.account_id,
            atc=record_atc,
            cryptogram=decision.icc.arqc.hex().upper() if decision.icc else None,
            amount=amount,
            currency=req["49"],
            response_code=response_code(decision.reason),
            reason=decision.reason.value,
            posted=decision.posted,
            auth_code=auth_code,
            request=_stored_request(req, icc_is_tlv=decision.icc is not None),
            response=response,
            entry_mode=req["22"],
            channel=_channel_name(req["22"], decision.token_data.channel or token_data.channel),
        )
        if record_atc is not None and decision.token is not None:
            self.store.raise_max_atc(decision.token.mpan, record_atc)
        if log.isEnabledFor(logging.INFO):
            self._log_decision(req, pan, amount, decision)
        return response

    def _log_decision(
        self, req: Mapping[str, Any], pan: str, amount: int, decision: _Decision
    ) -> None:
        log.info(
            "%s %s STAN %s terminal %s amount %s → %s %s%s",
            req["t"],
            mask_pan(pan),
            req["11"],
            req["41"],
            amount,
            response_code(decision.reason),
            decision.reason.value,
            f" ATC {decision.icc.atc_int}" if decision.icc else "",
        )

    def _decide(
        self, req: Mapping[str, Any], pan: str, token_data: TokenData, now: datetime
    ) -> _Decision:
        if req["3"] not in PROCESSING_CODES:
            return _Decision(Reason.INVALID_TRANSACTION)
        token = self.store.token(pan)
        try:
            # the token's CVN settles an IAD that reads validly in two layouts (switch.arqc)
            icc = parse_icc_data(req["55"], expected_cvn=token.cvn if token else None)
        except IccDataError as exc:
            log.warning("DE 55 of %s: %s", mask_pan(pan), exc)
            return _Decision(Reason.ICC_DATA_INVALID)
        if token is None:
            return _Decision(Reason.UNKNOWN_TOKEN, icc=icc)
        d = _Decision(Reason.APPROVED, token=token, icc=icc, token_data=token_data)
        crypto_failure = self._verify(d, now)
        # every recorded ATC is at most max_atc: above it, no look-up is needed
        d.atc_fresh = icc.atc_int > token.max_atc or not self.store.atc_seen(
            token.mpan, icc.atc_int
        )
        yymm = f"{now.year % 100:02d}{now.month:02d}"
        amount = int(req["4"])

        checks: tuple[tuple[Reason, Callable[[], bool]], ...] = (
            (Reason.TOKEN_DELETED, lambda: token.state is TokenState.DELETED),
            (Reason.TOKEN_SUSPENDED, lambda: token.state is TokenState.SUSPENDED),
            (Reason.TOKEN_EXPIRED, lambda: token.token_expiry < yymm),
        )
        for reason, failed in checks:
            if failed():
                d.reason = reason
                return d
        domain_failure = check_domain(
            token.domain,
            entry_mode=req["22"],
            merchant_id=req.get("42"),
            token_requestor_id=token_data.token_requestor_id,
            issued_to=token.token_requestor_id,
        )
        later: tuple[tuple[Reason | None, Callable[[], bool]], ...] = (
            (domain_failure, lambda: domain_failure is not None),
            (crypto_failure, lambda: crypto_failure is not None),
            (Reason.NOT_AN_ARQC, lambda: not icc.is_arqc),
            (
                Reason.AMOUNT_MISMATCH,
                lambda: amount != icc.amount or req["49"] != icc.currency,
            ),
            (Reason.ATC_REPLAYED, lambda: not d.atc_fresh),
            (
                Reason.ATC_TOO_OLD,
                lambda: icc.atc_int <= token.max_atc - self.config.atc_window,
            ),
        )
        for maybe_reason, failed in later:
            if failed() and maybe_reason is not None:
                d.reason = maybe_reason
                return d
        reason, account_id = decide(
            self.store,
            IssuerRequest(
                span=token.span,
                amount=amount,
                currency=req["49"],
                entry_mode=req["22"],
                channel=token_data.channel,
                device_verified=token_data.device_verified,
                yymm=yymm,
                day=f"{now.year:04d}-{now.month:02d}-{now.day:02d}",
                pin_block=req.get("52"),
                pin_pan=pan,
                online_pin_cvm=_online_pin_cvm(icc),
            ),
            self.config.zpk,
        )
        d.reason, d.account_id = reason, account_id
        d.posted = amount if reason is Reason.APPROVED else 0
        return d

    def _verify(self, d: _Decision, now: datetime) -> Reason | None:
        """Verify the ARQC; fills ``d.session_key``/``d.verified``; the failure reason or None."""
        assert d.token is not None and d.icc is not None
        token, icc = d.token, d.icc
        method = icc_cryptogram_version(icc)
        if method is None or icc.cvn != token.cvn:
            return Reason.UNSUPPORTED_CVN
        if token.limited_use:
            if not method.limited_use:  # its session key needs more than the ATC
                return Reason.UNSUPPORTED_CVN
            issued = self.store.limited_use_key(token.mpan, icc.atc_int)
            if issued is None:
                return Reason.LIMITED_USE_KEY_NOT_ISSUED
            key, _used_at = issued
            d.session_key = key
            d.verified = verify_arqc(icc, key)
            if not d.verified:
                return Reason.CRYPTOGRAM_INVALID
            if not self.store.use_limited_use_key(token.mpan, icc.atc_int, now):
                return Reason.LIMITED_USE_KEY_USED
            return None
        d.session_key = method.session_key(token.key_ac, icc.atc, icc.values)
        d.verified = verify_arqc(icc, d.session_key)
        return None if d.verified else Reason.CRYPTOGRAM_INVALID

    def _authorization_response(
        self, req: Mapping[str, Any], d: _Decision, auth_code: str | None
    ) -> bytes:
        code = response_code(d.reason)
        icc_objects: list[tlv.Tlv] = []
        if d.verified and d.icc is not None and d.session_key is not None:
            icc_mk = d.token.key_ac if d.token is not None else None
            icc_objects.append(
                tlv.Tlv.primitive(
                    0x91, issuer_authentication_data(d.icc, d.session_key, code, icc_mk)
                )
            )
            if d.reason in SCRIPT_REASONS and d.token is not None:
                icc_objects.append(application_block_script(d.icc, d.token.key_smi))
        token_data = None
        par = None
        if d.token is not None:
            device_type = self._device_type(d.token.device_id)
            token_data = _token_data_text(
                d.token.token_requestor_id,
                TOKEN_STATUS_CODES[d.token.state],
                d.token.par,
                DEVICE_TYPE_CODES.get(device_type) if device_type else None,
                d.token_data.channel,
                d.token.assurance_level,
            )
            par = d.token.par
        return self._reply(
            req,
            code,
            **{
                "38": auth_code,
                "48": token_data,
                "55": tlv.encode(icc_objects) if icc_objects else None,
                "56": par,
            },
        )

    # --- 0400 ----------------------------------------------------------------------------------

    def _reverse(self, req: dict[str, Any]) -> bytes:
        """Reversal: give back DE 4 of the original's posting (found by DE 90's MTI and STAN
        with DE 41, DE 37) - all of it or part - never more than it posted; a retransmitted
        0400 is answered from the record. See :func:`_reversal_reason`."""
        missing = [f for f in MANDATORY_FIELDS["0400"] if f not in req]
        if missing:
            return self._format_error(req, f"missing DE {' '.join(missing)}")
        content_key = _content_key(self.store, req)
        prior = self._retransmission(req, content_key)
        if prior is not None:
            return prior
        orig_mti, orig_stan = req["90"][:4], req["90"][4:10]
        original = self.store.find_authorization(orig_mti, req["41"], orig_stan, req.get("37", ""))
        pan = req.get("2")
        if original is not None and pan not in (None, original["mpan"], self._pan_ref(pan or "")):
            original = None  # DE 2 names another card than the original's
        amount = int(req["4"])
        reason = _reversal_reason(original, amount)
        auth_id = self.store.record_authorization(
            received_at=self.clock(),
            mti="0400",
            terminal_id=req["41"],
            stan=req["11"],
            rrn=req.get("37", ""),
            content_key=content_key,
            mpan=(
                original["mpan"]
                if original is not None
                else (self._pan_ref(req["2"]) if "2" in req else None)
            ),
            span_ref=original["span"] if original is not None else None,
            account_id=original["account_id"] if original is not None else None,
            amount=amount,
            currency=req.get("49"),
            response_code=response_code(reason),
            reason=reason.value,
            original_id=original["id"] if original is not None else None,
            request=_stored_request(req),
            response=b"",
        )
        if reason in (Reason.REVERSED, Reason.PARTIALLY_REVERSED) and original is not None:
            day = str(original["received_at"])[:10]
            self.store.post(original["account_id"], amount, day=day)
            self.store.mark_reversed(original["id"], auth_id, amount)
        response = self._reply(req, response_code(reason))
        self.store.set_authorization_response(auth_id, response)
        log.info(
            "0400 STAN %s terminal %s for %s STAN %s → %s %s",
            req["11"],
            req["41"],
            orig_mti,
            orig_stan,
            response_code(reason),
            reason.value,
        )
        return response

    # --- 0800 ----------------------------------------------------------------------------------

    def _network(self, req: dict[str, Any]) -> bytes:
        if "70" not in req or "11" not in req:
            return self._format_error(req, "0800 without DE 70/11")
        reason = Reason.NETWORK_OK if req["70"] in NETWORK_CODES else Reason.INVALID_TRANSACTION
        return self._reply(req, response_code(reason))


def _reversal_reason(original: Mapping[str, Any] | None, amount: int) -> Reason:
    """The outcome of a 0400 for ``amount`` (DE 4) against its original, as acquirer hosts
    answer (ISO 8583:1987 DE 39): no original → 25 "unable to locate record"; an original that
    posted nothing (declined) or is wholly reversed → 21 "no action taken"; zero or more than
    what is left to reverse → 13 "invalid amount"; else 00, in full or in part."""
    if original is None:
        return Reason.ORIGINAL_NOT_FOUND
    left = int(original["posted"]) - int(original["reversed_amount"])
    if left <= 0:
        return Reason.ALREADY_REVERSED if original["reversed_by"] else Reason.NOTHING_TO_REVERSE
    if not 0 < amount <= left:
        return Reason.REVERSAL_AMOUNT_INVALID
    return Reason.REVERSED if amount == left else Reason.PARTIALLY_REVERSED


def _order(key: str) -> int:
    return -1 if key == "t" else int(key)
