"""The EMV full path (EMV 4.4 Book 3, 10.2-10.11; Book 4, 6.3), procedure by procedure, on a
card that answers GPO with AIP/AFL only: a configurable test card (test_terminal_doubles
.EmvCard, personalised under emvtap's test CA) and the HCE card's full PBOC path."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from test_terminal_doubles import (
    CDOL1,
    PAN,
    TODAY,
    CardBehaviour,
    CardSpec,
    EmvCard,
    FixedRandom,
    Host,
    MutatingCard,
    RemovingTransport,
    emv_card,
    loopback,
    on_ins,
    script,
    set_tag,
)

from emvtap.bits import AIP, TSI, TVR, Bit, is_set, names, set_bits
from emvtap.cryptogram import arpc_method_1
from emvtap.dol import split_dol_data
from emvtap.keys import derive_pboc_session_key
from emvtap.perso import generate_profile
from emvtap.tlv import Tlv, decode
from hce_card.card import HceCard
from terminal.config import TerminalConfig
from terminal.kernel.oda import select_oda_method
from terminal.outcome import Cvm, Outcome
from terminal.pay import perform_transaction

CDOL2_WITHOUT_91 = bytes.fromhex("8A0295059F37049F4C08")

#: TSI after a full path that ran ODA, CVM, card and terminal risk management (Book 3 10.3-10.8)
FULL_TSI = (TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
            TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED)
#: CVM Results of "no CVM required" under the terminal's CVM limit: 1F (no CVM) 03 (if terminal
#: supports the CVM) 02 (successful) - Book 3 10.5, Book 4 A4
NO_CVM = "1F0302"


def whole(result: Any) -> tuple[Any, ...]:
    """The complete result of a tap: outcome, final outcome, every TVR and TSI bit (by name, so
    a failing test says which bit is extra or missing), the TVR and TSI bytes, CVM Results."""
    return (result.outcome, result.final_outcome, names(result.tvr, TVR), names(result.tsi, TSI),
            result.tvr.hex().upper(), result.tsi.hex().upper(), result.cvm_results.hex().upper())


def expect(outcome: Outcome, *, final: Outcome | None = None, tvr: tuple[Bit, ...] = (),
           tsi: tuple[Bit, ...] = FULL_TSI, cvm: str = NO_CVM) -> tuple[Any, ...]:
    """What :func:`whole` must be: exactly the TVR and TSI bits named, no other."""
    tvr_b, tsi_b = set_bits(bytes(5), *tvr), set_bits(bytes(2), *tsi)
    return (outcome, final or outcome, names(tvr_b, TVR), names(tsi_b, TSI),
            tvr_b.hex().upper(), tsi_b.hex().upper(), cvm)


def config(**top: Any) -> TerminalConfig:
    comb = {"aid": "A000000333010101", "kernel_id": 7, "ttq": "6600C080",
            "transaction_limit": 100000, "cvm_required_limit": 30000, "floor_limit": 10000,
            "application_version": "0030"} | top.pop("comb", {})
    data = TerminalConfig.defaults_dict() | {"combinations": [comb]} | top
    return TerminalConfig.from_dict(data)


def tap(card: Any, amount: int = 1234, cfg: TerminalConfig | None = None, **kw: Any) -> Any:
    kw.setdefault("now", TODAY)
    kw.setdefault("rng", FixedRandom(99))  # never selected at random unless a test says so
    kw.setdefault("switch", "none")
    return perform_transaction(loopback(card), cfg or config(), amount, **kw)


def issuer(card: EmvCard, code: str = "00", *scripts: Tlv, arpc: bool = True) -> Host:
    """A host that approves (or not) with the card's ARPC in 91 and the given scripts."""
    def icc(values: dict[int, bytes]) -> bytes:
        out = Tlv.primitive(0x91, card.arpc(values[0x9F26], code.encode())).encode() if arpc \
            else b""
        return out + b"".join(s.encode() for s in scripts)
    return Host(code, icc=icc)


def genac_data(card: EmvCard, n: int) -> dict[int, bytes]:
    """The CDOL values the terminal sent in the n-th GENERATE AC (1 or 2)."""
    cmds = [c for c in card.commands if c[1] == 0xAE]
    dol = card.spec.cdol1 if n == 1 else card.spec.cdol2
    return split_dol_data(dol, cmds[n - 1][5:-1])


def test_full_path_offline_approval_with_cda() -> None:
    result = tap(emv_card())
    assert whole(result) == expect(Outcome.APPROVED)
    assert result.path == "EMV full path"
    assert result.reason == "offline approval (TC in GENERATE AC 1) with CDA verified"


