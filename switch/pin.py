"""Online PIN at the issuer (ISO 9564-1; docs/domain.md, "SPAN and MPAN": the device card
and the SPAN's account share the same transaction password).

DE 52 carries an ISO 9564-1 format 0 PIN block enciphered under the zone PIN key (ZPK) shared by
the acquirer (the terminal) and the switch: ``3DES_ZPK(PIN field XOR PAN field)`` with

- PIN field = ``0`` ‖ PIN length ‖ PIN digits ‖ ``F`` padding (16 nibbles);
- PAN field = ``0000`` ‖ the 12 rightmost PAN digits excluding the check digit — the PAN the
  terminal read, i.e. the **MPAN** for a device card.

The issuer keeps only a salted PBKDF2 hash of the PIN per account. emvtap's lab ZPK is
:data:`TEST_ZPK`, the ``pin_encryption_key`` of the shipped terminal configuration
(terminal/data/terminal.json), so the two meet without configuration; ``emvtap switch serve
--zpk HEX`` sets another (a test key either way: never a production key).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from emvtap.pinblock import PinBlockError, encipher_pin_block, pin_from_block

__all__ = [
    "TEST_ZPK",
    "PinBlockError",
    "encipher_pin_block",
    "hash_pin",
    "pin_from_block",
    "verify_pin",
]

#: the lab's zone PIN key (double-length DES), as in terminal/data/terminal.json
TEST_ZPK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
_ITERATIONS = 2000


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """``pbkdf2-sha256$iterations$salt$hash`` (what the accounts table stores)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, _ITERATIONS)
    return f"pbkdf2-sha256${_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_pin(pin_hash: str | None, zpk: bytes, block: bytes, pan: str) -> bool:
    """Does the enciphered PIN block carry the account's PIN? False for anything malformed."""
    if not pin_hash:
        return False
    try:
        pin = pin_from_block(zpk, block, pan)
        scheme, iterations, salt, digest = pin_hash.split("$")
    except (PinBlockError, ValueError):
        return False
    if scheme != "pbkdf2-sha256":
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(candidate.hex(), digest)
