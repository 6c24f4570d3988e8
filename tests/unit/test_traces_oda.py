"""Offline data authentication replayed on real recorded traces (EMV 4.4 Book 2, 6.3-6.6;
Book 3, 10.3; Contactless Book C-3 fDDA): the APDUs are decoded with emvtap.tlv, the static
data is rebuilt from the AFL and the records, and each certificate and signature is checked
against the trace's ``oda_expected`` block."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from data_files import traces_dir as _traces_dir

from emvtap.apdu import CommandApdu, ResponseApdu
from emvtap.capk import CapkStore, CaPublicKey
from emvtap.dol import split_dol_data
from emvtap.oda import (
    IccPublicKey,
    IssuerPublicKey,
    OdaError,
    cda_transaction_data_hash,
    fdda_terminal_data,
    parse_idn,
    recover_dynamic_data,
    recover_icc_public_key,
    recover_issuer_public_key,
    static_data_to_be_authenticated,
    verify_cda,
)
from emvtap.tlv import decode, find, flatten

TRACES = _traces_dir()
APPLE_PAY_VISA = "01_applepay_visa_qvsdc_fdda_pm3sniff.json"
MASTERCARD_CDA = "04_mastercard_paypass_testcard_cda_genac.json"
UNIONPAY_DDA = "05_unionpay_pboc_testcard_contact_full.json"


@dataclass
class Replay:
    """What a terminal would hold after the trace's exchanges."""

    trace: dict[str, Any]
    records: dict[tuple[int, int], bytes] = field(default_factory=dict)
    values: dict[int, bytes] = field(default_factory=dict)  # first occurrence per tag
    commands: dict[int, list[tuple[CommandApdu, ResponseApdu]]] = field(default_factory=dict)

    @property
    def expected(self) -> dict[str, Any]:
        return self.trace["oda_expected"]

    def exchange(self, ins: int) -> tuple[CommandApdu, ResponseApdu]:
        return self.commands[ins][0]


def _replay(name: str) -> Replay:
    trace = json.loads((TRACES / name).read_text())
    replay = Replay(trace)
    for step in trace["apdus"]:
        cmd = CommandApdu.decode(bytes.fromhex(step["c"]))
        rsp = ResponseApdu.decode(bytes.fromhex(step["r"]))
        replay.commands.setdefault(cmd.ins, []).append((cmd, rsp))
        if not rsp.ok:
            continue
        if cmd.ins == 0xB2:  # READ RECORD: P1 record, P2 = SFI << 3 | 4
            replay.records[(cmd.p2 >> 3, cmd.p1)] = rsp.data
        tlvs = decode(rsp.data)
        if cmd.ins == 0xA8 and tlvs and tlvs[0].tag == 0x80:  # GPO format 1: AIP ‖ AFL
            replay.values.setdefault(0x82, tlvs[0].value[:2])
            replay.values.setdefault(0x94, tlvs[0].value[2:])
        for tag, value in flatten(tlvs).items():
            replay.values.setdefault(tag, value)
    return replay


def _capk(replay: Replay) -> CaPublicKey:
    rid, index = replay.expected["capk"].split("/")
    assert replay.values[0x8F] == bytes.fromhex(index)
    capk = CapkStore.default().get(rid, int(index, 16))
    assert capk is not None
    return capk


def _static_data(replay: Replay) -> bytes:
    v = replay.values
    return static_data_to_be_authenticated(v[0x94], replay.records, v[0x82], v.get(0x9F4A))


def _issuer_pk(replay: Replay, today: date) -> IssuerPublicKey:
    v = replay.values
    return recover_issuer_public_key(_capk(replay), v[0x90], v.get(0x92, b""), v[0x9F32],
                                     v[0x5A], today)


def _icc_pk(replay: Replay, today: date) -> IccPublicKey:
    v = replay.values
    return recover_icc_public_key(_issuer_pk(replay, today), v[0x9F46], v.get(0x9F48, b""),
                                  v[0x9F47], _static_data(replay), v[0x5A], today)


