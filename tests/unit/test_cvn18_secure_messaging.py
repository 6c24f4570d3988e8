"""Visa CVN 18 issuer script MAC (VIS 1.5 secure messaging): the integrity session key is the
ICC master key for secure messaging with the ATC XORed in (VIS 1.5; pyemv's VisaCVN18 and
EFTlab's VIS 1.5 calculator agree), not the EMV common session key over the ARQC that Book 2,
A1.3 offers as an option. The CVN 18 row the card and the issuer share
(emvtap/cryptogram_versions.py), and the switch reading it from DE 55 (switch/arqc.py), must
reproduce the public vectors in tests/data/visa_cvn18_secure_messaging.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emvtap import tlv
from emvtap.cryptogram import generate_ac, script_mac
from emvtap.cryptogram_versions import CRYPTOGRAM_VERSIONS
from emvtap.des import des3_encrypt
from emvtap.keys import derive_icc_master_key, derive_visa_secure_messaging_session_key
from switch.arqc import icc_cryptogram_version, parse_icc_data

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "visa_cvn18_secure_messaging.json")
                     .read_text())
CVN18 = {v["name"]: v for v in VECTORS["cvn18"]}


def _icc_keys(v: dict[str, Any]) -> tuple[bytes, bytes]:
    return tuple(derive_icc_master_key(bytes.fromhex(v[k]), v["pan"], v["psn"])  # type: ignore[return-value]
                 for k in ("iss_mk_ac", "iss_mk_smi"))


def _values(v: dict[str, Any]) -> dict[int, bytes]:
    out = {int(t, 16): bytes.fromhex(x) for t, x in v["transaction"].items()}
    return out | {0x9F36: bytes.fromhex(v["atc"])}


def test_visa_secure_messaging_session_key_is_the_vis_1_5_example() -> None:
    ex = VECTORS["eftlab_vis15"]
    key = derive_visa_secure_messaging_session_key(bytes.fromhex(ex["udk"]),
                                                   bytes.fromhex(ex["atc"]))
    assert key.hex().upper() == ex["session_key"]


@pytest.mark.parametrize("name", sorted(CVN18))
def test_card_cvn18_row_reproduces_the_public_arqc_and_script_mac(name: str) -> None:
    v = CVN18[name]
    mk_ac, mk_smi = _icc_keys(v)
    atc, values = bytes.fromhex(v["atc"]), _values(v)
    row = CRYPTOGRAM_VERSIONS[0x12]
    arqc = generate_ac(row.session_key(mk_ac, atc, values), row.mac_input(values), row.padding)
    assert arqc.hex().upper() == v["arqc"]
    key = row.script_key(mk_smi, atc, arqc)
    mac = script_mac(key, bytes.fromhex(v["command_header_with_lc"]), atc, arqc, b"", 8)
    assert mac.hex().upper() == v["command_mac"]


def test_the_vis_session_key_check_value_is_the_published_one() -> None:
    v = CVN18["pyemv_tests"]
    _, mk_smi = _icc_keys(v)
    key = CRYPTOGRAM_VERSIONS[0x12].script_key(mk_smi, bytes.fromhex(v["atc"]), bytes(8))
    assert des3_encrypt(key, bytes(8))[:2].hex().upper() == v["smi_session_key_check_value"]


@pytest.mark.parametrize("name", sorted(CVN18))
def test_switch_cvn18_row_reproduces_the_public_script_mac(name: str) -> None:
    v = CVN18[name]
    _, mk_smi = _icc_keys(v)
    values = _values(v) | {0x9F26: bytes.fromhex(v["arqc"]), 0x9F27: b"\x80"}
    de55 = b"".join(tlv.Tlv.primitive(t, x).encode() for t, x in values.items())
    icc = parse_icc_data(de55)
    row = icc_cryptogram_version(icc)
    assert row is not None and icc.cvn == 0x12
    key = row.script_key(mk_smi, icc.atc, icc.arqc)
    mac = script_mac(key, bytes.fromhex(v["command_header_with_lc"]), icc.atc, icc.arqc, b"", 8)
    assert mac.hex().upper() == v["command_mac"]