# --- processing restrictions (Book 3, 10.4) ------------------------------------------------


def test_application_versions_differ() -> None:
    result = tap(emv_card(app_version=bytes.fromhex("0002")))
    assert whole(result) == expect(Outcome.APPROVED, tvr=(TVR.VERSIONS_DIFFER,))
    assert "application versions differ: card 0002, terminal 0030" in result.steps


def test_expired_application() -> None:
    result = tap(emv_card(expiry=bytes.fromhex("251231")))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.EXPIRED_APPLICATION,))


def test_application_not_yet_effective() -> None:
    result = tap(emv_card(effective=bytes.fromhex("270101")))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.NOT_YET_EFFECTIVE,))


def test_auc_without_international_goods_or_services_is_service_not_allowed() -> None:
    """10.4.2: issuer country 0840 ≠ terminal country 0156 → international; AUC 29 00 allows
    domestic goods/services only; TAC denial has "requested service not allowed" → AAC."""
    result = tap(emv_card(issuer_country=bytes.fromhex("0840"), auc=bytes.fromhex("2900")))
    assert whole(result) == expect(Outcome.DECLINED, tvr=(TVR.SERVICE_NOT_ALLOWED,))
    assert result.reason == "card declined (AAC in GENERATE AC 1, AAC requested)"


def test_auc_not_valid_at_this_terminal_type() -> None:
    result = tap(emv_card(auc=bytes.fromhex("FE00")))  # everything but "other than ATMs"
    assert whole(result) == expect(Outcome.DECLINED, tvr=(TVR.SERVICE_NOT_ALLOWED,))
    assert "AUC: application not valid at this terminal type" in result.steps


# --- terminal risk management (Book 3, 10.6) ------------------------------------------------


def test_floor_limit_exceeded_goes_online() -> None:
    result = tap(emv_card(), 15000)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))


@pytest.mark.parametrize(("amount", "draw", "selected"), [
    (1234, 5, True), (1234, 6, False),  # below the threshold: the target percentage, 5
    (7500, 12, True), (7500, 13, False),  # halfway to the floor limit: 5 + (20 - 5) / 2
])
def test_random_transaction_selection(amount: int, draw: int, selected: bool) -> None:
    result = tap(emv_card(), amount, rng=FixedRandom(draw))
    assert whole(result) == (
        expect(Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.RANDOMLY_SELECTED_ONLINE,))
        if selected else expect(Outcome.APPROVED))


def test_velocity_lower_consecutive_offline_limit_exceeded() -> None:
    result = tap(emv_card(behaviour=CardBehaviour(atc=10, last_online_atc=3)))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED,
        tvr=(TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,))
    assert "7 offline transactions > lower consecutive offline limit 5" in result.steps


def test_velocity_upper_consecutive_offline_limit_exceeded() -> None:
    result = tap(emv_card(behaviour=CardBehaviour(atc=20, last_online_atc=3)))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
             TVR.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED))


def test_velocity_without_get_data_counts_both_limits_exceeded() -> None:
    card = emv_card(behaviour=CardBehaviour(get_data_fails=True))
    result = tap(card)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
             TVR.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED))
    assert [c[:4].hex().upper() for c in card.commands if c[1] == 0xCA] == ["80CA9F36",
                                                                          "80CA9F13"]


def test_velocity_with_atc_not_above_last_online_counts_both_exceeded() -> None:
    result = tap(emv_card(behaviour=CardBehaviour(atc=3, last_online_atc=3)))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
             TVR.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED))


def test_new_card_when_the_last_online_atc_register_is_zero() -> None:
    result = tap(emv_card(behaviour=CardBehaviour(atc=2, last_online_atc=0)))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.NEW_CARD,))


def test_no_velocity_checking_without_9f14_and_9f23() -> None:
    card = emv_card(lower_offline_limit=None, upper_offline_limit=None)
    result = tap(card)
    assert whole(result) == expect(Outcome.APPROVED)
    assert not any(c[1] == 0xCA for c in card.commands)


def test_card_on_the_terminal_exception_file() -> None:
    cfg = config(risk_management={"exception_file": [PAN]})
    result = tap(emv_card(), cfg=cfg)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.CARD_ON_EXCEPTION_FILE,))


def test_merchant_forced_online() -> None:
    result = tap(emv_card(), merchant_forced_online=True)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.MERCHANT_FORCED_ONLINE,))


def test_no_terminal_risk_management_when_the_aip_does_not_ask() -> None:
    result = tap(emv_card(aip=bytes.fromhex("3500")), 15000)  # 3D00 without b4
    assert whole(result) == expect(
        Outcome.APPROVED,
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED))


