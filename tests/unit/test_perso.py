"""Personalisation (docs/architecture.md): ``emvtap perso --seed N --out card.json`` writes a
complete, self-consistent UnionPay QuickPass device-card profile; same seed, same bytes.

Each test checks one property a terminal, the card or the switch relies on, with the core's
own procedures (ODA recovery, DOL/AFL parsing, key derivation) rather than perso's helpers.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from emvtap.bits import AIP, CID, TTQ, is_set, set_bits
from emvtap.capk import TEST_CA_INDEX, CapkStore
from emvtap.cryptogram import parse_pboc_iad, pboc_arqc_data, verify_ac
from emvtap.dol import build_dol_data, parse_afl, parse_dol
from emvtap.keys import derive_icc_master_key, derive_pboc_session_key
from emvtap.oda import (
    recover_icc_public_key,
    recover_issuer_public_key,
    static_data_to_be_authenticated,
)
from emvtap.perso import issuer_keys
from emvtap.profile import ApplicationProfile, CardProfile
from emvtap.tlv import Tlv, decode, find, find_all, flatten
from lab.cli import cli

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")

h = bytes.fromhex
SEED = 4242
TODAY = date(2026, 6, 1)  # inside the validity of the generated certificates
UNIONPAY_DEBIT = h("A000000333010101")


def _perso(out: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["perso", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def card_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("perso") / "card.json"
    _perso(path, "--seed", str(SEED))
    return path


@pytest.fixture(scope="module")
def profile(card_json: Path) -> CardProfile:
    return CardProfile.load(card_json)


@pytest.fixture(scope="module")
def app(profile: CardProfile) -> ApplicationProfile:
    return profile.application


def _records(app: ApplicationProfile) -> dict[tuple[int, int], bytes]:
    return {(r.sfi, r.record): r.data for r in app.records}


def _card_data(app: ApplicationProfile) -> dict[int, bytes]:
    """Every primitive in the records, as a terminal learns them with READ RECORD."""
    out: dict[int, bytes] = {}
    for r in app.records:
        for tag, value in flatten(decode(r.data)).items():
            out.setdefault(tag, value)
    return out


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


# --- the command ---------------------------------------------------------------------------


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _perso(a, "--seed", "7")
    _perso(b, "--seed", "7")
    assert a.read_bytes() == b.read_bytes()


def test_different_seeds_write_different_cards(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _perso(a, "--seed", "7")
    _perso(b, "--seed", "8")
    pa, pb = CardProfile.load(a), CardProfile.load(b)
    assert pa.pan != pb.pan
    assert pa.application.keys != pb.application.keys
    assert pa.application.icc_rsa != pb.application.icc_rsa
    assert pa.token.device_id != pb.token.device_id


def test_output_names_the_card_with_masked_pans(card_json: Path, profile: CardProfile,
                                                tmp_path: Path) -> None:
    out = _perso(tmp_path / "c.json", "--seed", str(SEED))
    assert "A000000333010101" in out
    assert profile.pan not in out and profile.token.span not in out
    assert f"{profile.pan[:6]}******{profile.pan[-4:]}" in out


def test_written_file_is_the_documented_json_format(card_json: Path) -> None:
    d = json.loads(card_json.read_text())
    assert d["format"] == "emvtap-card-profile/1"
    assert d["seed"] == SEED
    assert d["applications"][0]["aid"] == "A000000333010101"


# --- selection: PPSE and the application FCI -----------------------------------------------


def test_ppse_lists_the_unionpay_debit_aid_with_kernel_id_07(profile: CardProfile,
                                                             app: ApplicationProfile) -> None:
    [fci] = decode(profile.ppse_fci)
    assert fci.tag == 0x6F
    assert fci.find(0x84).value == b"2PAY.SYS.DDF01"
    [entry] = fci.find_all(0x61)
    assert entry.find(0x4F).value == UNIONPAY_DEBIT == app.aid
    assert entry.find(0x9F2A).value == b"\x07"
    assert entry.find(0x87).value == bytes([app.priority])
    assert app.kernel_id == 7


def test_pdol_asks_for_the_qpboc_terminal_data(app: ApplicationProfile) -> None:
    [fci] = decode(app.fci)
    assert fci.find(0x84).value == app.aid
    assert fci.find(0x9F38).value == app.pdol
    tags = [e.tag for e in parse_dol(app.pdol)]
    assert tags == [0x9F66, 0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37]


# --- records, AIP, AFL ---------------------------------------------------------------------


def test_aip_says_dda_for_fdda(app: ApplicationProfile) -> None:
    assert is_set(app.aip, AIP.DDA_SUPPORTED)
    assert not is_set(app.aip, AIP.SDA_SUPPORTED)


def test_afl_and_records_name_the_same_records(app: ApplicationProfile) -> None:
    afl = parse_afl(app.afl)
    named = {(e.sfi, r) for e in afl for r in e.records()}
    assert named == set(_records(app))
    for r in app.records:
        [tmpl] = decode(r.data)
        assert tmpl.tag == 0x70 and tmpl.encode() == r.data


def test_9f69_lives_in_the_last_afl_record_and_only_there(app: ApplicationProfile) -> None:
    last = parse_afl(app.afl)[-1]
    last_key = (last.sfi, last.last_record)
    holders = [key for key, data in _records(app).items() if find(decode(data), 0x9F69)]
    assert holders == [last_key]
    assert app.record(*last_key).dynamic == (0x9F69,)
    assert len(find(decode(app.record(*last_key).data), 0x9F69).value) == 7  # version 01


def test_records_carry_the_pan_expiry_cdols_and_cvm_list(profile: CardProfile,
                                                         app: ApplicationProfile) -> None:
    data = _card_data(app)
    assert data[0x5A].hex().upper().rstrip("F") == profile.pan
    assert data[0x5F24] == h(profile.expiry)
    assert data[0x5F34] == h(profile.psn)
    assert data[0x8C] == app.cdol1 and data[0x8D] == app.cdol2 and data[0x9F49] == app.ddol
    assert data[0x9F4A] == b"\x82"
    assert 0x8E in data
    assert app.track2.hex().upper().startswith(profile.pan + "D" + profile.expiry[:4])


# --- PANs ----------------------------------------------------------------------------------


def test_mpan_and_span_are_luhn_valid_and_different(profile: CardProfile) -> None:
    token = profile.token
    assert token is not None
    assert token.mpan == profile.pan
    for pan in (token.mpan, token.span):
        assert pan.isdigit() and 13 <= len(pan) <= 19
        assert _luhn_ok(pan), pan
    assert token.mpan != token.span


def test_luhn_check_of_the_test_is_itself_right() -> None:
    assert _luhn_ok("4111111111111111") and _luhn_ok("79927398713")
    assert not _luhn_ok("4111111111111112") and not _luhn_ok("79927398710")


# --- ODA: certificates under the test CA ---------------------------------------------------


def _issuer_key(profile: CardProfile, app: ApplicationProfile):
    data = _card_data(app)
    assert data[0x8F] == bytes([TEST_CA_INDEX]) and app.capk_index == TEST_CA_INDEX
    capk = CapkStore.default().get(h("A000000333"), TEST_CA_INDEX)
    assert capk is not None and capk.test
    return recover_issuer_public_key(capk, data[0x90], data.get(0x92, b""), data[0x9F32],
                                     data[0x5A], TODAY)


def test_issuer_certificate_recovers_under_the_test_capk(profile: CardProfile,
                                                        app: ApplicationProfile) -> None:
    issuer = _issuer_key(profile, app)
    assert issuer.issuer_id == h(profile.pan[:6] + "FF")
    assert issuer.public_key.modulus_len >= app.icc_rsa.modulus_len


def test_icc_certificate_recovers_over_the_static_data_of_the_records(
        profile: CardProfile, app: ApplicationProfile) -> None:
    data = _card_data(app)
    static = static_data_to_be_authenticated(app.afl, _records(app), app.aip, data[0x9F4A])
    assert static.endswith(app.aip)
    icc = recover_icc_public_key(_issuer_key(profile, app), data[0x9F46],
                                 data.get(0x9F48, b""), data[0x9F47], static, data[0x5A],
                                 TODAY)
    assert icc.public_key == app.icc_rsa.public


# --- keys and cryptograms ------------------------------------------------------------------


def test_card_keys_are_derived_from_the_seeds_issuer_master_keys(profile: CardProfile,
                                                                 app: ApplicationProfile) -> None:
    imk = issuer_keys(SEED)
    assert len({imk.imk_ac, imk.imk_smi, imk.imk_smc}) == 3
    assert app.keys.ac == derive_icc_master_key(imk.imk_ac, profile.pan, profile.psn)
    assert app.keys.smi == derive_icc_master_key(imk.imk_smi, profile.pan, profile.psn)
    assert app.keys.smc == derive_icc_master_key(imk.imk_smc, profile.pan, profile.psn)
    assert issuer_keys(SEED + 1).imk_ac != imk.imk_ac


def _online_gpo(profile: CardProfile) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """Tap the card (the HCE card on this profile) for an online purchase; returns the
    terminal values it signed and the objects of its GPO answer."""
    from hce_card.card import HceCard

    card = HceCard(profile)
    app = profile.application
    assert card.process(h("00A404000E325041592E5359532E444446303100"))[-2:] == h("9000")
    answer = card.process(bytes([0, 0xA4, 4, 0, len(app.aid)]) + app.aid + b"\x00")
    assert answer[-2:] == h("9000"), answer.hex()
    ttq = set_bits(bytes(4), TTQ.QPBOC_SUPPORTED, TTQ.ONLINE_PIN_SUPPORTED,
                   TTQ.ONLINE_CRYPTOGRAM_REQUIRED, TTQ.FDDA_V01_SUPPORTED)
    values = {0x9F66: ttq, 0x9F02: h("000000001234"), 0x9F03: bytes(6), 0x9F1A: h("0156"),
              0x95: bytes(5), 0x5F2A: h("0156"), 0x9A: h("260601"), 0x9C: b"\x00",
              0x9F37: h("11223344")}
    pdol_data = build_dol_data(app.pdol, values)
    gpo = Tlv.primitive(0x83, pdol_data).encode()
    answer = card.process(h("80A80000") + bytes([len(gpo)]) + gpo + b"\x00")
    assert answer[-2:] == h("9000"), answer.hex()
    [tmpl] = decode(answer[:-2])
    assert tmpl.tag == 0x77
    return values, {t.tag: t.value for t in tmpl.children}


def test_iad_the_card_builds_has_cvn_01(profile: CardProfile, app: ApplicationProfile) -> None:
    assert app.cvn == 1
    _, objects = _online_gpo(profile)
    iad = parse_pboc_iad(objects[0x9F10])
    assert iad.cvn == 0x01
    assert iad.dki == app.dki
    assert CID.type_of(objects[0x9F27][0]) == "ARQC"


def test_arqc_of_the_card_verifies_under_the_issuer_master_key(profile: CardProfile) -> None:
    values, objects = _online_gpo(profile)
    icc_mk = derive_icc_master_key(issuer_keys(SEED).imk_ac, profile.pan, profile.psn)
    session_key = derive_pboc_session_key(icc_mk, objects[0x9F36])
    signed = values | {0x82: objects[0x82], 0x9F36: objects[0x9F36], 0x9F10: objects[0x9F10]}
    assert verify_ac(session_key, pboc_arqc_data(signed), objects[0x9F26])


def test_gpo_answer_carries_the_profiles_aip_afl_and_track_2(profile: CardProfile,
                                                             app: ApplicationProfile) -> None:
    _, objects = _online_gpo(profile)
    assert objects[0x82] == app.aip and objects[0x94] == app.afl
    assert objects[0x57] == app.track2
    assert objects[0x5F34] == h(profile.psn)
    assert find_all(decode(app.fci), 0x9F38)  # the PDOL the terminal used came from the FCI
