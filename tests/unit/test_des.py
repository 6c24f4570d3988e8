"""Triple DES, ISO/IEC 9797-1 padding and MAC algorithm 3 (EMV 4.4 Book 2, Annex A1.1-A1.2)."""

from __future__ import annotations

import random

import pytest
from pyemv import mac as pyemv_mac

from emvtap.des import (
    adjust_parity,
    des3_decrypt,
    des3_encrypt,
    des_encrypt,
    pad_method1,
    pad_method2,
    retail_mac,
    xor,
)

# pyemv (the cross-check) uses short TripleDES keys that cryptography deprecates; emvtap does not.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def test_single_des_known_answer_now_is_t() -> None:
    """FIPS 81 / classic DES vector: K=0123456789ABCDEF, 'Now is t' -> 3FA40E8A984D4815."""
    assert des_encrypt(bytes.fromhex("0123456789ABCDEF"), b"Now is t").hex().upper() == (
        "3FA40E8A984D4815"
    )


def test_double_length_key_with_equal_halves_is_single_des() -> None:
    k = bytes.fromhex("0123456789ABCDEF")
    assert des3_encrypt(k + k, b"Now is t") == des_encrypt(k, b"Now is t")


def test_triple_des_decrypt_inverts_encrypt_for_16_and_24_byte_keys() -> None:
    data = bytes(range(32))
    for key in (KEY, KEY + bytes.fromhex("89ABCDEF01234567")):
        assert des3_decrypt(key, des3_encrypt(key, data)) == data


def test_16_byte_key_is_k1_k2_k1() -> None:
    assert des3_encrypt(KEY, bytes(8)) == des3_encrypt(KEY + KEY[:8], bytes(8))


@pytest.mark.parametrize("key_len", [0, 8, 15, 17, 32])
def test_triple_des_rejects_other_key_lengths(key_len: int) -> None:
    with pytest.raises(ValueError, match="16 or 24 bytes"):
        des3_encrypt(bytes(key_len), bytes(8))


def test_triple_des_rejects_partial_blocks() -> None:
    with pytest.raises(ValueError, match="multiple"):
        des3_encrypt(KEY, bytes(7))


def test_padding_method_1_zero_fills_to_a_positive_multiple_of_8() -> None:
    assert pad_method1(b"") == bytes(8)
    assert pad_method1(b"\x01") == b"\x01" + bytes(7)
    assert pad_method1(bytes(8)) == bytes(8)
    assert len(pad_method1(bytes(9))) == 16


def test_padding_method_2_always_adds_80() -> None:
    assert pad_method2(b"") == b"\x80" + bytes(7)
    assert pad_method2(bytes(8)) == bytes(8) + b"\x80" + bytes(7)
    assert pad_method2(bytes(7)) == bytes(7) + b"\x80"


def test_retail_mac_matches_pyemv_mac_algorithm_3_for_both_paddings() -> None:
    rng = random.Random(9797)
    for _ in range(50):
        key = rng.randbytes(16)
        data = rng.randbytes(rng.randrange(0, 40))
        for padding in (1, 2):
            expected = pyemv_mac.mac_iso9797_3(key[:8], key[8:], data, padding)
            assert retail_mac(key, data, padding) == expected


def test_retail_mac_rejects_unknown_padding_and_short_keys() -> None:
    with pytest.raises(ValueError, match="padding"):
        retail_mac(KEY, b"x", 3)
    with pytest.raises(ValueError, match="16 bytes"):
        retail_mac(KEY[:8], b"x")


def test_adjust_parity_makes_every_byte_odd_and_keeps_the_key_bits() -> None:
    raw = bytes(range(256))
    adjusted = adjust_parity(raw)
    assert all(b.bit_count() % 2 == 1 for b in adjusted)
    assert all((a & 0xFE) == (b & 0xFE) for a, b in zip(raw, adjusted, strict=True))
    assert des3_encrypt(adjust_parity(KEY), bytes(8)) == des3_encrypt(KEY, bytes(8))


def test_xor_requires_equal_lengths() -> None:
    assert xor(b"\x0f\xf0", b"\xff\xff") == b"\xf0\x0f"
    with pytest.raises(ValueError):
        xor(b"\x00", b"\x00\x00")
