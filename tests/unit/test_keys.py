"""ICC master key and session key derivation (EMV 4.4 Book 2, Annex A1.3-A1.4; JR/T 0025)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from data_files import public_vectors as _public_vectors
from pyemv import kd

from emvtap.keys import (
    derive_emv_common_session_key,
    derive_icc_master_key,
    derive_mastercard_session_key,
    derive_pboc_session_key,
    derive_visa_session_key,
)

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


ARQC_VECTORS = _public_vectors()["arqc_arpc"]
h = bytes.fromhex


def _session_key(v: dict[str, Any], icc_mk: bytes) -> bytes:
    atc, un, skd = h(v["atc"]), h(v["un"]), v["skd"]
    if skd.startswith("none"):
        return icc_mk
    if skd.startswith("mastercard"):
        return derive_mastercard_session_key(icc_mk, atc, un)
    if skd.startswith("emv_csk"):
        return derive_emv_common_session_key(icc_mk, atc + bytes(6))
    if skd.startswith("pboc"):
        return derive_pboc_session_key(icc_mk, atc)
    raise AssertionError(f"unknown session key derivation {skd}")


@pytest.mark.parametrize("v", ARQC_VECTORS, ids=[v["id"] for v in ARQC_VECTORS])
def test_icc_master_key_derivation_option_a_or_b_as_the_vector_says(v: dict[str, Any]) -> None:
    """Book 2 A1.4: the automatic choice (A for PAN <= 16 digits, else B) is the vector's."""
    imk = h(v["imk_ac"])
    auto = derive_icc_master_key(imk, v["pan"], v["psn"])
    assert auto == derive_icc_master_key(imk, v["pan"], v["psn"], option=v["mkd"])
    reference = kd.derive_icc_mk_a if v["mkd"] == "A" else kd.derive_icc_mk_b
    assert auto == reference(imk, v["pan"], v["psn"])
    if "icc_mk_derived_here" in v:
        assert auto.hex().upper() == v["icc_mk_derived_here"]


def test_pboc_session_key_matches_the_public_pboc_example() -> None:
    """JR/T 0025: SK = 3DES_MK(000000000000||ATC) || 3DES_MK(000000000000||ATC^FFFF)."""
    v = next(v for v in ARQC_VECTORS if v["id"] == "pboc_unionpay_cvn01")
    icc_mk = derive_icc_master_key(h(v["imk_ac"]), v["pan"], v["psn"])
    sk = derive_pboc_session_key(icc_mk, h(v["atc"]))
    assert sk.hex().upper() == v["sk_derived_here"]


@pytest.mark.parametrize("v", ARQC_VECTORS, ids=[v["id"] for v in ARQC_VECTORS])
def test_session_key_reproduces_the_vector_arqc(v: dict[str, Any]) -> None:
    from emvtap.cryptogram import generate_ac

    icc_mk = derive_icc_master_key(h(v["imk_ac"]), v["pan"], v["psn"])
    sk = _session_key(v, icc_mk)
    padding = 1 if v["padding"] == "zero" else 2
    assert generate_ac(sk, h(v["data"]), padding).hex().upper() == v["arqc"]


def test_option_b_on_a_short_pan_is_option_a() -> None:
    """Book 2 A1.4.2: for PANs of 16 digits or fewer Option B is Option A."""
    imk = h("0123456789ABCDEFFEDCBA9876543210")
    a = derive_icc_master_key(imk, "4761739001010010", "01", option="A")
    assert derive_icc_master_key(imk, "4761739001010010", "01", option="B") == a


def test_option_a_and_b_agree_with_pyemv_on_random_pans() -> None:
    rng = random.Random(14)
    for _ in range(40):
        imk = rng.randbytes(16)
        pan = "".join(rng.choice("0123456789") for _ in range(rng.randrange(12, 20)))
        psn = f"{rng.randrange(100):02d}"
        assert derive_icc_master_key(imk, pan, psn, "A") == kd.derive_icc_mk_a(imk, pan, psn)
        assert derive_icc_master_key(imk, pan, psn, "B") == kd.derive_icc_mk_b(imk, pan, psn)


def test_pan_and_psn_may_be_given_as_card_data_bytes() -> None:
    """5A is cn (F-padded), 5F34 is n 2; a missing PSN counts as 00 (Book 2 A1.4)."""
    imk = h("0123456789ABCDEFFEDCBA9876543210")
    as_str = derive_icc_master_key(imk, "6228000100001", "01")
    assert derive_icc_master_key(imk, h("6228000100001F"), b"\x01") == as_str
    assert derive_icc_master_key(imk, "6228000100001", None) == derive_icc_master_key(
        imk, "6228000100001", "00"
    )


def test_common_session_key_matches_pyemv_and_book2_a131() -> None:
    """Book 2 A1.3.1: R with byte 3 set to F0 (left half) and 0F (right half)."""
    mk = h("0123456789ABCDEFFEDCBA9876543210")
    r = h("001C000000000000")
    assert derive_emv_common_session_key(mk, r).hex().upper() == "E9FB384AF807B940FEDCEA613461B0C4"
    assert derive_emv_common_session_key(mk, r) == kd.derive_common_sk(mk, r)


def test_visa_and_mastercard_session_keys_are_csk_with_their_r() -> None:
    mk = h("0123456789ABCDEFFEDCBA9876543210")
    atc, un = h("0042"), h("DEADBEEF")
    assert derive_visa_session_key(mk, atc) == kd.derive_common_sk(mk, atc + bytes(6))
    assert derive_mastercard_session_key(mk, atc, un) == kd.derive_common_sk(
        mk, atc + bytes(2) + un
    )


def test_derived_keys_have_odd_parity() -> None:
    mk = derive_icc_master_key(h("F0C34A8124CEE0A91A0B034AA97D6EAC"), "6228000100001", "01")
    for key in (mk, derive_pboc_session_key(mk, h("0001")),
                derive_emv_common_session_key(mk, bytes(8))):
        assert all(b.bit_count() % 2 for b in key)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: derive_icc_master_key(bytes(8), "1234567890123456", "00"), "16-byte"),
        (lambda: derive_icc_master_key(bytes(16), "12345X", "00"), "PAN"),
        (lambda: derive_icc_master_key(bytes(16), "1234567890123456", "1"), "PSN"),
        (lambda: derive_icc_master_key(bytes(16), "1234567890123456", "00", "C"), "A or B"),
        (lambda: derive_pboc_session_key(bytes(16), b"\x00"), "ATC"),
        (lambda: derive_emv_common_session_key(bytes(16), bytes(7)), "8 bytes"),
        (lambda: derive_mastercard_session_key(bytes(16), bytes(2), bytes(3)), "unpredictable"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
