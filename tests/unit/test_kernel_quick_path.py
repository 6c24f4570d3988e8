"""Kernel 7 quick path (EMV Contactless Book C-7, qPBOC; Book C-3 where Kernel 3 shares it)
against the HCE card on the loopback link: the card decides in GPO; the reader verifies fDDA,
applies the CTQ, asks for the CVM, goes online - and ends every tap, good or hostile, in a
defined outcome with its reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import Any

import pytest
from test_terminal_doubles import (
    Host,
    MutatingCard,
    RemovingTransport,
    edit_tlv,
    loopback,
    on_ins,
    set_tag,
)

from emvtap.bits import CID, CTQ, TSI, TTQ, TVR, CryptogramType, is_set
from emvtap.capk import TEST_CA_INDEX
from emvtap.cryptogram import arpc_method_1, script_mac
from emvtap.keys import derive_pboc_session_key
from emvtap.perso import generate_profile
from emvtap.profile import CardProfile
from emvtap.tlv import Tlv, decode
from hce_card.card import HceCard
from terminal.config import TerminalConfig
from terminal.kernel.kernels import KERNEL_PROFILES
from terminal.kernel.quick_path import cryptogram_information
from terminal.outcome import Cvm, Outcome
from terminal.pay import perform_issuer_update, perform_transaction

NOW = datetime(2026, 3, 16, 10, 30)


@cache
def _profile(seed: int = 3, expiry: str = "301231") -> CardProfile:
    return generate_profile(seed, expiry=expiry)


def hce(**kw: Any) -> HceCard:
    profile = kw.pop("profile", None) or _profile()
    return HceCard(profile, **kw)


def with_ctq(ctq: str, profile: CardProfile | None = None) -> CardProfile:
    """A card personalised with ``ctq`` (the CTQ is also in the signed 9F69, so a test
    cannot just rewrite 9F6C in the GPO answer)."""
    profile = profile or _profile()
    app = replace(profile.applications[0], ctq=bytes.fromhex(ctq))
    return replace(profile, applications=(app, *profile.applications[1:]))


def config(ttq: str = "6600C080", **comb: Any) -> TerminalConfig:
    data = TerminalConfig.defaults_dict()
    combination = {"aid": "A000000333010101", "kernel_id": 7, "ttq": ttq,
                   "transaction_limit": 100000, "cvm_required_limit": 30000,
                   "floor_limit": 10000} | comb
    data["combinations"] = [combination]
    return TerminalConfig.from_dict(data | comb.pop("top", {}))


def tap(card: Any, amount: int, cfg: TerminalConfig | None = None, **kw: Any) -> Any:
    kw.setdefault("now", NOW)
    kw.setdefault("switch", "none")
    return perform_transaction(loopback(card), cfg or config(), amount, **kw)


def _flip_last_byte(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 0x01])


def corrupt_sdad(command: bytes, response: bytes) -> bytes:
    """A card whose fDDA signature does not cover what it says: 9F69 (card UN, CTQ) in the
    last record is not the one it signed."""
    if command[1] != 0xB2 or response[-2:] != b"\x90\x00":
        return response
    auth = next((t.value for t in decode(response[:-2])[0].children or () if t.tag == 0x9F69),
                None)
    if auth is None:
        return response
    return edit_tlv(response[:-2], 0x9F69, _flip_last_byte(auth)) + b"\x90\x00"


def chain(*mutations: Any) -> Any:
    def mutate(command: bytes, response: bytes) -> bytes:
        for m in mutations:
            response = m(command, response)
        return response
    return mutate


# --- approvals, declines, online ------------------------------------------------------------


def test_offline_approval_tc_with_fdda_verified() -> None:
    result = tap(hce(), 1234)
    assert result.outcome == Outcome.APPROVED == result.final_outcome
    assert result.reason == "offline approval (TC) with fDDA verified"
    assert result.cryptogram_type is CryptogramType.TC and result.oda_method == "fDDA"
    assert result.tvr == bytes(5)
    assert result.tsi.hex().upper() == "A000"  # ODA performed, card risk management
    assert result.cvm == Cvm.NO_CVM and result.cvm_results.hex().upper() == "1F0002"


def test_floor_limit_exceeded_gets_an_arqc_and_goes_online() -> None:
    """Book B 3.1.1.5: amount above the floor limit → TTQ "online cryptogram required" → the
    card answers an ARQC; the host approves."""
    host = Host("00")
    result = tap(hce(), 15000, authorise=host)
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.reason == "card requested online authorisation (ARQC); issuer approved (00)"
    assert result.final_outcome == Outcome.APPROVED
    de55 = host.de55()
    assert is_set(de55[0x9F66], TTQ.ONLINE_CRYPTOGRAM_REQUIRED)
    assert de55[0x9F27] == bytes([CID.ARQC])
    assert host.requests[-1]["4"] == "000000015000"
    assert is_set(result.tvr, TVR.ODA_NOT_PERFORMED)


def test_issuer_decline_is_the_final_outcome() -> None:
    result = tap(hce(), 15000, authorise=Host("51"))
    assert result.final_outcome == Outcome.DECLINED
    assert result.reason.endswith("; issuer declined (51)")


def test_unable_to_go_online_declines_with_the_reason() -> None:
    result = tap(hce(), 15000, authorise=Host(fail=ConnectionRefusedError("refused")))
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.final_outcome == Outcome.DECLINED
    assert result.reason.endswith("; unable to go online (refused)")
    assert result.online["error"] == "unable to go online: refused"


def test_no_switch_configured_declines() -> None:
    result = tap(hce(), 15000, switch="none")
    assert result.reason.endswith("; unable to go online (no switch configured)")


def test_card_declines_offline_with_an_aac() -> None:
    """An offline-only reader (TTQ byte 1 b4) and an amount the card will not approve
    offline: the card answers AAC in GPO."""
    result = tap(hce(), 15000, config(ttq="6E00C080"))
    assert result.outcome == Outcome.DECLINED
    assert result.reason == "card declined offline (AAC)"
    assert result.cryptogram_type is CryptogramType.AAC


# --- CVM ---------------------------------------------------------------------------------------


def test_cvm_limit_online_pin_entered_goes_in_de_52() -> None:
    """At the CVM required limit the card asks for online PIN (CTQ byte 1 b8): the reader
    collects it, sets TVR "online PIN entered" and sends the enciphered PIN block."""
    host = Host("00")
    result = tap(hce(), 35000, authorise=host, pin_entry=lambda: "1234")
    assert result.cvm == Cvm.ONLINE_PIN and result.cvm_results.hex().upper() == "020000"
    assert is_set(result.tvr, TVR.ONLINE_PIN_ENTERED)
    assert is_set(result.tsi, TSI.CARDHOLDER_VERIFICATION_PERFORMED)
    assert len(host.requests[-1]["52"]) == 8
    assert result.final_outcome == Outcome.APPROVED


def test_online_pin_required_but_not_entered_declines_without_going_online() -> None:
    host = Host("00")
    result = tap(hce(), 35000, authorise=host)
    assert is_set(result.tvr, TVR.PIN_NOT_ENTERED)
    assert result.final_outcome == Outcome.DECLINED
    assert "online PIN required but not entered" in result.reason
    assert host.requests == []


def test_cdcvm_performed_on_the_device_is_the_cvm() -> None:
    """C-3/C-7: the wallet verified the user (CTQ byte 2 b8) and the reader supports CDCVM
    (TTQ byte 3 b7): no further CVM; the offline approval stands."""
    result = tap(hce(cdcvm=lambda: True), 5000, config(cvm_required_limit=3000))
    assert is_set(bytes.fromhex(result.ctq), CTQ.CDCVM_PERFORMED)
    assert result.cvm == Cvm.CDCVM and result.cvm_results.hex().upper() == "010002"
    assert result.outcome == Outcome.APPROVED


def test_cdcvm_is_reported_to_the_host_in_de_48() -> None:
    host = Host("00")
    tap(hce(cdcvm=lambda: True), 35000, authorise=host)
    assert "07011" in host.requests[-1]["48"]  # sub-element 07, length 01: "1" device verified


def test_signature_when_the_reader_has_no_online_pin() -> None:
    result = tap(hce(), 5000, config(ttq="6200C080", cvm_required_limit=3000))
    assert result.cvm == Cvm.SIGNATURE and result.cvm_results.hex().upper() == "1E0000"
    assert result.outcome == Outcome.APPROVED


def test_cvm_required_but_no_cvm_from_the_card_declines() -> None:
    card = MutatingCard(hce(), set_tag(0xA8, 0x9F6C, b"\x00\x00"))
    result = tap(card, 35000)
    assert result.outcome == Outcome.DECLINED
    assert result.reason == ("CVM required but the card asked for no CVM this reader supports "
                             "(CTQ 0000)")
    assert is_set(result.tvr, TVR.CARDHOLDER_VERIFICATION_FAILED)


def test_online_pin_asked_on_an_offline_approval_declines() -> None:
    card = hce(profile=with_ctq("8840"))
    result = tap(card, 1234)
    assert result.outcome == Outcome.DECLINED
    assert result.reason == "the card asks for online PIN on an offline approval (TC)"


# --- CTQ actions on ODA failure and expiry ---------------------------------------------------


def test_fdda_failure_with_ctq_go_online_goes_online() -> None:
    """CTQ byte 1 b6 "go online if ODA fails" (the HCE card's CTQ 2840)."""
    result = tap(MutatingCard(hce(), corrupt_sdad), 1234)
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.reason.startswith(
        "fDDA failed (fDDA: hash mismatch); the card asks to go online; unable to go online")
    assert is_set(result.tvr, TVR.DDA_FAILED) and is_set(result.tsi, TSI.ODA_PERFORMED)


def test_fdda_failure_with_ctq_switch_interface_is_try_another_interface() -> None:
    card = MutatingCard(hce(), chain(corrupt_sdad, set_tag(0xA8, 0x9F6C, bytes.fromhex("1040"))))
    result = tap(card, 1234)
    assert result.outcome == Outcome.TRY_ANOTHER_INTERFACE
    assert result.reason == "fDDA failed (fDDA: hash mismatch); the card asks to switch interface"


def test_fdda_failure_without_ctq_instructions_declines() -> None:
    card = MutatingCard(hce(), chain(corrupt_sdad, set_tag(0xA8, 0x9F6C, bytes.fromhex("0040"))))
    result = tap(card, 1234)
    assert result.outcome == Outcome.DECLINED
    assert result.reason == "fDDA failed: fDDA: hash mismatch"


def test_fdda_failure_on_an_offline_only_reader_cannot_go_online() -> None:
    result = tap(MutatingCard(hce(), corrupt_sdad), 1234, config(ttq="6E00C080"))
    assert result.outcome == Outcome.DECLINED


def _expired_card(ctq: str) -> Any:
    profile = _profile(4, expiry="250101")  # ICC certificate valid to 01/25, app to 1 Jan 25
    return hce(profile=with_ctq(ctq, profile))


def test_expired_application_with_ctq_go_online_if_expired_goes_online() -> None:
    result = tap(_expired_card("2840"), 1234, now=datetime(2025, 1, 15))
    assert result.oda_result == "ok"
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.reason.startswith("application expired; the card asks to go online")
    assert is_set(result.tvr, TVR.EXPIRED_APPLICATION)


def test_expired_application_without_the_ctq_bit_declines() -> None:
    result = tap(_expired_card("2040"), 1234, now=datetime(2025, 1, 15))
    assert result.outcome == Outcome.DECLINED and result.reason == "application expired"


def test_ctq_switch_interface_for_cash() -> None:
    card = MutatingCard(hce(), set_tag(0xA8, 0x9F6C, bytes.fromhex("2440")))
    result = tap(card, 1234, transaction_type=0x01)
    assert result.outcome == Outcome.TRY_ANOTHER_INTERFACE
    assert result.reason == "the card asks to switch interface for cash"


def test_ctq_switch_interface_for_cashback() -> None:
    card = MutatingCard(hce(), set_tag(0xA8, 0x9F6C, bytes.fromhex("2240")))
    result = tap(card, 1234, transaction_type=0x09)
    assert result.outcome == Outcome.TRY_ANOTHER_INTERFACE


# --- ODA with the CAPK list --------------------------------------------------------------------


def _record_tag(tag: int, value: bytes | None) -> Any:
    return on_ins(0xB2, lambda data: edit_tlv(data, tag, value))


@pytest.mark.parametrize(("mutation", "reason"), [
    (_record_tag(0x8F, b"\x77"), "CAPK A000000333/77 is not known to the terminal"),
    (_record_tag(0x9F46, None), "ICC public key certificate (9F46) missing"),
    (_record_tag(0x90, None), "issuer public key certificate (90) missing"),
    (chain(_record_tag(0x5A, bytes.fromhex("6228480000000000")),  # 57 says the same PAN
           on_ins(0xA8, lambda data: data.replace(bytes.fromhex(_profile().pan),
                                                  bytes.fromhex("6228480000000000")))),
     "issuer certificate: issuer identifier 625094FF does not match the PAN"),
    (_record_tag(0x9F47, b"\x01\x00\x01"),
     "ICC certificate: hash mismatch"),
])
def test_fdda_failure_reasons_from_the_card_data(mutation: Any, reason: str) -> None:
    card = MutatingCard(hce(), chain(mutation, set_tag(0xA8, 0x9F6C, bytes.fromhex("0040"))))
    result = tap(card, 1234)
    assert result.outcome == Outcome.DECLINED
    assert result.reason == f"fDDA failed: {reason}"
    assert is_set(result.tvr, TVR.DDA_FAILED)


def test_test_capk_refused_in_production_mode() -> None:
    result = tap(MutatingCard(hce(), set_tag(0xA8, 0x9F6C, bytes.fromhex("0040"))), 1234,
                 config(top={"production": True}))
    assert result.reason == ("fDDA failed: CAPK A000000333/E1 is a test key; the terminal is "
                             "in production mode")


def test_revoked_issuer_certificate_fails_fdda() -> None:
    card = hce()
    records = [decode(r.data)[0] for r in card.profile.applications[0].records]
    cert = next(t.value for r in records for t in r.children or () if t.tag == 0x90)
    serial = _issuer_serial(cert)
    cfg = config(top={"revocation_list": [{"rid": "A000000333", "index": f"{TEST_CA_INDEX:02X}",
                                           "serial": serial.hex()}]})
    result = tap(MutatingCard(card, set_tag(0xA8, 0x9F6C, bytes.fromhex("0040"))), 1234, cfg)
    assert result.reason == (f"fDDA failed: issuer certificate: certificate serial "
                             f"{serial.hex().upper()} is on the CA revocation list of "
                             f"A000000333/{TEST_CA_INDEX:02X}")


def _issuer_serial(cert: bytes) -> bytes:
    from emvtap.capk import CapkStore

    capk = CapkStore.default().require("A000000333", TEST_CA_INDEX)
    return capk.public_key().recover_raw(cert)[8:11]


def test_expired_issuer_certificate_fails_fdda() -> None:
    card = MutatingCard(hce(), set_tag(0xA8, 0x9F6C, bytes.fromhex("0040")))
    result = tap(card, 1234, now=datetime(2031, 1, 1))
    assert result.reason == "fDDA failed: issuer certificate: certificate expired (MMYY 1230)"


# --- malformed, missing, refused: a defined outcome, never an exception ------------------------


@pytest.mark.parametrize(("tag", "name"), [
    (0x9F10, "Issuer Application Data (9F10)"),
    (0x57, "Track 2 Equivalent Data (57)"),
    (0x9F36, "ATC (9F36)"),
])
def test_missing_mandatory_quick_path_data_is_icc_data_missing(tag: int, name: str) -> None:
    result = tap(MutatingCard(hce(), set_tag(0xA8, tag, None)), 1234)
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == f"ICC data missing: {name}"
    assert is_set(result.tvr, TVR.ICC_DATA_MISSING)


def test_gpo_response_that_is_not_tlv_ends_the_application() -> None:
    card = MutatingCard(hce(), on_ins(0xA8, lambda data: data[:-3]))
    result = tap(card, 1234)
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason.startswith("GPO response is not BER-TLV: tag 77 says")


def test_gpo_refused_with_6985_ends_the_application() -> None:
    card = MutatingCard(hce(), lambda c, r: b"\x69\x85" if c[1] == 0xA8 else r)
    result = tap(card, 1234)
    assert result.reason == "card refused GPO: conditions of use not satisfied (6985)"


def test_read_record_error_ends_the_application() -> None:
    card = MutatingCard(hce(), lambda c, r: b"\x6A\x83" if c[1] == 0xB2 and c[2] == 2 else r)
    result = tap(card, 1234)
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == "READ RECORD SFI 2 record 2 answered 6A83"


def test_record_that_is_not_a_70_template_ends_the_application() -> None:
    card = MutatingCard(hce(), on_ins(0xB2, lambda data: b"\x77" + data[1:]))
    result = tap(card, 1234)
    assert result.reason == "record SFI 1/1 is not a 70 template"


def test_undefined_cryptogram_type_ends_the_application() -> None:
    result = tap(MutatingCard(hce(), set_tag(0xA8, 0x9F27, b"\xC0")), 1234)
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == "cryptogram type C0 is not defined"


@pytest.mark.parametrize("after", range(0, 7))
def test_card_removed_mid_tap_is_try_again_simulated_removal_after_n_commands(
        after: int) -> None:
    """Book A 6.4: whichever command finds the card gone (a transport simulating removal
    after ``after`` commands: PPSE, SELECT, GPO, four READ RECORDs), the outcome is TRY
    AGAIN with "present card again"."""
    result = perform_transaction(RemovingTransport(hce(), after), config(), 1234, now=NOW,
                                 switch="none")
    assert result.outcome == Outcome.TRY_AGAIN == result.final_outcome
    assert "present card again" in result.reason


# --- Kernel 3 data that differs -------------------------------------------------------------


def test_kernel_3_takes_the_cryptogram_type_from_the_iad_when_9f27_is_absent() -> None:
    """C-3: without 9F27 the CVR in the IAD (byte 5 b6-b5) gives the cryptogram type;
    Kernel 7 requires 9F27."""
    from terminal.context import TransactionContext
    from terminal.kernel.common import KernelAbort

    ctx = TransactionContext(loopback(None), config(), 100)
    ctx.card[0x9F10] = bytes.fromhex("06010A03A00000")  # CVR byte 2 = A0: b6-b5 = 10 ARQC
    assert cryptogram_information(ctx, KERNEL_PROFILES[3]) == CID.ARQC
    with pytest.raises(KernelAbort, match=r"Cryptogram Information Data \(9F27\)"):
        cryptogram_information(ctx, KERNEL_PROFILES[7])


def test_kernel_3_does_not_take_the_full_path() -> None:
    """A Visa application answering GPO without a cryptogram: C-3 has no full path."""
    data = TerminalConfig.defaults_dict()
    data["combinations"] = [{"aid": "A000000333010101", "kernel_id": 3, "ttq": "4700C000",
                             "transaction_limit": 100000, "cvm_required_limit": 30000,
                             "floor_limit": 10000}]
    card = MutatingCard(hce(), lambda c, r: r.replace(b"\x9F\x2A\x01\x07", b"\x9F\x2A\x01\x03")
                        if c[1] == 0xA4 else r)
    result = tap(card, 1234, TerminalConfig.from_dict(data))
    assert result.kernel_id == 3
    assert result.reason == ("Visa qVSDC: the card answered GPO without a cryptogram (no full "
                             "path in this kernel)")


# --- issuer update: "present card again" -------------------------------------------------------


def _host_with_issuer_update(profile: CardProfile, mac_ok: bool = True) -> Host:
    """A host that answers with a valid ARPC (CVN 01: method 1 with the PBOC session key) and
    one script 72 - APPLICATION UNBLOCK with a MAC under the script session key."""
    keys = profile.applications[0].keys

    def icc(values: dict[int, bytes]) -> bytes:
        atc, arqc = values[0x9F36], values[0x9F26]
        arpc = arpc_method_1(derive_pboc_session_key(keys.ac, atc), arqc, b"00") + b"00"
        header = bytes.fromhex("8418000004")
        mac = script_mac(derive_pboc_session_key(keys.smi, atc), header, atc, arqc, b"")
        if not mac_ok:
            mac = bytes(4)
        template = Tlv.template(0x72, [Tlv.primitive(0x9F18, bytes.fromhex("00000001")),
                                       Tlv.primitive(0x86, header + mac)])
        return Tlv.primitive(0x91, arpc).encode() + template.encode()

    return Host("00", icc=icc)


def test_issuer_update_on_tap_again_delivers_arpc_and_scripts() -> None:
    """C-3/C-7 issuer update: the host sent 91 and a 72 script; card (CTQ byte 2 b7) and
    reader (TTQ byte 3 b8) support it: "present card again", then SELECT, EXTERNAL
    AUTHENTICATE and the script; 9F5B reports the script successful."""
    card = hce()
    transport = loopback(card)
    result = perform_transaction(transport, config(), 15000, now=NOW,
                                 authorise=_host_with_issuer_update(card.profile))
    assert result.final_outcome == Outcome.APPROVED
    assert result.issuer_update["pending"] is True
    assert result.reason.endswith("; issuer update waiting: present card again")
    perform_issuer_update(transport, config(), result, card_timeout=1, now=NOW)
    update = result.issuer_update
    assert update["result"] == "delivered"
    assert update["issuer_authentication"] is True
    assert result.to_json()["online"]["arpc_verified"] is True  # the record says so too
    assert update["script_results"] == "2000000001"
    assert is_set(result.tsi, TSI.SCRIPT_PROCESSING_PERFORMED)
    assert is_set(result.tsi, TSI.ISSUER_AUTHENTICATION_PERFORMED)
    assert not is_set(result.tvr, TVR.SCRIPT_FAILED_AFTER_FINAL_GENAC)


def test_issuer_update_script_with_a_bad_mac_fails_and_sets_tvr_byte_5() -> None:
    card = hce()
    transport = loopback(card)
    result = perform_transaction(transport, config(), 15000, now=NOW,
                                 authorise=_host_with_issuer_update(card.profile, mac_ok=False))
    perform_issuer_update(transport, config(), result, card_timeout=1, now=NOW)
    assert result.issuer_update["script_results"] == "1100000001"  # failed at command 1
    assert is_set(result.tvr, TVR.SCRIPT_FAILED_AFTER_FINAL_GENAC)


def test_issuer_update_when_the_card_is_not_presented_again() -> None:
    card = hce()
    result = perform_transaction(loopback(card), config(), 15000, now=NOW,
                                 authorise=_host_with_issuer_update(card.profile))
    perform_issuer_update(loopback(None), config(), result, card_timeout=0)
    assert result.issuer_update["result"].startswith("card not presented again")
    assert result.final_outcome == Outcome.APPROVED


def test_no_issuer_update_when_the_reader_does_not_support_it() -> None:
    card = hce()
    result = perform_transaction(loopback(card), config(ttq="66004080"), 15000, now=NOW,
                                 authorise=_host_with_issuer_update(card.profile))
    assert result.issuer_update["pending"] is False
    assert result.issuer_update["result"] == "reader does not support issuer update"


# --- fDDA for online authorisations, and the full path offer -------------------------------


def _sign_arqc_in_the_last_record(card: HceCard) -> Any:
    """A card that signs its ARQC for fDDA too (C-3 "ODA for online authorisations"): the
    SDAD travels in the record with 9F69 (Book C-7 allows 9F4B in a record)."""
    from emvtap.dol import split_dol_data
    from emvtap.oda import fdda_terminal_data, sign_dynamic_data

    app = card.profile.applications[0]
    seen: dict[str, bytes] = {}

    def mutate(command: bytes, response: bytes) -> bytes:
        if command[1] == 0xA8:
            seen["pdol"] = decode(command[5:-1])[0].value
            seen["atc"] = next(t.value for t in decode(response[:-2])[0].children or ()
                               if t.tag == 0x9F36)
        if command[1] != 0xB2 or b"\x9F\x69" not in response:
            return response
        record = decode(response[:-2])[0]
        auth = next(t.value for t in record.children or () if t.tag == 0x9F69)
        values = split_dol_data(app.pdol, seen["pdol"]) | {0x9F69: auth}
        assert app.icc_rsa is not None
        sdad = sign_dynamic_data(app.icc_rsa, b"\x02" + seen["atc"], fdda_terminal_data(values))
        kids = [*(record.children or ()), Tlv.primitive(0x9F4B, sdad)]
        return Tlv.template(0x70, kids).encode() + b"\x90\x00"

    return MutatingCard(card, mutate)


def test_kernel_7_verifies_fdda_on_an_arqc_when_the_reader_supports_oda_for_online() -> None:
    card = _sign_arqc_in_the_last_record(hce())
    result = tap(card, 15000, config(ttq="6700C080"), authorise=Host("00"))
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.oda_method == "fDDA" and result.oda_result == "ok"
    assert "fDDA verified (ODA for online authorisations)" in result.reason
    assert not is_set(result.tvr, TVR.ODA_NOT_PERFORMED)


def test_without_oda_for_online_the_arqc_signature_is_not_checked() -> None:
    card = _sign_arqc_in_the_last_record(hce())
    result = tap(card, 15000, config(ttq="6600C080"))
    assert result.oda_result == "not performed (online authorisation)"
    assert is_set(result.tvr, TVR.ODA_NOT_PERFORMED)


def test_card_asking_for_the_full_path_on_a_reader_that_does_not_offer_it() -> None:
    """C-7: a GPO answer without a cryptogram is the full PBOC path, which a reader takes
    only with TTQ byte 1 b7; this reader's TTQ offers neither qPBOC nor full PBOC."""
    result = tap(hce(), 1234, config(ttq="0600C080"))
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == ("UnionPay QuickPass: the card asks for the full path but the "
                             "reader's TTQ does not offer it (contactless full PBOC / VSDC "
                             "supported)")
