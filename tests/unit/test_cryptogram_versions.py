"""emvtap.cryptogram_versions: the one CVN table both the card (generate) and the switch (verify)
use - each row's card-side generation checked against the public PBOC vector and against the
issuer side of the same row (Book 2 8.1 the AC, 8.2 the ARPC, A1.3 the session keys)."""

from __future__ import annotations

import pytest
from data_files import public_vectors

from emvtap.cryptogram import generate_ac
from emvtap.cryptogram_versions import (
    CRYPTOGRAM_VERSIONS,
    IAD_LAYOUTS,
    ArpcKey,
    MacCovers,
    ac_input_list,
    cryptogram_version,
    detect_iad_layout,
    exact_ac_input_list,
    version_in_layout,
)
from emvtap.keys import derive_icc_master_key

#: Book 2 A1.2 list as (tag, length), the order of the vector's "data"
LIST = ((0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1),
        (0x9F37, 4), (0x82, 2), (0x9F36, 2))
MK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def list_values(data: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    for tag, n in LIST:
        out[tag] = data[i:i + n]
        i += n
    return out


def some_values(cvr: bytes, row_cvn: int) -> dict[int, bytes]:
    row = CRYPTOGRAM_VERSIONS[row_cvn]
    values = {tag: bytes(range(1, n + 1)) for tag, n in LIST}
    return values | {0x9F10: row.iad(1, cvr)}


def cvr_for(row_cvn: int) -> bytes:
    return bytes.fromhex("03A00000") if CRYPTOGRAM_VERSIONS[row_cvn].iad_layout == "vis" \
        else bytes.fromhex("A08003242000")


def test_pboc_row_generates_the_public_vectors_arqc_as_the_card() -> None:
    """The card side of CVN 01: session key from MK AC and ATC, list ‖ CVR (IAD bytes 4-7),
    padding method 2 - the ARQC of the public PBOC worked example."""
    v = next(x for x in public_vectors()["arqc_arpc"] if x["id"] == "pboc_unionpay_cvn01")
    mk = derive_icc_master_key(bytes.fromhex(v["imk_ac"]), v["pan"], v["psn"])
    values = list_values(bytes.fromhex(v["data"])) | {0x9F10: bytes.fromhex(v["iad_9F10"])}
    row = cryptogram_version(0x01)
    key = row.session_key(mk, bytes.fromhex(v["atc"]), values)
    assert key.hex().upper() == v["sk_derived_here"]
    assert row.mac_input(values) == bytes.fromhex(v["data"])
    assert generate_ac(key, row.mac_input(values), row.padding).hex().upper() == v["arqc"]
    issuer = row.issuer_authentication(key, bytes.fromhex(v["arqc"]), bytes.fromhex(v["arc"]))
    assert issuer == bytes.fromhex(v["arpc"] + v["arc"])


@pytest.mark.parametrize("cvn", sorted(CRYPTOGRAM_VERSIONS))
def test_what_the_card_generates_the_issuer_recomputes(cvn: int) -> None:
    row = CRYPTOGRAM_VERSIONS[cvn]
    values = some_values(cvr_for(cvn), cvn)
    assert row.mac_input(values) == row.mac_data(values)
    tail = values[0x9F10] if row.mac_covers is MacCovers.IAD \
        else values[0x9F10][IAD_LAYOUTS[row.iad_layout].cvr]
    assert row.mac_input(values).endswith(bytes(tail))


def test_card_zero_fills_a_missing_tag_the_issuer_refuses_it() -> None:
    values = some_values(cvr_for(0x01), 0x01)
    del values[0x9F03]
    assert ac_input_list(values)[6:12] == bytes(6)
    with pytest.raises(KeyError):
        exact_ac_input_list(values)
    values[0x9F03] = bytes(5)
    with pytest.raises(ValueError, match="9F03 is 5 bytes"):
        exact_ac_input_list(values)


@pytest.mark.parametrize("cvn", sorted(CRYPTOGRAM_VERSIONS))
@pytest.mark.parametrize(("arc", "approved"), [(b"00", True), (b"05", False)])
def test_the_card_accepts_the_issuers_arpc_of_its_row(cvn: int, arc: bytes, approved: bool) -> None:
    """Book 2 8.2: tag 91 built by the issuer side of a row verifies on the card side of the
    same row, and carries the decision; a flipped ARPC bit is refused."""
    row = CRYPTOGRAM_VERSIONS[cvn]
    arqc = bytes.fromhex("1122334455667788")
    key = MK if row.arpc_key is ArpcKey.ICC_MASTER_KEY else row.session_key(
        MK, b"\x00\x05", some_values(cvr_for(cvn), cvn))
    issuer_auth = row.issuer_authentication(key, arqc, arc)
    verdict = row.check_arpc(key, arqc, issuer_auth)
    assert verdict.valid and verdict.approved is approved
    tampered = bytes([issuer_auth[0] ^ 1]) + issuer_auth[1:]
    assert not row.check_arpc(key, arqc, tampered).valid


def test_only_versions_keyed_by_the_atc_alone_serve_limited_use_keys() -> None:
    assert {c for c, r in CRYPTOGRAM_VERSIONS.items() if r.limited_use} == {0x01, 0x12, 0x11}
    assert CRYPTOGRAM_VERSIONS[0x10].arpc_with_master_key


def test_an_unknown_cvn_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CVN 0A is not implemented"):
        cryptogram_version(0x0A)


def test_a_cvn_counts_only_in_its_own_layout() -> None:
    assert version_in_layout("mchip", 0x10) is CRYPTOGRAM_VERSIONS[0x10]
    assert version_in_layout("vis", 0x10) is None
    assert version_in_layout(None, None) is None
    assert detect_iad_layout(bytes.fromhex("06011203A00000")) is IAD_LAYOUTS["vis"]