# --- offline data authentication (Book 3, 10.3; Book 2, 5-6) --------------------------------


@pytest.mark.parametrize(("aip", "caps", "method"), [
    ("3D00", "E068C8", "CDA"), ("3D00", "E068C0", "DDA"), ("7C00", "E068C8", "DDA"),
    ("5C00", "E068C8", "SDA"), ("1C00", "E068C8", None), ("7D00", "E06800", None),
])
def test_oda_method_is_the_best_both_sides_support(aip: str, caps: str,
                                                   method: str | None) -> None:
    assert select_oda_method(bytes.fromhex(aip), bytes.fromhex(caps)) == method


def test_oda_not_performed_when_no_method_is_shared() -> None:
    result = tap(emv_card(aip=bytes.fromhex("1C00")))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.ODA_NOT_PERFORMED,),
        tsi=(TSI.CARDHOLDER_VERIFICATION_PERFORMED, TSI.CARD_RISK_MANAGEMENT_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))


def test_sda_verified_puts_the_dac_in_the_cdol() -> None:
    card = emv_card(aip=bytes.fromhex("5C00"))
    result = tap(card)
    assert whole(result) == expect(Outcome.APPROVED, tvr=(TVR.SDA_SELECTED,))
    assert result.oda_method == "SDA" and result.oda_result == "ok"
    assert genac_data(card, 1)[0x9F45] == b"12"  # the Data Authentication Code


def test_sda_failed() -> None:
    card = MutatingCard(emv_card(aip=bytes.fromhex("5C00")),
                        on_ins(0xB2, lambda d: d.replace(b"\x5F\x28\x02\x01\x56",
                                                         b"\x5F\x28\x02\x01\x57")))
    result = tap(card)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.SDA_FAILED, TVR.SDA_SELECTED))
    assert result.oda_result == "failed: SSAD: hash mismatch"


def test_dda_with_internal_authenticate() -> None:
    card = emv_card(aip=bytes.fromhex("3C00"))
    result = tap(card)
    assert whole(result) == expect(Outcome.APPROVED)
    assert result.oda_method == "DDA" and result.oda_result == "ok"
    ia = next(c for c in card.commands if c[1] == 0x88)
    assert ia[5:9] == genac_data(card, 1)[0x9F37]  # the DDOL carries the same UN
    # the IDN (ATC 0007), right-padded to the 8 bytes CDOL1 asks for (Book 3, 5.4)
    assert genac_data(card, 1)[0x9F4C] == bytes.fromhex("0007000000000000")


def test_dda_failed() -> None:
    card = emv_card(aip=bytes.fromhex("3C00"), behaviour=CardBehaviour(corrupt_dda=True))
    result = tap(card)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.DDA_FAILED,))
    assert result.oda_result == "failed: SDAD: hash mismatch"


def test_dda_with_the_default_ddol_when_the_card_has_none() -> None:
    result = tap(emv_card(aip=bytes.fromhex("3C00"), ddol=None))
    assert whole(result) == expect(Outcome.APPROVED)
    assert result.oda_result == "ok"
    assert "card has no DDOL: using the terminal's default DDOL" in result.steps


def test_dda_fails_when_the_default_ddol_has_no_unpredictable_number() -> None:
    result = tap(emv_card(aip=bytes.fromhex("3C00"), ddol=None),
                 cfg=config(default_ddol="9F0206"))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.DDA_FAILED,))
    assert result.oda_result == "failed: the default DDOL has no unpredictable number (9F37)"


def test_cda_failed_on_a_tc_declines() -> None:
    """Book 2, 6.6.2: a TC whose CDA signature does not verify is not an approval."""
    result = tap(emv_card(behaviour=CardBehaviour(corrupt_cda=True)))
    assert whole(result) == expect(Outcome.DECLINED, tvr=(TVR.CDA_FAILED,))
    assert result.reason == "CDA failed on GENERATE AC 1: CDA: hash mismatch"


def test_cda_failed_on_an_arqc_ends_with_an_aac() -> None:
    card = emv_card(behaviour=CardBehaviour(corrupt_cda=True))
    result = tap(card, 15000, authorise=issuer(card))
    assert whole(result) == expect(Outcome.DECLINED, tvr=(TVR.CDA_FAILED, TVR.EXCEEDS_FLOOR_LIMIT))
    assert [c[2] for c in card.commands if c[1] == 0xAE] == [0x90, 0x00]  # ARQC+CDA, AAC
    assert genac_data(card, 2)[0x8A] == b"Z3"


