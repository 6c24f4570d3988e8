"""Application cryptograms, ARPC, issuer script MACs and the PBOC IAD (EMV 4.4 Book 2, 8.1,
8.2, 9.2, Annex A1.2; JR/T 0025 for CVN 01)."""

from __future__ import annotations

from typing import Any

import pytest
from data_files import public_vectors as _public_vectors
from pyemv import ac as pyemv_ac

from emvtap.cryptogram import (
    arpc_method_1,
    arpc_method_2,
    generate_ac,
    parse_pboc_iad,
    pboc_arqc_data,
    pboc_iad,
    script_mac,
    verify_ac,
    verify_arpc_method_1,
    verify_arpc_method_2,
    verify_script_mac,
)
from emvtap.keys import (
    derive_emv_common_session_key,
    derive_icc_master_key,
    derive_mastercard_session_key,
    derive_pboc_session_key,
)

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


ARQC_VECTORS = _public_vectors()["arqc_arpc"]
IDS = [v["id"] for v in ARQC_VECTORS]
h = bytes.fromhex


def _keys(v: dict[str, Any]) -> tuple[bytes, bytes]:
    """(ICC MK, AC key) for a vector."""
    icc_mk = derive_icc_master_key(h(v["imk_ac"]), v["pan"], v["psn"])
    atc, skd = h(v["atc"]), v["skd"]
    if skd.startswith("none"):
        return icc_mk, icc_mk
    if skd.startswith("mastercard"):
        return icc_mk, derive_mastercard_session_key(icc_mk, atc, h(v["un"]))
    if skd.startswith("emv_csk"):
        return icc_mk, derive_emv_common_session_key(icc_mk, atc + bytes(6))
    return icc_mk, derive_pboc_session_key(icc_mk, atc)


def _padding(v: dict[str, Any]) -> int:
    return 1 if v["padding"] == "zero" else 2


@pytest.mark.parametrize("v", ARQC_VECTORS, ids=IDS)
def test_arqc_is_mac_algorithm_3_over_the_transaction_data(v: dict[str, Any]) -> None:
    """Book 2 8.1.1 / A1.2: the ARQC of every public vector."""
    _, sk = _keys(v)
    assert generate_ac(sk, h(v["data"]), _padding(v)).hex().upper() == v["arqc"]
    assert verify_ac(sk, h(v["data"]), h(v["arqc"]), _padding(v))


@pytest.mark.parametrize("v", ARQC_VECTORS, ids=IDS)
def test_arqc_with_one_changed_data_byte_does_not_verify(v: dict[str, Any]) -> None:
    _, sk = _keys(v)
    data = bytearray(h(v["data"]))
    data[0] ^= 0x01
    assert not verify_ac(sk, bytes(data), h(v["arqc"]), _padding(v))
    assert not verify_ac(sk, h(v["data"]), h(v["arqc"])[:7], _padding(v))


@pytest.mark.parametrize("v", ARQC_VECTORS, ids=IDS)
def test_arpc_method_1_is_3des_of_arqc_xor_arc(v: dict[str, Any]) -> None:
    """Book 2 8.2.1, keyed as the vector says (ICC MK or session key)."""
    icc_mk, sk = _keys(v)
    key = icc_mk if v["arpc_key"] == "icc_mk" else sk
    arpc = arpc_method_1(key, h(v["arqc"]), h(v["arc"]))
    assert arpc.hex().upper() == v["arpc"]
    assert arpc == pyemv_ac.generate_arpc_1(key, h(v["arqc"]), h(v["arc"]))
    assert verify_arpc_method_1(key, h(v["arqc"]), arpc + h(v["arc"]))
    assert not verify_arpc_method_1(key, h(v["arqc"]), arpc + b"\x30\x35")


@pytest.mark.parametrize("v", [v for v in ARQC_VECTORS if "arpc2" in v],
                         ids=[v["id"] for v in ARQC_VECTORS if "arpc2" in v])
def test_arpc_method_2_is_the_mac_of_arqc_and_csu(v: dict[str, Any]) -> None:
    """Book 2 8.2.2: 4-byte ARPC over ARQC || CSU, method 2 padding."""
    _, sk = _keys(v)
    csu = h(v["arpc2_csu"])
    arpc = arpc_method_2(sk, h(v["arqc"]), csu)
    assert arpc.hex().upper() == v["arpc2"]
    assert verify_arpc_method_2(sk, h(v["arqc"]), arpc + csu)
    assert not verify_arpc_method_2(sk, h(v["arqc"]), arpc + b"\x00\x00\x00\x01")


