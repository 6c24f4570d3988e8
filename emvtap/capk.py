"""Certification Authority public keys: the terminal's CAPK list, its checksums, the CA
revocation list and the generated test CAs (EMV 4.4 Book 2, 5.1, 11.2 and Book 4, 7.4 / 10.1).

The shipped list (``emvtap/data/capk.txt``) holds public Visa, Mastercard and UnionPay keys;
``emvtap/data/test_capk.txt`` holds the public halves of emvtap's own test CAs, one per RID at
index :data:`TEST_CA_INDEX`, which production CAPK lists do not use. A store in production
mode refuses every key flagged as a test key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from emvtap.rsa import RsaKey, RsaPublicKey, generate_rsa_key

__all__ = [
    "TEST_CAPK_INDEXES",
    "TEST_CA_BITS",
    "TEST_CA_EXPONENT",
    "TEST_CA_INDEX",
    "TEST_CA_RIDS",
    "CaPublicKey",
    "CapkChecksumError",
    "CapkError",
    "CapkStore",
    "capk_checksum",
    "load_capk_file",
    "parse_capk_text",
    "test_ca_private_key",
    "test_ca_seed",
]

#: CAPK index of emvtap's generated test CAs; no production CAPK list uses it.
TEST_CA_INDEX = 0xE1
TEST_CA_RIDS: tuple[bytes, ...] = (
    bytes.fromhex("A000000333"),  # UnionPay
    bytes.fromhex("A000000003"),  # Visa
    bytes.fromhex("A000000004"),  # Mastercard
)
TEST_CA_BITS = 1152
TEST_CA_EXPONENT = 3

#: keys that are scheme test keys (per the comments in capk.txt) or emvtap's own test CAs.
TEST_CAPK_INDEXES: dict[bytes, frozenset[int]] = {
    bytes.fromhex("A000000003"): frozenset({0x92, 0x94, 0x95, TEST_CA_INDEX}),
    bytes.fromhex("A000000004"): frozenset({0xEF, 0xF1, 0xFA, TEST_CA_INDEX}),
    bytes.fromhex("A000000333"): frozenset({0x09, 0x0A, 0x0B, TEST_CA_INDEX}),
}


class CapkError(ValueError):
    """A CAPK list entry that cannot be used (bad line, bad checksum, unknown key)."""


class CapkChecksumError(CapkError):
    """The SHA-1 checksum of a CAPK does not match its data (Book 2, 11.2)."""


def capk_checksum(rid: bytes, index: int, modulus: bytes, exponent: bytes) -> bytes:
    """Book 2 11.2: SHA-1(RID ‖ CA PK Index ‖ CA PK Modulus ‖ CA PK Exponent)."""
    return hashlib.sha1(bytes(rid) + bytes([index]) + bytes(modulus) + bytes(exponent)).digest()


def _rid_bytes(rid: bytes | str) -> bytes:
    value = bytes.fromhex(rid) if isinstance(rid, str) else bytes(rid)
    if len(value) != 5:
        raise ValueError(f"RID must be 5 bytes, not {len(value)}")
    return value


def _label(rid: bytes, index: int) -> str:
    return f"{rid.hex().upper()}/{index:02X}"


@dataclass(frozen=True)
class CaPublicKey:
    """One CA public key as the terminal holds it (Book 2 11.2, Table 23)."""

    rid: bytes
    index: int
    modulus: bytes
    exponent: bytes
    checksum: bytes
    test: bool

    @property
    def label(self) -> str:
        """``RID/index``, e.g. ``A000000003/08``."""
        return _label(self.rid, self.index)

    @property
    def modulus_len(self) -> int:
        return len(self.modulus)

    def public_key(self) -> RsaPublicKey:
        return RsaPublicKey.from_bytes(self.modulus, self.exponent)

    def checksum_ok(self) -> bool:
        expected = capk_checksum(self.rid, self.index, self.modulus, self.exponent)
        return hmac.compare_digest(expected, self.checksum)

    @classmethod
    def from_public_key(cls, rid: bytes, index: int, key: RsaPublicKey, test: bool) -> CaPublicKey:
        """A CAPK entry for ``key`` with its checksum computed."""
        rid = _rid_bytes(rid)
        checksum = capk_checksum(rid, index, key.modulus, key.exponent)
        return cls(rid, index, key.modulus, key.exponent, checksum, test)

    def to_line(self) -> str:
        """One line in the column format of capk.txt:
        ``RID INDEX EXPONENT MODULUS_BITS SHA1_CHECKSUM VERIFIED MODULUS``."""
        verified = "OK" if self.checksum_ok() else "BAD"
        return " ".join((
            self.rid.hex().upper(), f"{self.index:02X}", self.exponent.hex().upper(),
            str(len(self.modulus) * 8), self.checksum.hex().upper(), verified,
            self.modulus.hex().upper(),
        ))


def _is_test_key(rid: bytes, index: int) -> bool:
    return index in TEST_CAPK_INDEXES.get(rid, frozenset())


def parse_capk_text(text: str, source: str = "CAPK list", test: bool | None = None
                    ) -> list[CaPublicKey]:
    """Parse the column format of capk.txt and check every key's checksum (Book 2 11.2).

    ``test`` marks every key of the list as a test key (True) or not (False); ``None`` flags
    the scheme test keys by :data:`TEST_CAPK_INDEXES`. Raises :class:`CapkChecksumError`
    naming the key whose checksum is wrong and :class:`CapkError` for a malformed line.
    """
    keys: list[CaPublicKey] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cols = line.split()
        where = f"{source} line {lineno}"
        if len(cols) != 7:
            raise CapkError(f"{where}: {len(cols)} columns, expected 7 "
                            "(RID INDEX EXPONENT MODULUS_BITS SHA1_CHECKSUM VERIFIED MODULUS)")
        rid_hex, index_hex, exp_hex, bits, checksum_hex, _verified, modulus_hex = cols
        try:
            rid = _rid_bytes(rid_hex)
            index = int(index_hex, 16)
            exponent = bytes.fromhex(exp_hex)
            checksum = bytes.fromhex(checksum_hex)
            modulus = bytes.fromhex(modulus_hex)
            bit_count = int(bits)
        except ValueError as exc:
            raise CapkError(f"{where}: {exc}") from None
        name = f"CAPK {_label(rid, index)}"
        if not 0 <= index <= 0xFF or len(checksum) != 20:
            raise CapkError(f"{where}: {name} has a bad index or checksum length")
        if bit_count != len(modulus) * 8 or not modulus or modulus[0] == 0:
            raise CapkError(f"{where}: {name} modulus is {len(modulus) * 8} bits, "
                            f"the list says {bit_count}")
        if exponent not in (b"\x03", b"\x01\x00\x01"):
            raise CapkError(f"{where}: {name} exponent {exp_hex} is neither 3 nor 65537")
        if not hmac.compare_digest(capk_checksum(rid, index, modulus, exponent), checksum):
            raise CapkChecksumError(f"{name}: SHA-1 checksum does not match ({where})")
        flag = _is_test_key(rid, index) if test is None else test
        keys.append(CaPublicKey(rid, index, modulus, exponent, checksum, flag))
    return keys


def load_capk_file(path: str | Path, test: bool | None = None) -> list[CaPublicKey]:
    """Read a CAPK list file and verify every checksum (Book 2 11.2); see
    :func:`parse_capk_text`."""
    p = Path(path)
    return parse_capk_text(p.read_text(encoding="ascii"), p.name, test)


class CapkStore:
    """The terminal's CA public keys by RID and index, with a CA revocation list
    (Book 2 5.3 step 10 / 6.3: RID ‖ index ‖ certificate serial number).

    In ``production`` mode :meth:`get` refuses keys flagged as test keys.
    """

    def __init__(self, keys: Iterable[CaPublicKey] = (), *, production: bool = False) -> None:
        self.production = production
        self._keys: dict[tuple[bytes, int], CaPublicKey] = {}
        self._revoked: set[tuple[bytes, int, bytes]] = set()
        for key in keys:
            self.add(key)

    def add(self, key: CaPublicKey) -> None:
        self._keys[(bytes(key.rid), key.index)] = key

    def get(self, rid: bytes | str, index: int) -> CaPublicKey | None:
        """The key for RID (5 bytes) and index, or ``None`` if unknown, or if it is a test key
        and the store is in production mode."""
        key = self._keys.get((_rid_bytes(rid), index))
        if key is None or (self.production and key.test):
            return None
        return key

    def require(self, rid: bytes | str, index: int) -> CaPublicKey:
        """Like :meth:`get`, but raises :class:`CapkError` saying why there is no key."""
        r = _rid_bytes(rid)
        key = self._keys.get((r, index))
        if key is None:
            raise CapkError(f"CAPK {_label(r, index)} is not known to the terminal")
        if self.production and key.test:
            raise CapkError(f"CAPK {_label(r, index)} is a test key; the terminal is in "
                            "production mode")
        return key

    def revoke(self, rid: bytes | str, index: int, serial: bytes) -> None:
        """Put issuer certificate ``serial`` (3 bytes) under CA ``rid``/``index`` on the CA
        revocation list."""
        if len(serial) != 3:
            raise ValueError(f"certificate serial number is 3 bytes, not {len(serial)}")
        self._revoked.add((_rid_bytes(rid), index, bytes(serial)))

    def is_revoked(self, rid: bytes | str, index: int, serial: bytes) -> bool:
        return (_rid_bytes(rid), index, bytes(serial)) in self._revoked

    def __iter__(self) -> Iterator[CaPublicKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) != 2:
            return False
        rid, index = item
        try:
            return self.get(rid, index) is not None
        except (TypeError, ValueError):
            return False

    @classmethod
    def default(cls, *, production: bool = False) -> CapkStore:
        """The shipped list ``emvtap/data/capk.txt`` plus the generated test CA keys
        (``emvtap/data/test_capk.txt``), read through importlib.resources."""
        data = resources.files("emvtap") / "data"
        keys = parse_capk_text((data / "capk.txt").read_text(encoding="ascii"), "capk.txt")
        keys += parse_capk_text((data / "test_capk.txt").read_text(encoding="ascii"),
                                "test_capk.txt", test=True)
        return cls(keys, production=production)


def test_ca_seed(rid: bytes) -> bytes:
    """The seed of the test CA for ``rid``: ``b"emvtap test CA " + rid``."""
    return b"emvtap test CA " + _rid_bytes(rid)


test_ca_seed.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


@cache
def _test_ca_key(rid: bytes) -> RsaKey:
    return generate_rsa_key(TEST_CA_BITS, TEST_CA_EXPONENT, test_ca_seed(rid))


def test_ca_private_key(rid: bytes | str) -> RsaKey:
    """The private key of emvtap's test CA for ``rid`` (index :data:`TEST_CA_INDEX`),
    regenerated deterministically and cached. Test keys only: never a production CA."""
    r = _rid_bytes(rid)
    if r not in TEST_CA_RIDS:
        raise ValueError(f"no emvtap test CA for RID {r.hex().upper()}")
    return _test_ca_key(r)


test_ca_private_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