def test_cda_icc_key_failure_asks_for_no_cda_signature() -> None:
    """Book 2, 6.6 / Book 4, 6.3.2: the ICC key could not be recovered - CDA failed before
    GENERATE AC, which then asks for no CDA signature (P1 b5 clear)."""
    card = emv_card(drop=frozenset({0x9F46}))
    result = tap(card)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.CDA_FAILED,))
    assert result.oda_result == "failed: ICC public key certificate (9F46) missing"
    assert not any(c[2] & 0x10 for c in card.commands if c[1] == 0xAE)


def test_cda_on_the_second_generate_ac() -> None:
    card = emv_card()
    result = tap(card, 15000, authorise=issuer(card))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert [c[2] for c in card.commands if c[1] == 0xAE] == [0x90, 0x50]
    assert "CDA verified on GENERATE AC 2" in result.steps


@pytest.mark.parametrize(("spec", "reason"), [
    ({"capk_index": 0x77}, "CAPK A000000333/77 is not known to the terminal"),
    ({"issuer_cert_expiry": bytes.fromhex("1225")},
     "issuer certificate: certificate expired (MMYY 1225)"),
    ({"icc_cert_expiry": bytes.fromhex("0226")},
     "ICC certificate: certificate expired (MMYY 0226)"),
    ({"drop": frozenset({0x9F32})}, "issuer public key exponent (9F32) missing"),
    ({"drop": frozenset({0x8F})}, "CA public key index (8F) missing"),
])
def test_oda_failure_reasons(spec: dict[str, Any], reason: str) -> None:
    result = tap(emv_card(aip=bytes.fromhex("3C00"), **spec))
    assert whole(result) == expect(Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
                                   tvr=(TVR.DDA_FAILED,))
    assert result.oda_result == f"failed: {reason}"


def test_revoked_issuer_certificate() -> None:
    cfg = config(revocation_list=[{"rid": "A000000333", "index": "E1", "serial": "000001"}])
    result = tap(emv_card(aip=bytes.fromhex("3C00")), cfg=cfg)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.DDA_FAILED,))
    assert result.oda_result == ("failed: issuer certificate: certificate serial 000001 is on "
                                 "the CA revocation list of A000000333/E1")


def test_test_ca_refused_in_production_mode() -> None:
    result = tap(emv_card(), cfg=config(production=True))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.CDA_FAILED,))
    assert result.oda_result == ("failed: CAPK A000000333/E1 is a test key; the terminal is in "
                                 "production mode")


# --- cardholder verification (Book 3, 10.5) --------------------------------------------------


def test_online_pin_rule_with_the_pin_entered() -> None:
    card = emv_card()
    host = issuer(card)
    result = tap(card, 35000, authorise=host, pin_entry=lambda: "4321")
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED,
        tvr=(TVR.ONLINE_PIN_ENTERED, TVR.EXCEEDS_FLOOR_LIMIT), cvm="420300")
    assert result.cvm == Cvm.ONLINE_PIN and result.cvm_results.hex().upper() == "420300"
    assert len(host.requests[-1]["52"]) == 8


def test_pin_bypassed_fails_the_rule_and_the_next_one_applies() -> None:
    result = tap(emv_card(), 35000)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.PIN_NOT_ENTERED, TVR.EXCEEDS_FLOOR_LIMIT), cvm="1E0300")
    assert result.cvm == Cvm.SIGNATURE and result.cvm_results.hex().upper() == "1E0300"


def test_no_pin_pad_fails_the_online_pin_rule() -> None:
    result = tap(emv_card(), 35000, cfg=config(pin_pad=False), pin_entry=lambda: "1234")
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.PIN_PAD_NOT_PRESENT, TVR.EXCEEDS_FLOOR_LIMIT), cvm="1E0300")
    assert result.cvm == Cvm.SIGNATURE


def test_offline_pin_is_not_supported_by_this_reader() -> None:
    cvm_list = bytes.fromhex("00000000000000000100")  # plaintext PIN by ICC, always
    result = tap(emv_card(cvm_list=cvm_list), 35000)
    assert whole(result) == expect(
        Outcome.DECLINED,
        tvr=(TVR.CARDHOLDER_VERIFICATION_FAILED, TVR.PIN_PAD_NOT_PRESENT, TVR.EXCEEDS_FLOOR_LIMIT),
        cvm="010001")


def test_missing_cvm_list_is_icc_data_missing() -> None:
    result = tap(emv_card(cvm_list=None), 35000)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.ICC_DATA_MISSING, TVR.EXCEEDS_FLOOR_LIMIT),
        tsi=(TSI.ODA_PERFORMED, TSI.CARD_RISK_MANAGEMENT_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED),
        cvm="3F0000")


