"""The certificate chain of an application checked with the shipped CA public keys (EMV 4.4
Book 2, 5.2-5.3 and 6.2-6.4): CA key by RID and index 8F, issuer key from 90/92/9F32, ICC key
from 9F46/9F48/9F47 over the static data of the AFL. Reports what was recovered (issuer
identifier, expiry, key length, serial), whether the PAN matches, the Signed Static
Application Data (93) when the card has it (Book 2, 5.4), and for each part that could not be
verified, why. An expired certificate is still recovered, and reported expired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from emvtap import oda
from emvtap.capk import CapkStore
from emvtap.rsa import RsaPublicKey

__all__ = ["check_certificates"]

#: A date before every certificate's expiry: recovers an expired certificate to report it.
_LONG_AGO = date(2000, 1, 1)


@dataclass
class _Recovered:
    key: Any
    expired: bool


def _recover(fn: Any, *args: Any, today: date) -> _Recovered:
    try:
        return _Recovered(fn(*args, today), False)
    except oda.OdaError as exc:
        if "expired" not in exc.reason:
            raise
    return _Recovered(fn(*args, _LONG_AGO), True)


def _mmyy(value: bytes) -> str:
    text = value.hex()
    return f"20{text[2:]}-{text[:2]}" if len(text) == 4 and text.isdigit() else text.upper()


def _key_json(key: RsaPublicKey) -> dict[str, Any]:
    return {"bits": key.modulus_len * 8, "exponent": key.e}


def _check_ssad(ipk: oda.IssuerPublicKey, ssad: bytes, static_data: bytes | None,
                static_error: str | None, missing: list[str]) -> dict[str, Any]:
    """Book 2, 5.4: the Signed Static Application Data 93 under the issuer key, over the
    static data to be authenticated - SDA, which a read can check in full."""
    if static_data is None:
        missing.append(f"SSAD: static data not available ({static_error})")
        return {"verified": False, "error": f"static data: {static_error}"}
    try:
        dac = oda.recover_ssad(ipk, ssad, static_data)
    except oda.OdaError as exc:
        missing.append(f"SSAD: {exc.reason}")
        return {"verified": False, "error": exc.reason}
    return {"verified": True, "data_authentication_code": dac.hex().upper()}


def check_certificates(aid: bytes, card: Mapping[int, bytes], pan: str | None,
                       static_data: bytes | None, static_error: str | None,
                       capks: CapkStore, today: date) -> dict[str, Any]:
    """The chain report of one application (JSON-ready). Never raises for card data."""
    out: dict[str, Any] = {"not_verified": []}
    missing = out["not_verified"]
    index = card.get(0x8F)
    if index is None:
        missing.append("the card gives no CA public key index (8F): no offline data "
                       "authentication data")
        return out
    rid = aid[:5]
    label = f"{rid.hex().upper()}/{index.hex().upper()}"
    out["capk"] = label
    capk = capks.get(rid, index[0]) if len(index) == 1 else None
    out["capk_known"] = capk is not None
    if capk is None:
        missing.append(f"CA public key {label} is not in the shipped list: nothing verified")
        return out
    out["capk_test_key"] = capk.test
    if 0x90 not in card or 0x9F32 not in card:
        missing.append("issuer public key certificate (90) or exponent (9F32) missing")
        return out
    if pan is None:
        missing.append("no PAN (5A or track 2) to check the certificates against")
        return out
    issuer: dict[str, Any] = {}
    out["issuer"] = issuer
    try:
        rec = _recover(oda.recover_issuer_public_key, capk, card[0x90], card.get(0x92, b""),
                       card[0x9F32], pan, today=today)
    except oda.OdaError as exc:
        issuer.update(recovered=False, error=exc.reason)
        missing.append(f"issuer certificate: {exc.reason}")
        return out
    ipk: oda.IssuerPublicKey = rec.key
    issuer.update(recovered=True, issuer_identifier=ipk.issuer_id.hex().upper(),
                  pan_matches=True, expiry=_mmyy(ipk.expiry_mmyy), expired=rec.expired,
                  serial=ipk.serial.hex().upper(), key=_key_json(ipk.public_key))
    if rec.expired:
        missing.append(f"issuer certificate expired {_mmyy(ipk.expiry_mmyy)}")
    if 0x93 in card:
        out["ssad"] = _check_ssad(ipk, card[0x93], static_data, static_error, missing)
    if 0x9F46 not in card or 0x9F47 not in card:
        out["icc"] = None
        missing.append("no ICC public key certificate (9F46/9F47): SDA card or not "
                       "personalised for DDA/CDA")
        return out
    icc: dict[str, Any] = {}
    out["icc"] = icc
    if static_data is None:
        icc.update(recovered=False, error=f"static data: {static_error}")
        missing.append(f"ICC certificate: static data not available ({static_error})")
        return out
    try:
        rec = _recover(oda.recover_icc_public_key, ipk, card[0x9F46], card.get(0x9F48, b""),
                       card[0x9F47], static_data, pan, today=today)
    except oda.OdaError as exc:
        icc.update(recovered=False, error=exc.reason,
                   pan_matches=False if "PAN" in exc.reason else None)
        missing.append(f"ICC certificate: {exc.reason}")
        return out
    icpk: oda.IccPublicKey = rec.key
    icc.update(recovered=True, pan_matches=True, expiry=_mmyy(icpk.expiry_mmyy),
               expired=rec.expired, serial=icpk.serial.hex().upper(),
               key=_key_json(icpk.public_key))
    if rec.expired:
        missing.append(f"ICC certificate expired {_mmyy(icpk.expiry_mmyy)}")
    missing.append("dynamic signature (DDA/fDDA/CDA) not checked: a read sends no "
                   "INTERNAL AUTHENTICATE or GENERATE AC")
    return out