# --- Apple Pay Visa, qVSDC with fDDA (proxmark3 sniff) -------------------------------------

APPLE_TODAY = date(2021, 10, 14)  # 9A of the GPO; the certificates run to 12/23


def test_apple_pay_visa_issuer_certificate_recovers_under_capk_a000000003_08() -> None:
    replay = _replay(APPLE_PAY_VISA)
    ipk = _issuer_pk(replay, APPLE_TODAY)
    assert ipk.issuer_id.hex().upper() == replay.expected["issuer_id_pan_prefix"]
    assert ipk.expiry_mmyy.hex().upper() == replay.expected["issuer_cert_expiry_MMYY"]


def test_apple_pay_visa_icc_certificate_with_empty_static_data() -> None:
    """AFL 18010300: no record is signed; there is no 9F4A, so the static data is empty."""
    replay = _replay(APPLE_PAY_VISA)
    assert _static_data(replay) == b""
    icc = _icc_pk(replay, APPLE_TODAY)
    assert icc.public_key.n.bit_length() == replay.expected["icc_pk_bits"]


def test_apple_pay_visa_fdda_signature_covers_un_amount_currency_and_9f69() -> None:
    """C-3 fDDA: the SDAD in the GPO response hashes 9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69 (from the PDOL
    data the reader sent and the last AFL record); ICC dynamic data 020051 (IDN = ATC)."""
    replay = _replay(APPLE_PAY_VISA)
    icc = _icc_pk(replay, APPLE_TODAY)
    select = replay.commands[0xA4][1][1]
    pdol = find(decode(select.data), 0x9F38)
    assert pdol is not None
    gpo_cmd, _ = replay.exchange(0xA8)
    pdol_values = split_dol_data(pdol.value, decode(gpo_cmd.data)[0].value)
    terminal = fdda_terminal_data(pdol_values | {0x9F69: replay.values[0x9F69]})
    sdad = replay.values[0x9F4B]
    dynamic = recover_dynamic_data(icc, sdad, terminal)
    assert dynamic.hex().upper() == replay.expected["sdad_icc_dynamic_data"]
    assert parse_idn(dynamic) == replay.values[0x9F36]
    assert icc.public_key.recover_raw(sdad)[1] == replay.expected["sdad_format"]  # 95
    with pytest.raises(OdaError, match="SDAD: hash mismatch"):
        recover_dynamic_data(icc, sdad, fdda_terminal_data(pdol_values | {
            0x9F69: replay.values[0x9F69], 0x9F02: bytes.fromhex("000000000200")}))


def test_apple_pay_visa_certificate_is_rejected_after_its_expiry() -> None:
    """Book 2 5.3 step 9: the issuer certificate ran to 31 Dec 2023."""
    replay = _replay(APPLE_PAY_VISA)
    assert _issuer_pk(replay, date(2023, 12, 31))
    with pytest.raises(OdaError) as info:
        _issuer_pk(replay, date(2024, 1, 1))
    assert str(info.value) == "issuer certificate: certificate expired (MMYY 1223)"
    assert info.value.step == "issuer certificate"


# --- Mastercard PayPass test card, CDA on GENERATE AC (binaryfoo/emv-bertlv) ----------------

MC_TODAY = date(2012, 3, 15)  # 9A in the CDOL1 data; the certificates run to 12/14


def test_mastercard_issuer_and_icc_certificates_recover_under_test_capk_ef() -> None:
    replay = _replay(MASTERCARD_CDA)
    ipk = _issuer_pk(replay, MC_TODAY)
    assert ipk.issuer_id.hex().upper() == replay.expected["issuer_id_pan_prefix"]
    assert ipk.expiry_mmyy.hex().upper() == replay.expected["issuer_cert_expiry_MMYY"]
    assert replay.values[0x9F4A] == b"\x82"
    icc = _icc_pk(replay, MC_TODAY)
    assert icc.public_key.n.bit_length() == replay.expected["icc_pk_bits"]


