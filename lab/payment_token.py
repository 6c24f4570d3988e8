"""The in-app payment token: the device card's EMV data, encrypted by the wallet to the
merchant's public key (docs/domain.md, "In-app payment").

Hybrid encryption with the library ``cryptography``, the shape wallets use for in-app payment
data: an ephemeral P-256 key pair per token, ECDH with the merchant's P-256 public key, HKDF-SHA256
over the shared secret (info names this format and the merchant id) to a 256-bit key, and
AES-256-GCM over the JSON payload with a random 96-bit nonce. The merchant id and the key id are
authenticated as associated data, so a token made for one merchant does not open at another.

Document (``emvtap-inapp-token/1``)::

    {"format": "emvtap-inapp-token/1", "merchant_id": "...", "key_id": "<SHA-256 of the
     merchant's public key, 16 hex>", "ephemeral_public_key": "<X9.62 uncompressed, hex>",
     "nonce": "<hex>", "ciphertext": "<hex, GCM tag included>"}
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from emvtap.private_files import write_private_text

__all__ = [
    "TOKEN_FORMAT",
    "PaymentTokenError",
    "decrypt_payment_token",
    "encrypt_payment_token",
    "generate_merchant_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
]

TOKEN_FORMAT = "emvtap-inapp-token/1"


class PaymentTokenError(ValueError):
    """A token that is not one, not for this merchant, or does not decrypt."""


def generate_merchant_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """A new P-256 key pair; the private key written as PKCS#8 PEM, owner-only."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private_text(path, pem.decode())
    return key


def load_private_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise PaymentTokenError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise PaymentTokenError(f"{path}: the merchant key must be an EC P-256 key")
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise PaymentTokenError(f"the merchant's public key is not PEM ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise PaymentTokenError("the merchant's public key must be an EC P-256 key")
    return key


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    return hashlib.sha256(_point(key)).hexdigest()[:16]


def _aead_key(shared: bytes, merchant_id: str) -> bytes:
    info = f"{TOKEN_FORMAT} {merchant_id}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _aad(merchant_id: str, kid: str) -> bytes:
    return json.dumps([TOKEN_FORMAT, merchant_id, kid]).encode()


def encrypt_payment_token(payload: dict[str, Any], merchant_public_key_pem: str,
                          merchant_id: str) -> dict[str, Any]:
    """Encrypt ``payload`` (JSON-able) to the merchant."""
    merchant = load_public_key(merchant_public_key_pem)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    shared = ephemeral.exchange(ec.ECDH(), merchant)
    kid = key_id(merchant)
    nonce = os.urandom(12)
    data = json.dumps(payload, sort_keys=True).encode()
    ciphertext = AESGCM(_aead_key(shared, merchant_id)).encrypt(nonce, data,
                                                               _aad(merchant_id, kid))
    return {"format": TOKEN_FORMAT, "merchant_id": merchant_id, "key_id": kid,
            "ephemeral_public_key": _point(ephemeral.public_key()).hex(),
            "nonce": nonce.hex(), "ciphertext": ciphertext.hex()}


def decrypt_payment_token(token: Any, key: ec.EllipticCurvePrivateKey,
                          merchant_id: str) -> dict[str, Any]:
    """The payload of ``token``; :class:`PaymentTokenError` saying why it cannot be read."""
    if not isinstance(token, dict) or token.get("format") != TOKEN_FORMAT:
        raise PaymentTokenError(f"not a payment token (format {TOKEN_FORMAT} expected)")
    if token.get("merchant_id") != merchant_id:
        raise PaymentTokenError(f"the token is for merchant {token.get('merchant_id')!r}, "
                                f"not {merchant_id!r}")
    kid = key_id(key.public_key())
    if token.get("key_id") != kid:
        raise PaymentTokenError("the token was encrypted to another key of the merchant")
    try:
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), bytes.fromhex(str(token["ephemeral_public_key"])))
        nonce = bytes.fromhex(str(token["nonce"]))
        ciphertext = bytes.fromhex(str(token["ciphertext"]))
    except (KeyError, ValueError) as exc:
        raise PaymentTokenError(f"the token is malformed: {exc}") from None
    shared = key.exchange(ec.ECDH(), ephemeral)
    try:
        data = AESGCM(_aead_key(shared, merchant_id)).decrypt(nonce, ciphertext,
                                                             _aad(merchant_id, kid))
    except (InvalidTag, ValueError):
        raise PaymentTokenError("the token does not decrypt (altered, or not for this key)"
                                ) from None
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise PaymentTokenError("the token's payload is not an object")
    return payload