def test_unrecognised_cvm_then_the_next_rule() -> None:
    result = tap(emv_card(cvm_list=bytes.fromhex("000000000000000048001F00")), 35000)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.UNRECOGNISED_CVM, TVR.EXCEEDS_FLOOR_LIMIT), cvm="1F0002")
    assert result.cvm == Cvm.NO_CVM and result.cvm_results.hex().upper() == "1F0002"


def test_fail_cvm_processing_rule() -> None:
    result = tap(emv_card(cvm_list=bytes.fromhex("00000000000000000000")), 35000)
    assert whole(result) == expect(
        Outcome.DECLINED, tvr=(TVR.CARDHOLDER_VERIFICATION_FAILED, TVR.EXCEEDS_FLOOR_LIMIT),
        cvm="000001")


def test_no_cvm_rule_applies() -> None:
    """Only "under X" with X = 0: no condition holds → 3F 00 01, not successful."""
    result = tap(emv_card(cvm_list=bytes.fromhex("00000000000000001F06")), 35000)
    assert whole(result) == expect(
        Outcome.DECLINED, tvr=(TVR.CARDHOLDER_VERIFICATION_FAILED, TVR.EXCEEDS_FLOOR_LIMIT),
        cvm="3F0001")


@pytest.mark.parametrize(("condition", "amount", "currency", "applies"), [
    ("06", 400, "0156", True), ("06", 600, "0156", False), ("07", 600, "0156", True),
    ("08", 900, "0156", True), ("09", 1100, "0156", True), ("07", 600, "0840", False),
])
def test_amount_conditions_need_the_application_currency(condition: str, amount: int,
                                                         currency: str, applies: bool) -> None:
    """Annex C3: 06-09 compare with X (500) and Y (1000) only in the application currency."""
    cvm_list = bytes.fromhex("000001F4000003E8" + "1E" + condition + "1F00")
    cfg = config(comb={"cvm_required_limit": 0})
    result = tap(emv_card(cvm_list=cvm_list, app_currency=bytes.fromhex(currency)), amount,
                 cfg=cfg)
    # signature when the condition holds, else the next rule 1F00: no CVM, unconditionally
    cvm = "1E" + condition + "00" if applies else "1F0002"
    assert whole(result) == expect(Outcome.APPROVED, cvm=cvm)
    assert result.cvm == (Cvm.SIGNATURE if applies else Cvm.NO_CVM)


def test_below_the_cvm_required_limit_only_no_cvm_is_offered() -> None:
    card = emv_card()
    host = issuer(card)
    result = tap(card, 15000, authorise=host)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert host.de55()[0x9F33].hex().upper() == "E008C8"


def test_on_device_cvm_for_a_card_that_supports_it() -> None:
    """AIP byte 1 b2 (Kernel 2 "on-device cardholder verification supported") with a reader
    that supports CDCVM, at the CVM limit: CVM Results 01 00 02."""
    result = tap(emv_card(aip=bytes.fromhex("3F00")), 35000, authorise=Host("00"))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,),
        cvm="010002")
    assert result.cvm == Cvm.CDCVM and result.cvm_results.hex().upper() == "010002"


# --- terminal and card action analysis (Book 3, 10.7-10.8) ---------------------------------


def test_denial_action_codes_ask_for_an_aac() -> None:
    cfg = config(tac={"default": "0000000000", "denial": "8000000000", "online": "0000000000"})
    card = emv_card(aip=bytes.fromhex("1C00"))
    result = tap(card, cfg=cfg)
    assert whole(result) == expect(
        Outcome.DECLINED, tvr=(TVR.ODA_NOT_PERFORMED,),
        tsi=(TSI.CARDHOLDER_VERIFICATION_PERFORMED, TSI.CARD_RISK_MANAGEMENT_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))
    assert ("terminal action analysis: denial codes match offline data authentication was not "
            "performed") in result.steps
    assert [c[2] for c in card.commands if c[1] == 0xAE] == [0x00]


