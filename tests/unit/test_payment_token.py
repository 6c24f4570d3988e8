"""lab.payment_token: the in-app payment token is readable by the merchant it was made for, and
by no one else; any change to it is detected (AES-GCM over ECDH P-256 + HKDF)."""

from __future__ import annotations

import pytest

from lab.payment_token import (
    PaymentTokenError,
    decrypt_payment_token,
    encrypt_payment_token,
    generate_merchant_key,
    public_key_pem,
)

PAYLOAD = {"pan": "6250940000000001", "icc_data": "9F2608AABBCCDDEEFF0011", "amount": 8800}


@pytest.fixture
def merchant_key(tmp_path):
    return generate_merchant_key(tmp_path / "m.key")


def test_the_merchant_reads_what_the_wallet_encrypted_to_it(merchant_key):
    token = encrypt_payment_token(PAYLOAD, public_key_pem(merchant_key), "SHOP0001")
    assert "6250940000000001" not in str(token)  # the PAN travels encrypted
    assert decrypt_payment_token(token, merchant_key, "SHOP0001") == PAYLOAD


def test_each_token_has_its_own_ephemeral_key_and_nonce(merchant_key):
    a = encrypt_payment_token(PAYLOAD, public_key_pem(merchant_key), "SHOP0001")
    b = encrypt_payment_token(PAYLOAD, public_key_pem(merchant_key), "SHOP0001")
    assert a["ephemeral_public_key"] != b["ephemeral_public_key"]
    assert a["ciphertext"] != b["ciphertext"]


def test_another_merchants_key_cannot_open_it(merchant_key, tmp_path):
    other = generate_merchant_key(tmp_path / "other.key")
    token = encrypt_payment_token(PAYLOAD, public_key_pem(merchant_key), "SHOP0001")
    with pytest.raises(PaymentTokenError, match="another key"):
        decrypt_payment_token(token, other, "SHOP0001")


def test_a_token_for_another_merchant_id_is_refused(merchant_key):
    token = encrypt_payment_token(PAYLOAD, public_key_pem(merchant_key), "SHOP0001")
    with pytest.raises(PaymentTokenError, match="SHOP0001"):
        decrypt_payment_token(token, merchant_key, "SHOP0002")
    token["merchant_id"] = "SHOP0002"  # relabelled: the merchant id is authenticated data
    with pytest.raises(PaymentTokenError, match="does not decrypt"):
        decrypt_payment_token(token, merchant_key, "SHOP0002")


def test_a_changed_ciphertext_does_not_decrypt(merchant_key):
    token = encrypt_payment_token(PAYLOAD, public_key_pem(merchant_key), "SHOP0001")
    raw = bytearray.fromhex(token["ciphertext"])
    raw[3] ^= 1
    token["ciphertext"] = raw.hex()
    with pytest.raises(PaymentTokenError, match="does not decrypt"):
        decrypt_payment_token(token, merchant_key, "SHOP0001")


def test_something_else_is_not_a_token(merchant_key):
    with pytest.raises(PaymentTokenError, match="not a payment token"):
        decrypt_payment_token({"hello": 1}, merchant_key, "SHOP0001")


def test_the_merchant_passes_the_wallets_token_requestor_id_on_in_de48_and_refuses_a_bad_one():
    """The token requestor (the wallet) is named in DE 48 sub-element 01 of an in-app 0100, so
    the switch can hold the payment to the token's domain (docs/domain.md)."""
    import pytest

    from lab.merchant.shop import MerchantError, _token_requestor_id

    assert _token_requestor_id({"token_requestor_id": "50012345678"}) == "50012345678"
    assert _token_requestor_id({}) is None
    for bad in ("5001234567", "5001234567X", 50012345678):
        with pytest.raises(MerchantError, match="not 11 digits"):
            _token_requestor_id({"token_requestor_id": bad})
