"""Raw RSA for ODA and deterministic test key generation (EMV 4.4 Book 2, Annex A2.1)."""

from __future__ import annotations

import math

import pytest

from emvtap.rsa import RsaKey, RsaPublicKey, exponent_bytes, generate_rsa_key, is_probable_prime


@pytest.fixture(scope="module")
def key_1152() -> RsaKey:
    return generate_rsa_key(1152, 3, b"unit test 1152")


def test_same_seed_gives_the_same_key_and_another_seed_another() -> None:
    a = generate_rsa_key(768, 3, b"seed A")
    assert generate_rsa_key(768, 3, b"seed A") == a
    assert generate_rsa_key(768, 3, b"seed B").n != a.n
    assert generate_rsa_key(768, 65537, b"seed A").n != a.n


@pytest.mark.parametrize(("bits", "e"), [(768, 3), (1024, 65537), (1152, 3), (1408, 3),
                                         (1984, 3), (1000, 3)])
def test_generated_key_has_the_exact_bit_length_and_a_valid_exponent(bits: int, e: int) -> None:
    """Book 2 A2.1.1: e is 3 or 2^16+1; gcd(e, p-1) = gcd(e, q-1) = 1."""
    k = generate_rsa_key(bits, e, b"size")
    assert k.n.bit_length() == bits
    assert k.n == k.p * k.q and k.p != k.q
    assert math.gcd(e, k.p - 1) == 1 and math.gcd(e, k.q - 1) == 1
    assert is_probable_prime(k.p) and is_probable_prime(k.q)
    assert (e * k.d) % math.lcm(k.p - 1, k.q - 1) == 1


def test_sign_raw_then_recover_raw_returns_the_message(key_1152: RsaKey) -> None:
    msg = b"\x6a" + bytes(range(142)) + b"\xbc"
    sig = key_1152.sign_raw(msg)
    assert key_1152.modulus_len == 144
    assert sig == pow(int.from_bytes(msg, "big"), key_1152.d, key_1152.n).to_bytes(144, "big")
    assert key_1152.public.recover_raw(sig) == msg
    assert pow(int.from_bytes(msg, "big"), key_1152.d, key_1152.n) == int.from_bytes(sig, "big")


def test_recover_raw_rejects_a_value_not_below_the_modulus(key_1152: RsaKey) -> None:
    pub = key_1152.public
    with pytest.raises(ValueError, match="modulus"):
        pub.recover_raw(b"\xff" * pub.modulus_len)
    with pytest.raises(ValueError, match="modulus"):
        pub.recover_raw(pub.modulus)


@pytest.mark.parametrize("length", [0, 1, 143, 145])
def test_recover_raw_rejects_a_wrong_length(key_1152: RsaKey, length: int) -> None:
    with pytest.raises(ValueError, match="bytes"):
        key_1152.public.recover_raw(bytes(length))


def test_sign_raw_rejects_wrong_length_and_too_large_messages(key_1152: RsaKey) -> None:
    with pytest.raises(ValueError):
        key_1152.sign_raw(bytes(10))
    with pytest.raises(ValueError):
        key_1152.sign_raw(b"\xff" * 144)


def test_to_dict_from_dict_round_trip_as_hex_strings(key_1152: RsaKey) -> None:
    d = key_1152.to_dict()
    assert set(d) == {"n", "e", "d", "p", "q"}
    assert d["e"] == "03" and len(d["n"]) == 288
    assert all(isinstance(v, str) and bytes.fromhex(v) for v in d.values())
    assert RsaKey.from_dict(d) == key_1152
    assert RsaPublicKey.from_dict(key_1152.public.to_dict()) == key_1152.public


def test_inconsistent_private_key_is_refused(key_1152: RsaKey) -> None:
    with pytest.raises(ValueError):
        RsaKey(key_1152.n, 3, key_1152.d + 2, key_1152.p, key_1152.q)
    with pytest.raises(ValueError):
        RsaKey(key_1152.n + 2, 3, key_1152.d, key_1152.p, key_1152.q)


def test_private_values_are_not_in_repr(key_1152: RsaKey) -> None:
    assert repr(key_1152) == f"RsaKey(n={key_1152.n}, e=3)"  # no d, p or q


def test_exponent_bytes_as_emv_stores_them() -> None:
    assert exponent_bytes(3) == b"\x03"
    assert exponent_bytes(65537) == b"\x01\x00\x01"
    assert RsaPublicKey(0xC5, 3).exponent == b"\x03"


def test_miller_rabin_on_known_numbers() -> None:
    small_primes = [p for p in range(2, 3000) if all(p % f for f in range(2, math.isqrt(p) + 1))]
    assert [n for n in range(3000) if is_probable_prime(n)] == small_primes
    assert is_probable_prime(2**127 - 1)
    assert not is_probable_prime(561)  # Carmichael
    assert not is_probable_prime((2**61 - 1) * (2**89 - 1))


def test_bad_generation_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        generate_rsa_key(256, 3, b"x")
    with pytest.raises(ValueError):
        generate_rsa_key(1024, 4, b"x")