def test_offline_only_terminal_uses_the_default_action_codes() -> None:
    cfg = config(terminal_type="23")  # attended, offline only
    assert whole(tap(emv_card(), cfg=cfg)) == expect(Outcome.APPROVED)
    declined = tap(emv_card(), 15000, cfg=cfg)
    assert whole(declined) == expect(Outcome.DECLINED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert any(s.startswith("terminal action analysis (offline-only): default codes match")
               for s in declined.steps)


def test_zero_amount_goes_online() -> None:
    result = tap(emv_card(), 0, cfg=config(comb={"zero_amount_allowed": True}))
    assert whole(result) == expect(Outcome.ONLINE_REQUEST, final=Outcome.APPROVED)
    assert ("terminal action analysis: go online (online cryptogram required by Entry Point)"
            in result.steps)


def test_card_declines_a_tc_request_with_an_aac() -> None:
    result = tap(emv_card(behaviour=CardBehaviour(decision="AAC")))
    assert whole(result) == expect(Outcome.DECLINED, tsi=(
        TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
        TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))
    assert result.reason == "card declined (AAC in GENERATE AC 1, TC requested)"


def test_card_answering_a_higher_cryptogram_than_requested_ends_the_application() -> None:
    card = MutatingCard(emv_card(aip=bytes.fromhex("3C00")), set_tag(0xAE, 0x9F27, b"\x40"))
    result = tap(card, 15000)
    assert whole(result) == expect(
        Outcome.END_APPLICATION, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))
    assert result.reason == ("GENERATE AC 1: card returned TC when ARQC was requested (a card "
                             "may only lower the cryptogram)")


def test_tc_hash_value_with_the_default_tdol() -> None:
    card = emv_card(cdol1=CDOL1 + bytes.fromhex("9814"))
    result = tap(card)
    assert whole(result) == expect(Outcome.APPROVED, tvr=(TVR.DEFAULT_TDOL_USED,))
    assert len(genac_data(card, 1)[0x98]) == 20


def test_tc_hash_value_with_the_cards_tdol() -> None:
    card = emv_card(cdol1=CDOL1 + bytes.fromhex("9814"),
                    extra_record_objects=(Tlv.primitive(0x97, bytes.fromhex("9F0206")),))
    result = tap(card)
    assert whole(result) == expect(Outcome.APPROVED)
    assert len(genac_data(card, 1)[0x98]) == 20


# --- online, issuer authentication, scripts, GENERATE AC 2 (Book 3, 10.9-10.11) --------------


def test_issuer_authentication_by_external_authenticate() -> None:
    card = emv_card(cdol2=CDOL2_WITHOUT_91)
    result = tap(card, 15000, authorise=issuer(card))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.ISSUER_AUTHENTICATION_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))
    assert result.online["arpc_verified"] is True


def test_issuer_authentication_failed() -> None:
    card = emv_card(cdol2=CDOL2_WITHOUT_91)
    host = Host("00", icc=lambda v: Tlv.primitive(0x91, bytes(8) + b"00").encode())
    result = tap(card, 15000, authorise=host)
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED,
        tvr=(TVR.EXCEEDS_FLOOR_LIMIT, TVR.ISSUER_AUTHENTICATION_FAILED),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.ISSUER_AUTHENTICATION_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))
    assert result.reason.endswith("issuer approved (00); card declined (AAC in GENERATE AC 2)")


def test_issuer_authentication_data_in_cdol2() -> None:
    """91 named in CDOL2 travels in GENERATE AC 2; no EXTERNAL AUTHENTICATE."""
    card = emv_card()
    result = tap(card, 15000, authorise=issuer(card))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert not any(c[1] == 0x82 for c in card.commands)
    assert genac_data(card, 2)[0x91] == card.arpc(genac_arqc(card))
    assert genac_data(card, 2)[0x8A] == b"00"
    assert result.online["arpc_verified"] is True


def genac_arqc(card: EmvCard) -> bytes:
    assert card.arqc is not None
    return card.arqc


def test_issuer_decline_is_confirmed_with_an_aac() -> None:
    card = emv_card()
    result = tap(card, 15000, authorise=issuer(card, "05"))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert result.reason.endswith("issuer declined (05); card confirmed the decline (AAC)")
    assert [c[2] & 0xC0 for c in card.commands if c[1] == 0xAE] == [0x80, 0x00]


def test_unable_to_go_online_default_action_codes_decline() -> None:
    card = emv_card()
    result = tap(card, 15000, authorise=Host(fail=TimeoutError("no answer")))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert result.reason == ("card requested online authorisation (ARQC); unable to go online "
                             "(no answer); declined offline by the default action codes (AAC "
                             "in GENERATE AC 2)")
    assert genac_data(card, 2)[0x8A] == b"Z3"


def test_unable_to_go_online_default_action_codes_approve() -> None:
    """Randomly selected for online, the host does not answer; no default code matches
    "randomly selected" → TC with ARC Y3."""
    card = emv_card()
    result = tap(card, 1234, rng=FixedRandom(1), switch="none")
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.RANDOMLY_SELECTED_ONLINE,))
    assert genac_data(card, 2)[0x8A] == b"Y3"