def test_mastercard_cda_signature_transaction_data_hash_and_cid() -> None:
    """Book 2 6.6.2: GENERATE AC P1=50 (TC + CDA); the CID inside the signature equals 9F27;
    the transaction data hash over PDOL data (none) ‖ CDOL1 data ‖ response TLVs matches."""
    replay = _replay(MASTERCARD_CDA)
    icc = _icc_pk(replay, MC_TODAY)
    genac, response = replay.exchange(0xAE)
    assert f"{genac.p1:02X}" == replay.expected["cda"]["genac_p1"]
    cdol1_values = split_dol_data(replay.values[0x8C], genac.data)
    gpo, _ = replay.exchange(0xA8)
    pdol_data = decode(gpo.data)[0].value  # 83 00: the card has no PDOL
    result = verify_cda(icc, response.data, cdol1_values[0x9F37], pdol_data, genac.data)
    assert result.cid == int(replay.expected["cda"]["cid"], 16)
    assert result.ac.hex().upper() == replay.expected["cda"]["ac"]
    assert result.transaction_data_hash == cda_transaction_data_hash(
        pdol_data, genac.data, None, response.data)


def test_mastercard_cda_with_another_unpredictable_number_is_rejected() -> None:
    replay = _replay(MASTERCARD_CDA)
    icc = _icc_pk(replay, MC_TODAY)
    genac, response = replay.exchange(0xAE)
    with pytest.raises(OdaError, match="CDA: hash mismatch"):
        verify_cda(icc, response.data, bytes(4), b"", genac.data)


def test_mastercard_cda_with_changed_cdol1_data_fails_the_transaction_data_hash() -> None:
    replay = _replay(MASTERCARD_CDA)
    icc = _icc_pk(replay, MC_TODAY)
    genac, response = replay.exchange(0xAE)
    un = split_dol_data(replay.values[0x8C], genac.data)[0x9F37]
    changed = bytes([genac.data[0] ^ 1]) + genac.data[1:]  # another amount
    with pytest.raises(OdaError, match="CDA: transaction data hash code mismatch"):
        verify_cda(icc, response.data, un, b"", changed)


def test_mastercard_icc_certificate_fails_when_the_aip_in_static_data_changes() -> None:
    replay = _replay(MASTERCARD_CDA)
    replay.values[0x82] = bytes([replay.values[0x82][0] ^ 0x01, replay.values[0x82][1]])
    with pytest.raises(OdaError, match="ICC certificate: hash mismatch"):
        _icc_pk(replay, MC_TODAY)


# --- UnionPay PBOC test card, DDA over the contact interface (binaryfoo/emv-bertlv) ---------

UPI_TODAY = date(2015, 3, 16)  # 9A in the GENERATE AC data


def test_unionpay_dda_with_test_capk_09_verifies() -> None:
    """The trace's oda_expected says emv-utils could not check it (CAPK 09 unknown there);
    emvtap ships A000000333/09, so the whole chain verifies: issuer and ICC certificates over
    SFI 1-2 records + AIP, then INTERNAL AUTHENTICATE over the DDOL data (9F37)."""
    replay = _replay(UNIONPAY_DDA)
    capk = _capk(replay)
    assert capk.test
    icc = _icc_pk(replay, UPI_TODAY)
    assert icc.pan.hex().upper().rstrip("F") == replay.values[0x5A].hex().upper()
    auth_cmd, auth_rsp = replay.exchange(0x88)
    assert replay.values[0x9F49] == bytes.fromhex("9F3704")
    sdad = decode(auth_rsp.data)[0].value  # format 1: 80 ‖ SDAD
    dynamic = recover_dynamic_data(icc, sdad, auth_cmd.data)
    assert len(parse_idn(dynamic)) == dynamic[0]
