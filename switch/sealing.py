"""Card data at rest (PCI DSS v4.0 requirement 3.5.1: the PAN unreadable wherever it is
stored): the switch's store keeps card numbers (SPANs) and keys (ICC master keys, limited-use
keys) only sealed with AES-256-GCM, and finds a SPAN by its keyed hash (HMAC-SHA-256), never by
the number itself.

Both keys are derived (HKDF-SHA-256, RFC 5869) from one **key-encryption key** (KEK) of 32
bytes that is never in the database:

- ``$EMVTAP_SWITCH_KEK`` (64 hex digits) when set, else
- the file ``<store>.kek`` next to the store: created at mode 0600 with a random KEK on first
  use (``0600`` is enforced also when an older file was wider open).

A copy of the database file alone therefore yields no PAN and no key. Lose the KEK and the
sealed data is lost with it: back it up apart from the database. The store records a check
value of the KEK, so opening it with another KEK fails with a clear error instead of reading
garbage. See docs/switch-data-at-rest.md.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from emvtap.private_files import PRIVATE_MODE, write_private_text

__all__ = ["KEK_ENV", "KekError", "Sealer", "kek_path", "load_or_create_kek"]

KEK_ENV = "EMVTAP_SWITCH_KEK"
_KEK_LEN = 32
_NONCE_LEN = 12


class KekError(ValueError):
    """The key-encryption key is missing, malformed or not the one the store was sealed with,
    or a sealed value does not open under it."""


def kek_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.kek")


def _parse(text: str, where: str) -> bytes:
    try:
        kek = bytes.fromhex(text.strip())
    except ValueError:
        raise KekError(f"{where}: the key-encryption key is not hex") from None
    if len(kek) != _KEK_LEN:
        raise KekError(f"{where}: the key-encryption key is {_KEK_LEN * 2} hex digits")
    return kek


def load_or_create_kek(db_path: str | Path) -> bytes:
    """The KEK from ``$EMVTAP_SWITCH_KEK``, else from ``<db_path>.kek`` (created, 0600)."""
    if os.environ.get(KEK_ENV):
        return _parse(os.environ[KEK_ENV], f"${KEK_ENV}")
    if str(db_path) == ":memory:":
        return secrets.token_bytes(_KEK_LEN)
    path = kek_path(db_path)
    if path.exists():
        os.chmod(path, PRIVATE_MODE)
        return _parse(path.read_text(), str(path))
    kek = secrets.token_bytes(_KEK_LEN)
    write_private_text(path, kek.hex() + "\n")
    return kek


class Sealer:
    """Seals and opens values under keys derived from the KEK; computes the PAN index."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != _KEK_LEN:
            raise KekError(f"the key-encryption key is {_KEK_LEN} bytes")

        def derive(label: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, salt=None, info=label).derive(kek)

        self._aead = AESGCM(derive(b"emvtap switch: seal card data v1"))
        self._index_key = derive(b"emvtap switch: PAN index v1")
        self._digest_key = derive(b"emvtap switch: record digest v1")
        self._refs: dict[str, str] = {}
        self._opened: dict[tuple[bytes, str], bytes] = {}
        self.check_value = hmac.new(self._index_key, b"check", hashlib.sha256).hexdigest()[:16]

    def pan_ref(self, pan: str) -> str:
        """The PAN's keyed hash (what the store indexes and looks up by): 32 hex digits."""
        ref = self._refs.get(pan)
        if ref is None:
            ref = hmac.new(self._index_key, pan.encode(), hashlib.sha256).hexdigest()[:32]
            if len(self._refs) > 100_000:
                self._refs.clear()
            self._refs[pan] = ref
        return ref

    def digest(self, data: bytes) -> str:
        """A keyed digest (HMAC-SHA-256, 64 hex digits) of data that holds a PAN - such as the
        fields that make a retransmission - so that the stored digest cannot be matched
        against guessed card numbers without the KEK."""
        return hmac.new(self._digest_key, data, hashlib.sha256).hexdigest()

    def seal(self, data: bytes, label: str) -> bytes:
        """``nonce ‖ AES-GCM(data)`` bound to ``label`` (table, column and row)."""
        nonce = secrets.token_bytes(_NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, data, label.encode())

    def open(self, blob: bytes, label: str) -> bytes:
        """The sealed value; a token's keys and SPAN are opened once, not per request (a sealed
        value never changes: a new value is a new blob, so the cache needs no invalidation)."""
        key = (bytes(blob), label)
        opened = self._opened.get(key)
        if opened is not None:
            return opened
        try:
            opened = self._aead.decrypt(blob[:_NONCE_LEN], blob[_NONCE_LEN:], label.encode())
        except InvalidTag:
            raise KekError(f"{label}: sealed value does not open under this KEK") from None
        if len(self._opened) > 100_000:
            self._opened.clear()
        self._opened[key] = opened
        return opened

    def seal_text(self, text: str, label: str) -> bytes:
        return self.seal(text.encode(), label)

    def open_text(self, blob: bytes, label: str) -> str:
        return self.open(blob, label).decode()