def test_issuer_script_71_before_the_final_generate_ac() -> None:
    card = emv_card()
    s71 = script(b"\x00\x00\x00\x71", bytes.fromhex("841E000004AABBCCDD"))
    s72 = script(b"\x00\x00\x00\x72", bytes.fromhex("8418000004AABBCCDD"), tag=0x72)
    result = tap(card, 15000, authorise=issuer(card, "00", s71, s72))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED,
             TSI.SCRIPT_PROCESSING_PERFORMED))
    order = [c[:2].hex().upper() for c in card.commands if c[0] == 0x84 or c[1] == 0xAE]
    assert order == ["80AE", "841E", "80AE", "8418"]
    assert result.issuer_script_results.hex().upper() == "2000000071" "2000000072"
    assert result.tvr[4] & 0x30 == 0


def test_issuer_script_failure_before_the_final_generate_ac() -> None:
    card = emv_card(behaviour=CardBehaviour(script_status={0x1E: 0x6985}))
    s71 = script(b"\x00\x00\x00\x01", bytes.fromhex("8418000004AABBCCDD"),
                 bytes.fromhex("841E000004AABBCCDD"), bytes.fromhex("8416000004AABBCCDD"))
    result = tap(card, 15000, authorise=issuer(card, "00", s71))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED,
        tvr=(TVR.EXCEEDS_FLOOR_LIMIT, TVR.SCRIPT_FAILED_BEFORE_FINAL_GENAC),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED,
             TSI.SCRIPT_PROCESSING_PERFORMED))
    assert result.issuer_script_results.hex().upper() == "1200000001"  # 2nd command failed
    assert not any(c[1] == 0x16 for c in card.commands)  # the rest of the script is dropped


def test_issuer_script_failure_after_the_final_generate_ac() -> None:
    card = emv_card(behaviour=CardBehaviour(script_status={0x18: 0x6A80}))
    s72 = script(b"\x00\x00\x00\x02", bytes.fromhex("8418000004AABBCCDD"), tag=0x72)
    result = tap(card, 15000, authorise=issuer(card, "00", s72))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED,
        tvr=(TVR.EXCEEDS_FLOOR_LIMIT, TVR.SCRIPT_FAILED_AFTER_FINAL_GENAC),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED,
             TSI.SCRIPT_PROCESSING_PERFORMED))
    assert result.issuer_script_results.hex().upper() == "1100000002"


def test_warning_status_words_count_as_script_success() -> None:
    card = emv_card(behaviour=CardBehaviour(script_status={0x18: 0x6283}))
    s72 = script(b"\x00\x00\x00\x03", bytes.fromhex("8418000004AABBCCDD"), tag=0x72)
    result = tap(card, 15000, authorise=issuer(card, "00", s72))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED,
             TSI.SCRIPT_PROCESSING_PERFORMED))
    assert result.issuer_script_results.hex().upper() == "2000000003"


def test_malformed_script_command_fails_the_script() -> None:
    card = emv_card()
    bad = Tlv.template(0x71, [Tlv.primitive(0x86, b"\x84\x1E")])  # not an APDU, no 9F18
    result = tap(card, 15000, authorise=issuer(card, "00", bad))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED,
        tvr=(TVR.EXCEEDS_FLOOR_LIMIT, TVR.SCRIPT_FAILED_BEFORE_FINAL_GENAC),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.CARD_RISK_MANAGEMENT_PERFORMED, TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED,
             TSI.SCRIPT_PROCESSING_PERFORMED))
    assert result.issuer_script_results.hex().upper() == "1100000000"


def test_card_removed_before_the_second_generate_ac_is_try_again_with_reversal() -> None:
    """Simulated removal: PPSE, SELECT, GPO, 3 READ RECORD, 2 GET DATA, GENERATE AC 1 -
    the card is gone for GENERATE AC 2 after the host approved."""
    card = emv_card()
    transport = RemovingTransport(card, after=9)
    result = perform_transaction(transport, config(), 15000, now=TODAY, rng=FixedRandom(99),
                                 authorise=issuer(card))
    assert whole(result) == expect(Outcome.TRY_AGAIN, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert result.reason.endswith("the host had approved: the authorisation must be reversed")


# --- missing and malformed card data ------------------------------------------------------


@pytest.mark.parametrize(("tag", "name"), [(0x8C, "CDOL1 (8C)"), (0x8D, "CDOL2 (8D)"),
                                           (0x5F24, "Application Expiration Date (5F24)")])
def test_missing_mandatory_full_path_data(tag: int, name: str) -> None:
    result = tap(emv_card(drop=frozenset({tag})))
    assert whole(result) == expect(Outcome.END_APPLICATION, tvr=(TVR.ICC_DATA_MISSING,), tsi=(),
                                   cvm="3F0000")
    assert result.reason == f"ICC data missing: {name}"


def test_redundant_data_object_in_the_records_ends_the_application() -> None:
    card = emv_card(extra_record_objects=(Tlv.primitive(0x5F28, b"\x08\x40"),))
    result = tap(card)
    assert whole(result) == expect(Outcome.END_APPLICATION, tsi=(), cvm="3F0000")
    assert result.reason == "redundant data object 5F28 in record SFI 1/1"


def test_malformed_cdol_ends_the_application() -> None:
    result = tap(emv_card(cdol1=bytes.fromhex("9F02069F")))
    assert whole(result) == expect(
        Outcome.END_APPLICATION,
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))
    assert result.reason.startswith("CDOL from the card is malformed")


