"""What the terminal reports: every TVR and TSI bit the kernel can set (with the test that
sets it), every outcome with a human reason, the redacted JSON record - and that a card
answering garbage, thousands of ways, always ends in a defined outcome, never an exception."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import test_kernel_full_path
import test_kernel_quick_path
import test_trace_replay
from test_terminal_doubles import (
    TODAY,
    CardBehaviour,
    FixedRandom,
    Host,
    MutatingCard,
    ReplayCard,
    emv_card,
    load_trace,
    loopback,
)

from emvtap.bits import TSI, TVR, Bit
from emvtap.perso import generate_profile
from hce_card.card import HceCard
from terminal.config import TerminalConfig
from terminal.outcome import Outcome, TransactionResult
from terminal.pay import perform_transaction

# --- every TVR / TSI bit the kernel can set has a test --------------------------------------

#: TVR bit → the test (module.function) that makes the kernel set it.
TVR_BIT_TESTS: dict[Bit, str] = {
    TVR.ODA_NOT_PERFORMED: "full_path.test_oda_not_performed_when_no_method_is_shared",
    TVR.SDA_FAILED: "full_path.test_sda_failed",
    TVR.ICC_DATA_MISSING: "full_path.test_missing_mandatory_full_path_data",
    TVR.CARD_ON_EXCEPTION_FILE: "full_path.test_card_on_the_terminal_exception_file",
    TVR.DDA_FAILED: "full_path.test_dda_failed",
    TVR.CDA_FAILED: "full_path.test_cda_failed_on_a_tc_declines",
    TVR.SDA_SELECTED: "full_path.test_sda_verified_puts_the_dac_in_the_cdol",
    TVR.VERSIONS_DIFFER: "full_path.test_application_versions_differ",
    TVR.EXPIRED_APPLICATION: "full_path.test_expired_application",
    TVR.NOT_YET_EFFECTIVE: "full_path.test_application_not_yet_effective",
    TVR.SERVICE_NOT_ALLOWED:
        "full_path.test_auc_without_international_goods_or_services_is_service_not_allowed",
    TVR.NEW_CARD: "full_path.test_new_card_when_the_last_online_atc_register_is_zero",
    TVR.CARDHOLDER_VERIFICATION_FAILED: "full_path.test_fail_cvm_processing_rule",
    TVR.UNRECOGNISED_CVM: "full_path.test_unrecognised_cvm_then_the_next_rule",
    TVR.PIN_PAD_NOT_PRESENT: "full_path.test_no_pin_pad_fails_the_online_pin_rule",
    TVR.PIN_NOT_ENTERED: "full_path.test_pin_bypassed_fails_the_rule_and_the_next_one_applies",
    TVR.ONLINE_PIN_ENTERED: "full_path.test_online_pin_rule_with_the_pin_entered",
    TVR.EXCEEDS_FLOOR_LIMIT: "full_path.test_floor_limit_exceeded_goes_online",
    TVR.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED:
        "full_path.test_velocity_lower_consecutive_offline_limit_exceeded",
    TVR.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED:
        "full_path.test_velocity_upper_consecutive_offline_limit_exceeded",
    TVR.RANDOMLY_SELECTED_ONLINE: "full_path.test_random_transaction_selection",
    TVR.MERCHANT_FORCED_ONLINE: "full_path.test_merchant_forced_online",
    TVR.DEFAULT_TDOL_USED: "full_path.test_tc_hash_value_with_the_default_tdol",
    TVR.ISSUER_AUTHENTICATION_FAILED: "full_path.test_issuer_authentication_failed",
    TVR.SCRIPT_FAILED_BEFORE_FINAL_GENAC:
        "full_path.test_issuer_script_failure_before_the_final_generate_ac",
    TVR.SCRIPT_FAILED_AFTER_FINAL_GENAC:
        "full_path.test_issuer_script_failure_after_the_final_generate_ac",
}

#: Bits this kernel never sets, and why.
TVR_BITS_NOT_SET: dict[Bit, str] = {
    TVR.PIN_TRY_LIMIT_EXCEEDED: "offline PIN (GET DATA 9F17 / VERIFY) is not part of this "
                                "contactless reader: the offline PIN CVMs are unsupported",
}

TSI_BIT_TESTS: dict[Bit, str] = {
    TSI.ODA_PERFORMED: "quick_path.test_fdda_failure_with_ctq_go_online_goes_online",
    TSI.CARDHOLDER_VERIFICATION_PERFORMED:
        "quick_path.test_cvm_limit_online_pin_entered_goes_in_de_52",
    TSI.CARD_RISK_MANAGEMENT_PERFORMED:
        "full_path.test_card_declines_a_tc_request_with_an_aac",
    TSI.ISSUER_AUTHENTICATION_PERFORMED:
        "full_path.test_issuer_authentication_by_external_authenticate",
    TSI.TERMINAL_RISK_MANAGEMENT_PERFORMED: "full_path.test_floor_limit_exceeded_goes_online",
    TSI.SCRIPT_PROCESSING_PERFORMED:
        "full_path.test_issuer_script_71_before_the_final_generate_ac",
}

_MODULES = {"full_path": test_kernel_full_path, "quick_path": test_kernel_quick_path}


def _bits(table: type) -> dict[Bit, str]:
    return {b: attr for attr, b in vars(table).items() if isinstance(b, Bit)}


def _asserts_bit(name: str, attribute: str) -> bool:
    """The named test reads ``TVR.<attribute>`` / ``TSI.<attribute>``, or compares the whole
    result (``whole()``: every TVR and TSI bit) and names the bit among those it expects."""
    module, function = name.split(".")
    code = getattr(_MODULES[module], function).__code__
    if attribute in code.co_names:
        return True
    # expect()'s default TSI of the full path spells the four procedure bits in FULL_TSI
    full_tsi = getattr(_MODULES[module], "FULL_TSI", ())
    return "whole" in code.co_names and any(
        b.name == getattr(TSI, attribute, None).name for b in full_tsi
        if getattr(TSI, attribute, None) is not None)


def test_every_tvr_bit_has_a_test_or_a_reason_why_the_kernel_never_sets_it() -> None:
    bits = _bits(TVR)
    assert set(TVR_BIT_TESTS) | set(TVR_BITS_NOT_SET) == set(bits)
    assert not set(TVR_BIT_TESTS) & set(TVR_BITS_NOT_SET)
    for bit, name in TVR_BIT_TESTS.items():
        assert _asserts_bit(name, bits[bit]), f"{name} does not check TVR.{bits[bit]}"


def test_every_tsi_bit_has_a_test() -> None:
    bits = _bits(TSI)
    assert set(TSI_BIT_TESTS) == set(bits)
    for bit, name in TSI_BIT_TESTS.items():
        assert _asserts_bit(name, bits[bit]), f"{name} does not check TSI.{bits[bit]}"


# --- every outcome, with its reason ---------------------------------------------------------

def _hce(amount: int, cfg: TerminalConfig | None = None, **kw: Any) -> TransactionResult:
    kw.setdefault("now", TODAY)
    kw.setdefault("switch", "none")
    transport = kw.pop("transport", None) or loopback(HceCard(generate_profile(3)))
    return perform_transaction(transport, cfg or TerminalConfig.default(), amount, **kw)


def _offline_only() -> TerminalConfig:
    return test_kernel_quick_path.config(ttq="6E00C080")


def _removed() -> TransactionResult:
    from test_terminal_doubles import RemovingTransport

    return _hce(1234, transport=RemovingTransport(HceCard(generate_profile(3)), after=2))


def _no_application() -> TransactionResult:
    data = TerminalConfig.defaults_dict()
    data["combinations"] = [{"aid": "A0000000031010", "kernel_id": 3}]
    return _hce(1234, TerminalConfig.from_dict(data))


#: Book A, 6.2: each outcome the kernel or Entry Point gives, a tap that reaches it, and the
#: whole reason it reports.
OUTCOME_SCENARIOS: dict[Outcome, tuple[Callable[[], TransactionResult], str]] = {
    Outcome.APPROVED: (lambda: _hce(1234), "offline approval (TC) with fDDA verified"),
    Outcome.DECLINED: (lambda: _hce(15000, _offline_only()), "card declined offline (AAC)"),
    Outcome.ONLINE_REQUEST: (lambda: _hce(15000, authorise=Host("00")),
                             "card requested online authorisation (ARQC); issuer approved (00)"),
    Outcome.TRY_ANOTHER_INTERFACE: (lambda: _hce(200000),
                                    "amount 200000 is not allowed contactless for any "
                                    "application (amount ≥ reader contactless transaction "
                                    "limit 100000)"),
    Outcome.END_APPLICATION: (_no_application,
                              "no application on the card matches a supported AID/kernel"),
    Outcome.TRY_AGAIN: (_removed, "card removed from the field: present card again (simulated: "
                                  "the card left the field)"),
}


def test_every_outcome_has_a_scenario() -> None:
    assert set(OUTCOME_SCENARIOS) == set(Outcome) - {Outcome.SELECT_NEXT}  # internal to EP


@pytest.mark.parametrize("outcome", sorted(OUTCOME_SCENARIOS, key=str))
def test_each_outcome_with_its_reason(outcome: Outcome) -> None:
    scenario, reason = OUTCOME_SCENARIOS[outcome]
    result = scenario()
    final = Outcome.APPROVED if outcome is Outcome.ONLINE_REQUEST else outcome  # issuer: 00
    assert (result.outcome, result.final_outcome, result.reason) == (outcome, final, reason)


# --- the JSON record ------------------------------------------------------------------------------


def _hce_tap(clear_pan: bool = False) -> TransactionResult:
    return perform_transaction(loopback(HceCard(generate_profile(3))), TerminalConfig.default(),
                               15000, authorise=Host("00"), clear_pan=clear_pan, now=TODAY)


def test_json_record_masks_the_pan_everywhere_by_default() -> None:
    result = _hce_tap()
    pan = generate_profile(3).pan
    text = json.dumps(result.to_json())
    assert pan not in text
    assert result.to_json()["pan"] == pan[:6] + "******" + pan[-4:]
    record = result.to_json()
    for key in ("outcome", "final_outcome", "reason", "aid", "kernel", "tvr", "tsi", "cvm",
                "cvm_results", "oda", "cryptogram", "online", "apdus", "steps"):
        assert key in record
    assert record["online"]["response_code"] == "00"
    assert all({"c", "r", "sw", "ms"} <= set(a) for a in record["apdus"])


def test_json_record_shows_the_pan_when_asked() -> None:
    result = _hce_tap(clear_pan=True)
    assert generate_profile(3).pan in json.dumps(result.to_json())


def test_tvr_and_tsi_bits_are_named_in_the_record() -> None:
    record = _hce_tap().to_json()
    assert record["tvr_bits"] == ["offline data authentication was not performed"]
    assert record["tsi_bits"] == ["card risk management was performed"]


# --- hostile cards: thousands of mutated answers, always an outcome -------------------------------

CASES = 2000


def _mutations(rng: random.Random) -> Callable[[bytes], bytes]:
    kind = rng.randrange(8)

    def mutate(response: bytes) -> bytes:
        data, sw = response[:-2], response[-2:]
        if kind == 0 and data:  # truncate
            return data[:rng.randrange(len(data))] + sw
        if kind == 1 and data:  # flip one byte
            i = rng.randrange(len(data))
            return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:] + sw
        if kind == 2:  # another status word
            return data + bytes([rng.choice([0x61, 0x62, 0x63, 0x67, 0x69, 0x6A, 0x6F, 0x90]),
                                 rng.randrange(256)])
        if kind == 3:  # garbage appended
            return data + rng.randbytes(rng.randrange(1, 20)) + sw
        if kind == 4:  # empty answer
            return sw
        if kind == 5 and data:  # a length byte made wrong
            i = rng.randrange(len(data))
            return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:] + sw
        if kind == 6:  # random data
            return rng.randbytes(rng.randrange(0, 64)) + sw
        return data[: len(data) // 2] + data + sw  # duplicated part

    return mutate


def _card_factories() -> list[Callable[[], tuple[Any, TerminalConfig, dict[str, Any]]]]:
    hce_profile = generate_profile(3)

    def quick() -> tuple[Any, TerminalConfig, dict[str, Any]]:
        return HceCard(hce_profile), TerminalConfig.default(), {"now": TODAY}

    def full() -> tuple[Any, TerminalConfig, dict[str, Any]]:
        card = emv_card(behaviour=CardBehaviour())
        return card, test_kernel_full_path.config(), {"now": TODAY, "rng": FixedRandom(99)}

    def mastercard() -> tuple[Any, TerminalConfig, dict[str, Any]]:
        card = ReplayCard(load_trace(test_trace_replay.MASTERCARD_CDA),
                          gaps=test_trace_replay.MC_GAPS, lenient_ins=frozenset({0xAE}))
        return card, test_trace_replay._mc_config(), {"now": test_trace_replay.MC_DATE,
                                                       "unpredictable_number":
                                                       test_trace_replay.MC_UN}

    def visa() -> tuple[Any, TerminalConfig, dict[str, Any]]:
        card = ReplayCard(load_trace(test_trace_replay.APPLE_PAY_VISA),
                          lenient_ins=frozenset({0xA8}))
        return card, test_trace_replay._apple_config(), {
            "now": test_trace_replay.APPLE_DATE,
            "unpredictable_number": test_trace_replay.APPLE_UN}

    return [quick, full, mastercard, visa]


def test_mutated_card_answers_always_end_in_a_defined_outcome_with_a_reason() -> None:
    """Property over 2000 seeded cases: one response of a good tap (chosen at random among
    the card's answers) is truncated, bit-flipped, given another status word, padded with
    garbage, emptied or replaced - the tap ends in an Outcome with a reason, never with an
    exception and never through the last-resort "internal error" path."""
    rng = random.Random(20240917)
    factories = _card_factories()
    outcomes: dict[Outcome, int] = {}
    for case in range(CASES):
        card, cfg, kw = factories[case % len(factories)]()
        target = rng.randrange(12)
        mutate = _mutations(rng)
        counter = {"n": 0}

        def hostile(command: bytes, response: bytes, *, _m: Any = mutate,
                    _t: int = target, _c: dict[str, int] = counter) -> bytes:
            _c["n"] += 1
            return _m(response) if _c["n"] - 1 == _t else response

        result = perform_transaction(loopback(MutatingCard(card, hostile)), cfg, 15000,
                                     authorise=Host("00"), **kw)
        assert isinstance(result.outcome, Outcome)
        assert result.reason, f"case {case}: no reason"
        assert not result.reason.startswith("internal error"), f"case {case}: {result.reason}"
        assert result.final_outcome is not None
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    assert len(outcomes) >= 3  # the mutations reach several different outcomes
