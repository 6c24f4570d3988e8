"""Triple DES, ISO/IEC 9797-1 padding and the retail MAC (EMV 4.4 Book 2, Annex A1.1-A1.2).

Block cipher primitives for the symmetric side of EMV: application cryptograms, ARPC, issuer
script MACs and key derivation all sit on :func:`des3_encrypt` and :func:`retail_mac`.
Keys are never logged or put in exception messages.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = [
    "BLOCK",
    "adjust_parity",
    "des3_decrypt",
    "des3_encrypt",
    "des_encrypt",
    "pad_method1",
    "pad_method2",
    "retail_mac",
    "xor",
]

#: the DES block size in bytes
BLOCK = 8


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two strings of the same length."""
    if len(a) != len(b):
        raise ValueError(f"xor of {len(a)} and {len(b)} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _triple_key(key: bytes) -> bytes:
    """K1K2 → K1K2K1 (2-key 3DES) and K1K2K3 as is; the 24-byte form avoids the
    deprecation of short TripleDES keys in ``cryptography``."""
    if len(key) == 16:
        return bytes(key) + bytes(key[:8])
    if len(key) == 24:
        return bytes(key)
    raise ValueError(f"Triple DES key must be 16 or 24 bytes, not {len(key)}")


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise ValueError(f"data of {len(data)} bytes is not a multiple of the DES block size")


def des3_encrypt(key: bytes, data: bytes) -> bytes:
    """Triple DES encipherment, ECB, of whole 8-byte blocks (Book 2, A1.1)."""
    _check_blocks(data)
    enc = Cipher(TripleDES(_triple_key(key)), modes.ECB()).encryptor()
    return enc.update(bytes(data)) + enc.finalize()


def des3_decrypt(key: bytes, data: bytes) -> bytes:
    """Triple DES decipherment, ECB, of whole 8-byte blocks (Book 2, A1.1)."""
    _check_blocks(data)
    dec = Cipher(TripleDES(_triple_key(key)), modes.ECB()).decryptor()
    return dec.update(bytes(data)) + dec.finalize()


def des_encrypt(key8: bytes, data: bytes) -> bytes:
    """Single DES encipherment, ECB (Book 2, A1.1), as 3DES with K1 = K2 = K3."""
    if len(key8) != 8:
        raise ValueError(f"single DES key must be 8 bytes, not {len(key8)}")
    return des3_encrypt(bytes(key8) * 3, data)


def pad_method1(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 1: zero bytes up to a positive multiple of 8
    (empty data becomes one zero block). Book 2, A1.2.1."""
    if data and len(data) % BLOCK == 0:
        return bytes(data)
    return bytes(data) + bytes(BLOCK - len(data) % BLOCK)


def pad_method2(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2: ``80`` then zero bytes up to a multiple of 8.
    Book 2, A1.2.1."""
    padded = bytes(data) + b"\x80"
    return padded + bytes(-len(padded) % BLOCK)


def retail_mac(key16: bytes, data: bytes, padding: int = 2) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (the "retail MAC"), Book 2, A1.2.1.

    Single DES CBC with K_L over all blocks, then the final block is deciphered with K_R and
    enciphered again with K_L. ``padding`` is the ISO/IEC 9797-1 padding method (1 or 2).
    Returns the full 8-byte MAC; callers truncate.
    """
    if len(key16) != 16:
        raise ValueError(f"retail MAC key must be 16 bytes, not {len(key16)}")
    if padding == 1:
        padded = pad_method1(data)
    elif padding == 2:
        padded = pad_method2(data)
    else:
        raise ValueError(f"padding method must be 1 or 2, not {padding!r}")
    k_l, k_r = bytes(key16[:8]), bytes(key16[8:])
    cbc = Cipher(TripleDES(k_l * 3), modes.CBC(bytes(BLOCK))).encryptor()
    h = (cbc.update(padded) + cbc.finalize())[-BLOCK:]
    # H_q = E_KL(D_KR(H)) == 3DES_(KL,KR,KL) applied after the single-DES chain, written
    # out with decryption as the spec does.
    dec = Cipher(TripleDES(k_r * 3), modes.ECB()).decryptor()
    h = dec.update(h) + dec.finalize()
    return des_encrypt(k_l, h)


def adjust_parity(key: bytes) -> bytes:
    """Set the least significant bit of every byte so that each byte has odd parity
    (DES key parity, Book 2 A1.4 notes that derived keys are parity-adjusted)."""
    out = bytearray(key)
    for i, b in enumerate(out):
        hi = b & 0xFE
        out[i] = hi | ((hi.bit_count() + 1) & 1)
    return bytes(out)