def test_generate_ac_response_without_cid_is_icc_data_missing() -> None:
    card = MutatingCard(emv_card(aip=bytes.fromhex("3C00")), set_tag(0xAE, 0x9F27, None))
    result = tap(card)
    assert whole(result) == expect(
        Outcome.END_APPLICATION, tvr=(TVR.ICC_DATA_MISSING,),
        tsi=(TSI.ODA_PERFORMED, TSI.CARDHOLDER_VERIFICATION_PERFORMED,
             TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED))
    assert result.reason == "ICC data missing in the GENERATE AC 1 response: CID (9F27)"


# --- against the HCE card's full PBOC path ---------------------------------------------------


def _hce_config() -> TerminalConfig:
    return config(comb={"ttq": "4600C080"})  # full PBOC, no qPBOC: the card takes the full path


def _hce_host(profile: Any, code: str = "00", *scripts: Tlv) -> Host:
    keys = profile.applications[0].keys

    def icc(values: dict[int, bytes]) -> bytes:
        sk = derive_pboc_session_key(keys.ac, values[0x9F36])
        arpc = arpc_method_1(sk, values[0x9F26], code.encode()) + code.encode()
        return Tlv.primitive(0x91, arpc).encode() + b"".join(s.encode() for s in scripts)
    return Host(code, icc=icc)


def test_hce_card_full_pboc_path_offline_approval_with_dda() -> None:
    card = HceCard(generate_profile(5))
    result = tap(card, 1234, cfg=_hce_config())
    assert whole(result) == expect(Outcome.APPROVED)
    assert result.path == "EMV full path" and result.kernel_id == 7
    assert result.oda_method == "DDA" and result.oda_result == "ok"


def test_hce_card_full_pboc_path_online_with_issuer_authentication() -> None:
    profile = generate_profile(5)
    card = HceCard(profile)
    result = tap(card, 15000, cfg=_hce_config(), authorise=_hce_host(profile))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.APPROVED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))
    assert result.final_outcome == Outcome.APPROVED, result.reason
    assert result.online["arpc_verified"] is True  # the card's CDOL2 carries 91
    assert "issuer authentication data (91) goes to the card in GENERATE AC 2" in result.steps


def test_hce_card_full_pboc_path_issuer_decline() -> None:
    profile = generate_profile(5)
    result = tap(HceCard(profile), 15000, cfg=_hce_config(), authorise=_hce_host(profile, "05"))
    assert whole(result) == expect(
        Outcome.ONLINE_REQUEST, final=Outcome.DECLINED, tvr=(TVR.EXCEEDS_FLOOR_LIMIT,))


def test_hce_card_aip_says_issuer_authentication() -> None:
    assert is_set(HceCard(generate_profile(5)).profile.applications[0].aip,
                  AIP.ISSUER_AUTHENTICATION_SUPPORTED)


# --- the test card itself -----------------------------------------------------------------------


def test_the_test_card_spec_defaults_are_a_clean_card() -> None:
    spec = CardSpec()
    assert replace(spec, seed=2).aip == spec.aip
    rec = decode(EmvCard(spec).records[(1, 1)])[0]
    assert {t.tag for t in rec.children or ()} >= {0x5A, 0x5F24, 0x8C, 0x8D, 0x8E}
    assert datetime(2026, 3, 16) == TODAY.replace(hour=0, minute=0)


def test_a_script_command_succeeds_on_9000_and_the_warnings_62_and_63_only() -> None:
    """Book 3 10.10: SW1 90, 62, 63 succeed; any other SW1 ends the script."""
    from terminal.kernel.issuer import script_command_succeeded

    succeeded = [sw1 for sw1 in range(0x100) if script_command_succeeded(sw1 << 8 | 0x01)]
    assert succeeded == [0x62, 0x63, 0x90]
