"""CA public key list, checksums, revocation list and test CAs (EMV 4.4 Book 2, 5.3 and 11.2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_files import public_vectors as _public_vectors

from emvtap.capk import (
    TEST_CA_INDEX,
    TEST_CA_RIDS,
    CapkChecksumError,
    CapkError,
    CapkStore,
    CaPublicKey,
    capk_checksum,
    load_capk_file,
    parse_capk_text,
    test_ca_private_key,
)
from emvtap.tools import gen_test_capk

DATA = Path(__file__).parents[2] / "emvtap" / "data"
VISA, MC, UPI = (bytes.fromhex(rid) for rid in ("A000000003", "A000000004", "A000000333"))


def test_every_shipped_capk_checksum_is_sha1_of_rid_index_modulus_exponent() -> None:
    """Book 2 11.2: the 20 public keys of capk.txt load, each checksum recomputed."""
    keys = load_capk_file(DATA / "capk.txt")
    assert len(keys) == 20
    for k in keys:
        assert k.checksum == capk_checksum(k.rid, k.index, k.modulus, k.exponent)
        assert k.checksum_ok()


def test_vector_capks_match_the_shipped_list() -> None:
    store = CapkStore.default()
    for label, expected in _public_vectors()["capk_used"].items():
        rid, index = label.split("/")
        key = store.get(rid, int(index, 16))
        assert key is not None
        assert key.modulus.hex().upper() == expected["modulus"]
        assert key.exponent.hex().upper() == expected["exponent"]
        assert key.checksum.hex().upper() == expected["checksum"]


def test_a_capk_with_a_wrong_checksum_is_rejected_naming_the_key(tmp_path: Path) -> None:
    lines = (DATA / "capk.txt").read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("A000000004 05 "))
    cols = lines[i].split()
    cols[6] = cols[6][:-2] + ("00" if cols[6][-2:] != "00" else "01")
    lines[i] = " ".join(cols)
    bad = tmp_path / "capk.txt"
    bad.write_text("\n".join(lines))
    with pytest.raises(CapkChecksumError, match="A000000004/05"):
        load_capk_file(bad)


@pytest.mark.parametrize(
    "line",
    [
        "A000000003 01 03 1024 D34A",
        "A0000000 01 03 1024 " + "00" * 20 + " OK C6",
        "A000000003 01 03 1023 " + "00" * 20 + " OK " + "C6" * 128,
        "A000000003 01 05 1024 " + "00" * 20 + " OK " + "C6" * 128,
        "A000000003 0X 03 1024 " + "00" * 20 + " OK " + "C6" * 128,
    ],
)
def test_malformed_capk_lines_are_rejected(line: str) -> None:
    with pytest.raises(CapkError):
        parse_capk_text(line)


def test_scheme_test_keys_are_flagged_as_test_keys() -> None:
    store = CapkStore.default()
    flagged = {k.label for k in store if k.test}
    assert {"A000000003/92", "A000000003/94", "A000000003/95"} <= flagged
    assert {"A000000004/EF", "A000000004/F1", "A000000004/FA"} <= flagged
    assert {"A000000333/09", "A000000333/0A", "A000000333/0B"} <= flagged
    assert {f"{rid.hex().upper()}/E1" for rid in TEST_CA_RIDS} <= flagged
    assert not store.get(VISA, 0x08).test
    assert not store.get(MC, 0x05).test


def test_production_store_refuses_test_keys_and_keeps_live_keys() -> None:
    """docs/terminal-config.md: production mode refuses generated and scheme test CAs."""
    store = CapkStore.default(production=True)
    assert store.get(UPI, TEST_CA_INDEX) is None
    assert store.get(MC, 0xEF) is None
    assert store.get(VISA, 0x08) is not None
    with pytest.raises(CapkError, match="test key"):
        store.require(UPI, TEST_CA_INDEX)
    with pytest.raises(CapkError, match="not known"):
        store.require(UPI, 0x77)
    assert (VISA, 0x08) in store and (MC, 0xEF) not in store


def test_unknown_key_is_none() -> None:
    assert CapkStore.default().get(VISA, 0x77) is None
    assert CapkStore.default().get("A000000999", 0x01) is None


def test_revocation_list_is_by_rid_index_and_serial() -> None:
    """Book 2 5.3 step 10: RID || CA PK index || certificate serial number."""
    store = CapkStore.default()
    store.revoke(UPI, TEST_CA_INDEX, b"\x00\x00\x01")
    assert store.is_revoked(UPI, TEST_CA_INDEX, b"\x00\x00\x01")
    assert not store.is_revoked(UPI, TEST_CA_INDEX, b"\x00\x00\x02")
    assert not store.is_revoked(VISA, TEST_CA_INDEX, b"\x00\x00\x01")
    with pytest.raises(ValueError):
        store.revoke(UPI, TEST_CA_INDEX, b"\x01")


def test_generated_test_ca_keys_are_1152_bit_exponent_3_at_index_e1() -> None:
    store = CapkStore.default()
    for rid in TEST_CA_RIDS:
        capk = store.get(rid, TEST_CA_INDEX)
        assert capk is not None and capk.test
        private = test_ca_private_key(rid)
        assert private.n.bit_length() == 1152 and private.e == 3
        assert capk.public_key() == private.public
    assert len({test_ca_private_key(rid).n for rid in TEST_CA_RIDS}) == 3


def test_shipped_test_capk_file_equals_its_regeneration() -> None:
    assert (DATA / "test_capk.txt").read_text() == gen_test_capk.render()
    assert gen_test_capk.main(["--check"]) == 0


def test_test_ca_private_key_only_for_the_three_rids() -> None:
    with pytest.raises(ValueError):
        test_ca_private_key("A000000025")


def test_test_ca_index_is_not_used_by_the_production_list() -> None:
    assert all(k.index != TEST_CA_INDEX for k in load_capk_file(DATA / "capk.txt"))


def test_from_public_key_computes_the_checksum_and_renders_the_file_format() -> None:
    pub = test_ca_private_key(VISA).public
    capk = CaPublicKey.from_public_key(VISA, 0xE1, pub, test=True)
    (parsed,) = parse_capk_text(capk.to_line(), test=True)
    assert parsed == capk
