"""Replays of real recorded taps through the terminal (emv-utils style: an emulated card that
answers the recorded APDUs). The terminal is given each recording's own transaction data -
date, unpredictable number, amount, currency - so that, byte for byte, it sends what the
recorded terminal sent, and the card's real signatures verify against the shipped CAPKs:

- Apple Pay Visa (proxmark3 sniff): Kernel 3 qVSDC quick path, ARQC with fDDA under CAPK
  A000000003/08 (ODA for online authorisations);
- Mastercard PayPass test card: EMV full path, CDA on GENERATE AC under test CAPK
  A000000004/EF (test mode only);
- UnionPay PBOC test card (contact): the contact PSE directory, the full path with GET DATA
  velocity, DDA by INTERNAL AUTHENTICATE under test CAPK A000000333/09, GENERATE AC 1
  (ARQC), EXTERNAL AUTHENTICATE (which this card refused: 6700) and GENERATE AC 2.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from test_terminal_doubles import Host, ReplayCard, load_trace, loopback, replay_config

from emvtap.bits import TSI, TVR, CryptogramType, is_set
from terminal.outcome import Cvm, Outcome
from terminal.pay import perform_transaction

APPLE_PAY_VISA = "01_applepay_visa_qvsdc_fdda_pm3sniff.json"
MASTERCARD_CDA = "04_mastercard_paypass_testcard_cda_genac.json"
UNIONPAY_PBOC = "05_unionpay_pboc_testcard_contact_full.json"


def _combination(aid: str, kernel: int, **limits: Any) -> dict[str, Any]:
    return {"aid": aid, "kernel_id": kernel, "partial": True, "label": f"kernel {kernel}",
            "transaction_limit": 1_000_000, "cvm_required_limit": 1_000_000,
            "floor_limit": 1_000_000, "zero_amount_allowed": False, "status_check": False,
            **limits}


# --- Apple Pay, Visa qVSDC with fDDA --------------------------------------------------------

APPLE_DATE = datetime(2021, 10, 14, 12, 0)
APPLE_UN = bytes.fromhex("0EB0F616")


def _apple_config(production: bool = False) -> Any:
    """The recorded reader: GBP, TTQ 33 80 40 00 (qVSDC, contact, signature, ODA for online;
    online cryptogram required since 1.00 is above its floor limit; CDCVM), no merchant name."""
    return replay_config(
        terminal_country_code="0826", transaction_currency_code="0826",
        merchant_name_location="", production=production,
        combinations=[_combination("A0000000031010", 3, ttq="33004000", floor_limit=0)])


def _apple_tap(card: ReplayCard, **kw: Any) -> Any:
    kw.setdefault("now", APPLE_DATE)
    kw.setdefault("unpredictable_number", APPLE_UN)
    config = kw.pop("config", None) or _apple_config()
    return perform_transaction(loopback(card), config, 100, **kw)


def test_apple_pay_visa_kernel_3_replays_byte_for_byte_and_fdda_verifies_for_online() -> None:
    """C-3 quick path with "ODA for online authorisations": the phone answers GPO with an
    ARQC and an fDDA signature; the reader verifies it under CAPK A000000003/08 and goes
    online with TVR clean and TSI "ODA performed"."""
    card = ReplayCard(load_trace(APPLE_PAY_VISA))
    host = Host("00")
    result = _apple_tap(card, authorise=host)
    assert card.unexpected == []
    assert card.position == len(card.exchanges)  # every recorded command, in order
    assert result.kernel_id == 3 and result.path == "qVSDC quick path"
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.oda_method == "fDDA" and result.oda_result == "ok"
    assert "fDDA verified" in result.reason
    assert result.tvr == bytes(5)
    assert is_set(result.tsi, TSI.ODA_PERFORMED)
    assert result.final_outcome == Outcome.APPROVED
    de55 = host.de55()
    assert de55[0x9F26].hex().upper() == "C21624CB9CD4F92D"
    assert de55[0x9F37] == APPLE_UN and de55[0x9F02].hex() == "000000000100"
    assert de55[0x9F66].hex().upper() == "33804000"  # the TTQ the card saw
    assert result.cvm == Cvm.NO_CVM


def test_apple_pay_fdda_with_another_unpredictable_number_fails_and_still_goes_online() -> None:
    """The recorded signature covers UN 0EB0F616: with any other UN fDDA must fail (TVR
    "DDA failed"); for an ARQC the issuer sees that in the TVR."""
    card = ReplayCard(load_trace(APPLE_PAY_VISA), lenient_ins=frozenset({0xA8}))
    result = _apple_tap(card, unpredictable_number=bytes.fromhex("01020304"), switch="none")
    assert card.unexpected == [] and len(card.data_differences) == 1
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert is_set(result.tvr, TVR.DDA_FAILED)
    assert result.oda_result == "failed: fDDA: hash mismatch"
    assert "fDDA failed (fDDA: hash mismatch)" in result.reason
    assert result.final_outcome == Outcome.DECLINED  # no switch: unable to go online


def test_apple_pay_issuer_certificate_expired_after_december_2023() -> None:
    card = ReplayCard(load_trace(APPLE_PAY_VISA), lenient_ins=frozenset({0xA8}))
    result = _apple_tap(card, now=datetime(2024, 1, 1), switch="none")
    assert is_set(result.tvr, TVR.DDA_FAILED)
    assert result.oda_result == "failed: issuer certificate: certificate expired (MMYY 1223)"


def test_apple_pay_verifies_in_production_mode_with_the_live_visa_capk() -> None:
    card = ReplayCard(load_trace(APPLE_PAY_VISA))
    result = _apple_tap(card, config=_apple_config(production=True), switch="none")
    assert result.oda_result == "ok"


# --- Mastercard PayPass test card, CDA -------------------------------------------------------

MC_DATE = datetime(2012, 3, 15, 9, 0)
MC_UN = bytes.fromhex("000EEC85")


def _mc_config(production: bool = False) -> Any:
    """The recorded terminal: AUD, 9F09 0002, terminal type 22, signature and CDA; the
    100.01 purchase is under its floor limit and above its CVM limit."""
    return replay_config(
        terminal_country_code="0036", transaction_currency_code="0036", production=production,
        risk_management={"random_selection": {}, "exception_file": []},
        combinations=[_combination("A0000000041010", 2, application_version="0002",
                                   floor_limit=20000, cvm_required_limit=10000)])


#: The recording lacks two records its AFL (08010100 10010101 18010200 20010200) names: SFI 1
#: record 1 and SFI 3 record 2. Neither is in the static data for ODA (their AFL entries count
#: 0 ODA records), so the replay serves them as empty 70 templates where the terminal reads
#: them; every other exchange is the recorded one.
MC_GAPS = ((2, "00B2010C00", "70009000"), (4, "00B2021C00", "70009000"))


def test_mastercard_full_path_replays_byte_for_byte_and_cda_verifies_on_generate_ac() -> None:
    """Book 3 full path on a card without PPSE (the AID list is used): READ RECORD, terminal
    action analysis asks for a TC with CDA (P1 50), and the CDA signature verifies under test
    CAPK A000000004/EF - including the transaction data hash over the CDOL1 data the
    terminal built (CVM Results 5E0300: signature, the first rule of the card's CVM list)."""
    card = ReplayCard(load_trace(MASTERCARD_CDA), gaps=MC_GAPS)
    result = perform_transaction(loopback(card), _mc_config(), 10001, now=MC_DATE,
                                 unpredictable_number=MC_UN, switch="none")
    assert card.unexpected == [], card.unexpected
    assert card.not_found == [b"2PAY.SYS.DDF01"]
    assert card.position == len(card.exchanges)
    assert result.path == "EMV full path" and result.kernel_id == 2
    assert result.outcome == Outcome.APPROVED
    assert result.reason == "offline approval (TC in GENERATE AC 1) with CDA verified"
    assert result.oda_method == "CDA" and result.oda_result == "ok"
    assert result.cryptogram_type is CryptogramType.TC and result.cryptogram == "D58B731AF5885C06"
    assert result.cvm == Cvm.SIGNATURE and result.cvm_results.hex().upper() == "5E0300"
    assert result.tvr == bytes(5)
    assert result.tsi.hex().upper() == "E800"  # ODA, CV, card and terminal risk management


def test_mastercard_test_capk_is_refused_in_production_mode() -> None:
    """In production mode test CAPK EF is refused: TVR "CDA failed", the Terminal Action
    Code - Online (DC4004F800 has the CDA failed bit) sends the transaction online, and
    GENERATE AC 1 asks for an ARQC without CDA (P1 80). The recording has no answer to
    that command, so the replayed card ends the tap there (6D00 → END APPLICATION)."""
    card = ReplayCard(load_trace(MASTERCARD_CDA), gaps=MC_GAPS)
    result = perform_transaction(loopback(card), _mc_config(production=True), 10001,
                                 now=MC_DATE, unpredictable_number=MC_UN, switch="none")
    assert result.tvr.hex().upper() == "0400000000"
    assert result.oda_result == ("failed: CAPK A000000004/EF is a test key; the terminal is in "
                                 "production mode")
    assert "terminal action analysis: go online (CDA failed)" in result.steps
    assert card.received[-1].hex().upper().startswith("80AE8000")
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == "GENERATE AC 1 answered 6D00"


def test_mastercard_cda_with_another_unpredictable_number_fails_and_declines() -> None:
    card = ReplayCard(load_trace(MASTERCARD_CDA), lenient_ins=frozenset({0xAE}), gaps=MC_GAPS)
    result = perform_transaction(loopback(card), _mc_config(), 10001, now=MC_DATE,
                                 unpredictable_number=bytes.fromhex("11223344"), switch="none")
    assert is_set(result.tvr, TVR.CDA_FAILED)
    assert result.outcome == Outcome.DECLINED
    assert result.reason.startswith("CDA failed on GENERATE AC 1: CDA: ")


# --- UnionPay PBOC test card, contact PSE and full path ----------------------------------------

UP_DATE = datetime(2015, 3, 16, 16, 1, 36)
UP_UN = bytes.fromhex("7863AFC6")  # the INTERNAL AUTHENTICATE of the recording used this one


def _unionpay_config(use_pse: bool) -> Any:
    combos = [_combination(aid, 7, ttq="6600C080", application_version="0020",
                           floor_limit=5000, cvm_required_limit=5000)
              for aid in ("A000000333010101", "A000000333010102")]
    return replay_config(terminal_country_code="0036", transaction_currency_code="0036",
                         merchant_name_location="", use_pse=use_pse, combinations=combos,
                         risk_management={"random_selection": {}, "exception_file": []})


def _unionpay_host() -> Host:
    # The recording's host data is not in the trace: send an ARPC-shaped 91 (ARPC ‖ ARC 00).
    return Host("00", icc=lambda values: bytes.fromhex("910A1122334455667788") + b"00")


def _unionpay_tap(use_pse: bool) -> tuple[ReplayCard, Host, Any]:
    card = ReplayCard(load_trace(UNIONPAY_PBOC), strict=False,
                      lenient_ins=frozenset({0x88, 0xAE, 0x82}))
    host = _unionpay_host()
    result = perform_transaction(loopback(card), _unionpay_config(use_pse), 6580, now=UP_DATE,
                                 unpredictable_number=UP_UN, authorise=host)
    return card, host, result


def test_unionpay_contact_pse_directory_gives_the_candidates_by_priority() -> None:
    """Book 1, 12.3.2: SELECT 1PAY.SYS.DDF01, READ RECORD of SFI 1 until 6A83; the credit
    application (priority 1) is selected first."""
    card, _, result = _unionpay_tap(use_pse=True)
    sent = [c.hex().upper() for c in card.received[:6]]
    assert sent[1:6] == ["00A404000E315041592E5359532E444446303100", "00B2010C00",
                         "00B2020C00", "00B2030C00", "00B2040C00"]
    assert result.aid == "A000000333010102" and result.label == "UICC CREDIT"


def test_unionpay_full_path_dda_velocity_issuer_authentication_and_second_generate_ac() -> None:
    """C-7 full PBOC path on the recorded card: GET DATA 9F36/9F13 for velocity checking
    (5 offline transactions, limits 127/255), DDA with INTERNAL AUTHENTICATE under test CAPK
    A000000333/09, signature (CVM list 5E03), ARQC, the host approves with a 91 that the
    card refuses (EXTERNAL AUTHENTICATE 6700 in the recording: TVR "issuer authentication
    failed"), and GENERATE AC 2 returns the recorded TC."""
    card, host, result = _unionpay_tap(use_pse=False)
    assert card.unexpected == []
    # The recorded terminal used another UN in GENERATE AC than in INTERNAL AUTHENTICATE;
    # apart from that UN, both GENERATE AC commands - TVR 0000008000 (floor limit) and
    # 0000008040 (+ issuer authentication failed), TSI F800, CVM results - are the recorded
    # ones byte for byte. EXTERNAL AUTHENTICATE carries our host's 91 instead of theirs.
    for ins, recorded, sent in card.data_differences:
        if ins == "AE":
            assert sent.replace(UP_UN.hex().upper(), "3510540E") == recorded
    assert [d[0] for d in card.data_differences] == ["AE", "82", "AE"]
    assert result.path == "EMV full path" and result.kernel_id == 7
    assert result.oda_method == "DDA" and result.oda_result == "ok"
    assert result.cvm_results.hex().upper() == "5E0300"
    assert result.outcome == Outcome.ONLINE_REQUEST
    assert result.final_outcome == Outcome.APPROVED
    assert result.reason.endswith("issuer approved (00); card accepted (TC in GENERATE AC 2)")
    assert is_set(result.tvr, TVR.EXCEEDS_FLOOR_LIMIT)
    assert is_set(result.tvr, TVR.ISSUER_AUTHENTICATION_FAILED)
    assert not is_set(result.tvr, TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED)
    assert result.tsi.hex().upper() == "F800"  # as the recorded terminal's 9B
    assert result.online["arpc_verified"] is False
    de55 = host.de55()
    assert de55[0x9F26].hex().upper() == "B04398D218017BF9"  # the recorded ARQC
    assert de55[0x9F10].hex().upper() == "07000103A0A80201"
    assert result.cryptogram_type is CryptogramType.TC and result.cryptogram == "E5869B494D460AB4"
    names = [a["name"] for a in result.apdus]
    assert names.index("GET DATA 9F36") < names.index("INTERNAL AUTHENTICATE")
    assert "EXTERNAL AUTHENTICATE" in names