def test_arpc_method_2_with_proprietary_data_matches_pyemv() -> None:
    key, arqc = h("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB"), h("1234567890ABCDEF")
    csu, prop = bytes(4), b"\x01\x02"
    assert arpc_method_2(key, arqc, csu).hex().upper() == "9308BEBC"
    assert arpc_method_2(key, arqc, csu, prop) == pyemv_ac.generate_arpc_2(key, arqc, csu, prop)
    assert verify_arpc_method_2(key, arqc, arpc_method_2(key, arqc, csu, prop) + csu + prop)


def test_pboc_arqc_data_is_the_recommended_set_plus_cvr_from_the_iad() -> None:
    """JR/T 0025 CVN 01: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 || IAD bytes 4-7."""
    v = next(v for v in ARQC_VECTORS if v["id"] == "pboc_unionpay_cvn01")
    data = h(v["data"])
    values = {
        0x9F02: data[0:6], 0x9F03: data[6:12], 0x9F1A: data[12:14], 0x95: data[14:19],
        0x5F2A: data[19:21], 0x9A: data[21:24], 0x9C: data[24:25], 0x9F37: h(v["un"]),
        0x82: data[29:31], 0x9F36: h(v["atc"]), 0x9F10: h(v["iad_9F10"]),
    }
    assert pboc_arqc_data(values) == data
    _, sk = _keys(v)
    assert generate_ac(sk, pboc_arqc_data(values)).hex().upper() == v["arqc"]


def test_pboc_arqc_data_names_a_missing_tag_and_a_wrong_length() -> None:
    with pytest.raises(KeyError, match="9F37"):
        pboc_arqc_data({0x9F02: bytes(6), 0x9F03: bytes(6), 0x9F1A: bytes(2), 0x95: bytes(5),
                        0x5F2A: bytes(2), 0x9A: bytes(3), 0x9C: bytes(1)})
    with pytest.raises(ValueError, match="9F02"):
        pboc_arqc_data({0x9F02: bytes(5)})


def test_pboc_iad_layout_and_round_trip() -> None:
    """IAD = 07 || DKI || CVN 01 || CVR (03 ...) || algorithm [|| len || discretionary]."""
    iad = pboc_iad(0x01, h("03A00000"), algorithm=1)
    assert iad == h("07010103A0000001")
    parsed = parse_pboc_iad(iad)
    assert (parsed.dki, parsed.cvn, parsed.cvr, parsed.algorithm) == (1, 1, h("03A00000"), 1)
    vector_iad = h("07000103A04002010A010000001000D1F61152")
    parsed = parse_pboc_iad(vector_iad)
    assert parsed.cvr == h("03A04002")
    assert parsed.discretionary == h("010000001000D1F61152")
    assert pboc_iad(parsed.dki, parsed.cvr, parsed.algorithm, parsed.discretionary) == vector_iad


@pytest.mark.parametrize("bad", ["", "06010103A0000001", "07010102A0000001", "07010103A000000105"])
def test_parse_pboc_iad_refuses_what_is_not_a_cvn01_iad(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_pboc_iad(h(bad))


def test_pboc_iad_refuses_a_cvr_without_its_length_byte() -> None:
    with pytest.raises(ValueError, match="03"):
        pboc_iad(1, h("A0000000"))


def test_script_mac_covers_header_atc_ac_and_data() -> None:
    """Book 2 9.2.1 (pyemv's published example: 8424000008 || FFFF || ARQC)."""
    key = h("0123456789ABCDEFFEDCBA9876543210")
    header, atc, arqc = h("8424000008"), h("FFFF"), h("1234567890123456")
    assert script_mac(key, header, atc, arqc, b"", 8).hex().upper() == "E07B8DF1B4184282"
    assert script_mac(key, header, atc, arqc, b"").hex().upper() == "E07B8DF1"
    assert verify_script_mac(key, header, atc, arqc, b"", h("E07B8DF1"))
    assert not verify_script_mac(key, header, h("FFFE"), arqc, b"", h("E07B8DF1"))


def test_script_mac_length_must_be_4_to_8() -> None:
    with pytest.raises(ValueError, match="4 to 8"):
        script_mac(bytes(16), h("841E000004"), bytes(2), bytes(8), b"", 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda: arpc_method_1(bytes(16), bytes(7), bytes(2)),
        lambda: arpc_method_1(bytes(16), bytes(8), bytes(1)),
        lambda: arpc_method_2(bytes(16), bytes(8), bytes(3)),
        lambda: arpc_method_2(bytes(16), bytes(8), bytes(4), bytes(9)),
        lambda: generate_ac(bytes(24), b""),
    ],
)
def test_wrong_lengths_are_refused(call: Any) -> None:
    with pytest.raises(ValueError):
        call()
