"""Entry Point (EMV Contactless Book B): pre-processing per AID/kernel combination, the
candidate list from the PPSE, final selection, and the outcomes Entry Point itself gives."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from test_terminal_doubles import RemovingTransport, SelectCard, emv_card, loopback

from emvtap.perso import PPSE_NAME
from emvtap.tlv import Tlv, decode
from terminal.config import ConfigError, TerminalConfig
from terminal.entry_point import (
    EntryPointError,
    PreProcessingIndicators,
    build_candidate_list,
    pre_processing,
    requested_kernel_id,
)
from terminal.outcome import Outcome
from terminal.pay import perform_transaction

UNIONPAY_DEBIT = bytes.fromhex("A000000333010101")
UNIONPAY_CREDIT = bytes.fromhex("A000000333010102")
VISA = bytes.fromhex("A0000000031010")


def _config(*combinations: dict[str, Any], **top: Any) -> TerminalConfig:
    data = TerminalConfig.defaults_dict() | top
    if combinations:
        data["combinations"] = list(combinations)
    return TerminalConfig.from_dict(data)


def _comb(aid: str = "A000000333010101", kernel: int = 7, **kw: Any) -> dict[str, Any]:
    return {"aid": aid, "kernel_id": kernel, "ttq": "6600C080", "transaction_limit": 100000,
            "cvm_required_limit": 30000, "floor_limit": 10000} | kw


# --- pre-processing (Book B, 3.1.1) --------------------------------------------------------


def indicators(ind: PreProcessingIndicators) -> dict[str, Any]:
    """Every Entry Point Pre-Processing Indicator of one combination (Book B Table 3-3), the
    TTQ as hex."""
    return {k: v.hex().upper() if isinstance(v, bytes) else v
            for k, v in dataclasses.asdict(ind).items() if k != "combination"}


def expected(ttq: str = "6600C080", why_not_allowed: str = "", **flags: bool) -> dict[str, Any]:
    """The indicators with every flag False but those named."""
    names = ("contactless_application_not_allowed", "status_check_requested", "zero_amount",
             "cvm_required_limit_exceeded", "floor_limit_exceeded")
    assert set(flags) <= set(names)
    return {n: flags.get(n, False) for n in names} | {"ttq": ttq,
                                                      "why_not_allowed": why_not_allowed}


def test_amount_at_the_contactless_transaction_limit_is_try_another_interface() -> None:
    """3.1.1.4: amount ≥ Reader Contactless Transaction Limit → not allowed; with no allowed
    combination at all, Outcome TRY ANOTHER INTERFACE (3.1.1.9)."""
    config = _config(_comb(transaction_limit=5000))
    assert indicators(pre_processing(config, 4999)[0]) == expected()
    with pytest.raises(EntryPointError) as info:
        pre_processing(config, 5000)
    assert (info.value.outcome, info.value.reason) == (
        "TRY ANOTHER INTERFACE", "amount 5000 is not allowed contactless for any application "
        "(amount ≥ reader contactless transaction limit 5000)")


def test_cvm_required_limit_sets_ttq_byte_2_b7() -> None:
    """3.1.1.7: amount ≥ Reader CVM Required Limit → CVM Required, TTQ byte 2 b7."""
    config = _config(_comb(cvm_required_limit=3000))
    assert indicators(pre_processing(config, 2999)[0]) == expected()
    assert indicators(pre_processing(config, 3000)[0]) == expected(
        "6640C080", cvm_required_limit_exceeded=True)


def test_floor_limit_exceeded_sets_online_cryptogram_required() -> None:
    """3.1.1.5: amount > Reader Contactless Floor Limit → TTQ byte 2 b8."""
    config = _config(_comb(floor_limit=1000))
    assert indicators(pre_processing(config, 1000)[0]) == expected()
    assert indicators(pre_processing(config, 1001)[0]) == expected(
        "6680C080", floor_limit_exceeded=True)


def test_terminal_floor_limit_9f1b_applies_when_the_combination_has_none() -> None:
    """3.1.1.6: without a Reader Contactless Floor Limit, the Terminal Floor Limit."""
    config = _config(_comb(floor_limit=None), terminal_floor_limit=500)
    assert indicators(pre_processing(config, 501)[0]) == expected(
        "6680C080", floor_limit_exceeded=True)
    assert indicators(pre_processing(config, 500)[0]) == expected()


def test_ttq_byte_2_b8_b7_from_the_configuration_are_reset_each_transaction() -> None:
    """Book B / C-3: TTQ byte 2 b8-b7 are transient; a configured TTQ with them set does not
    leak into a transaction below the limits."""
    config = _config(_comb(ttq="66C0C080"))
    assert indicators(pre_processing(config, 100)[0]) == expected("6600C080")


def test_zero_amount_not_allowed_makes_the_combination_not_allowed() -> None:
    with pytest.raises(EntryPointError) as info:
        pre_processing(_config(_comb(zero_amount_allowed=False)), 0)
    assert (info.value.outcome, info.value.reason) == (
        "TRY ANOTHER INTERFACE",
        "amount 0 is not allowed contactless for any application (zero amount not allowed)")


def test_zero_amount_allowed_asks_for_an_online_cryptogram() -> None:
    ind = pre_processing(_config(_comb(zero_amount_allowed=True)), 0)[0]
    assert indicators(ind) == expected("6680C080", zero_amount=True)


def test_zero_amount_on_an_offline_only_reader_is_not_allowed() -> None:
    """3.1.1.8: zero amount and TTQ byte 1 b4 "offline-only reader" → not allowed."""
    with pytest.raises(EntryPointError) as info:
        pre_processing(_config(_comb(zero_amount_allowed=True, ttq="6E00C080")), 0)
    assert (info.value.outcome, info.value.reason) == (
        "TRY ANOTHER INTERFACE", "amount 0 is not allowed contactless for any application "
        "(zero amount on an offline-only reader)")


def test_status_check_is_a_single_unit_of_currency_and_goes_online() -> None:
    """3.1.1.2: status check support and an amount of one currency unit (1.00 with exponent
    2) → Status Check Requested, online cryptogram required; other amounts are normal."""
    config = _config(_comb(status_check=True, floor_limit=100000))
    assert indicators(pre_processing(config, 100)[0]) == expected(
        "6680C080", status_check_requested=True)
    assert indicators(pre_processing(config, 101)[0]) == expected()


def test_each_combination_has_its_own_limits() -> None:
    config = _config(_comb(transaction_limit=1000), _comb("A0000000031010", 3,
                                                            transaction_limit=5000))
    unionpay, visa = pre_processing(config, 2000)
    assert indicators(unionpay) == expected(
        contactless_application_not_allowed=True,
        why_not_allowed="amount ≥ reader contactless transaction limit 1000")
    assert indicators(visa) == expected()


def test_configuration_rejects_a_bad_ttq_with_a_reason() -> None:
    with pytest.raises(ConfigError, match="ttq: 3 bytes, expected 4"):
        _config(_comb(ttq="660000"))


# --- the candidate list from the PPSE (Book B, 3.3.2) ---------------------------------------


def _ppse(*entries: list[Tlv]) -> list[Tlv]:
    return decode(Tlv.template(0x6F, [Tlv.primitive(0x84, PPSE_NAME), Tlv.template(0xA5, [
        Tlv.template(0xBF0C, [Tlv.template(0x61, e) for e in entries])])]).encode())


def _entry(aid: bytes, priority: int | None = None, kernel: bytes | None = None,
           label: bytes = b"APP") -> list[Tlv]:
    out = [Tlv.primitive(0x4F, aid), Tlv.primitive(0x50, label)]
    if priority is not None:
        out.append(Tlv.primitive(0x87, bytes([priority])))
    if kernel is not None:
        out.append(Tlv.primitive(0x9F2A, kernel))
    return out


def _candidates(config: TerminalConfig, *entries: list[Tlv], amount: int = 100) -> list[Any]:
    return build_candidate_list(config, _ppse(*entries), pre_processing(config, amount))


def test_every_61_entry_counts_and_priority_orders_the_candidates() -> None:
    """A PPSE with several 61 entries (a dict-based TLV would keep one); 87 low nibble 1 is
    the highest priority, no priority comes last."""
    config = _config(_comb(), _comb("A000000333010102"), _comb("A0000000031010", 3))
    out = _candidates(config, _entry(VISA), _entry(UNIONPAY_CREDIT, 2),
                      _entry(UNIONPAY_DEBIT, 0x81))
    assert [c.adf_name for c in out] == [UNIONPAY_DEBIT, UNIONPAY_CREDIT, VISA]
    assert [c.kernel_id for c in out] == [7, 7, 3]


def test_equal_priorities_keep_the_cards_order() -> None:
    config = _config(_comb(), _comb("A000000333010102"))
    out = _candidates(config, _entry(UNIONPAY_CREDIT, 1), _entry(UNIONPAY_DEBIT, 1))
    assert [c.adf_name for c in out] == [UNIONPAY_CREDIT, UNIONPAY_DEBIT]


def test_partial_aid_match_only_where_the_combination_allows_it() -> None:
    """3.3.2.5 step B: an ADF name longer than the configured AID matches only a combination
    that supports partial selection."""
    longer = bytes.fromhex("A0000000031010AB")
    assert _candidates(_config(_comb("A0000000031010", 3, partial=True)), _entry(longer))
    assert not _candidates(_config(_comb("A0000000031010", 3, partial=False)), _entry(longer))
    assert _candidates(_config(_comb("A0000000031010", 3, partial=False)), _entry(VISA))


def test_kernel_identifier_9f2a_must_match_the_combination_kernel() -> None:
    config = _config(_comb())
    assert _candidates(config, _entry(UNIONPAY_DEBIT, 1, b"\x07"))
    assert not _candidates(config, _entry(UNIONPAY_DEBIT, 1, b"\x03"))


def test_without_9f2a_the_aids_default_kernel_is_used() -> None:
    """3.3.2.5 step C: no Kernel Identifier → the default kernel for the AID (A000000333 →
    Kernel 7, A000000003 → Kernel 3)."""
    config = _config(_comb(), _comb("A0000000031010", 3))
    out = _candidates(config, _entry(UNIONPAY_DEBIT, 1), _entry(VISA, 2))
    assert [(c.adf_name, c.kernel_id) for c in out] == [(UNIONPAY_DEBIT, 7), (VISA, 3)]


@pytest.mark.parametrize(("identifier", "kernel"), [
    (b"", None), (b"\x00", None), (b"\x03", 3), (b"\x47", 7), (b"\x83\x01\x02", 0x1830102),
])
def test_requested_kernel_id_from_9f2a(identifier: bytes, kernel: int | None) -> None:
    """Byte 1 b8-b7 00/01: an EMVCo kernel ID in b6-b1; 10/11: a domestic kernel (never an
    EMVCo one)."""
    assert requested_kernel_id(identifier) == kernel


def test_entries_with_a_bad_adf_name_are_skipped() -> None:
    config = _config(_comb())
    assert not _candidates(config, _entry(bytes.fromhex("A00000"), 1))
    assert not _candidates(config, [Tlv.primitive(0x50, b"NO AID")])


def test_extended_selection_is_appended_when_the_combination_supports_it() -> None:
    entry = [*_entry(UNIONPAY_DEBIT, 1), Tlv.primitive(0x9F29, b"\x01\x02")]
    on = _candidates(_config(_comb(extended_selection=True)), entry)
    off = _candidates(_config(_comb()), entry)
    assert on[0].select_name == UNIONPAY_DEBIT + b"\x01\x02"
    assert off[0].select_name == UNIONPAY_DEBIT


def test_combinations_not_allowed_by_pre_processing_give_no_candidates() -> None:
    config = _config(_comb(transaction_limit=1000), _comb("A0000000031010", 3))
    out = _candidates(config, _entry(UNIONPAY_DEBIT, 1), _entry(VISA, 2), amount=5000)
    assert [c.adf_name for c in out] == [VISA]


# --- final selection and the Entry Point outcomes (Book B, 3.3.3, 3.4) ------------------------


def _ppse_bytes(*entries: list[Tlv]) -> bytes:
    return b"".join(t.encode() for t in _ppse(*entries)) + b"\x90\x00"


def _fci(aid: bytes) -> bytes:
    return Tlv.template(0x6F, [Tlv.primitive(0x84, aid), Tlv.template(
        0xA5, [Tlv.primitive(0x50, b"APP")])]).encode() + b"\x90\x00"


def test_select_failure_goes_to_the_next_candidate() -> None:
    """3.3.3.5 / 3.4.1: the highest-priority application answers 6283 (blocked); the next
    one is selected. (This card answers nothing else, so its kernel ends the tap.)"""
    card = SelectCard({PPSE_NAME: _ppse_bytes(_entry(UNIONPAY_DEBIT, 1),
                                              _entry(UNIONPAY_CREDIT, 2)),
                       UNIONPAY_DEBIT: b"\x62\x83", UNIONPAY_CREDIT: _fci(UNIONPAY_CREDIT)})
    config = _config(_comb(), _comb("A000000333010102"))
    result = perform_transaction(loopback(card), config, 100, switch="none")
    assert card.selects == [PPSE_NAME, UNIONPAY_DEBIT, UNIONPAY_CREDIT]
    assert result.aid == UNIONPAY_CREDIT.hex().upper()
    assert "A000000333010101: SELECT answered 6283; next candidate" in result.steps


def test_a_malformed_fci_goes_to_the_next_candidate() -> None:
    card = SelectCard({PPSE_NAME: _ppse_bytes(_entry(UNIONPAY_DEBIT, 1),
                                              _entry(UNIONPAY_CREDIT, 2)),
                       UNIONPAY_DEBIT: bytes.fromhex("6F05840300") + b"\x90\x00",
                       UNIONPAY_CREDIT: _fci(UNIONPAY_CREDIT)})
    config = _config(_comb(), _comb("A000000333010102"))
    result = perform_transaction(loopback(card), config, 100, switch="none")
    assert result.aid == UNIONPAY_CREDIT.hex().upper()
    assert any("FCI is not BER-TLV" in s for s in result.steps)


def test_no_candidate_selectable_is_end_application_with_every_reason() -> None:
    card = SelectCard({PPSE_NAME: _ppse_bytes(_entry(UNIONPAY_DEBIT, 1)),
                       UNIONPAY_DEBIT: b"\x6A\x81"})
    result = perform_transaction(loopback(card), _config(_comb()), 100, switch="none")
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == ("no application could be selected (A000000333010101: SELECT "
                             "answered 6A81)")


def test_no_matching_application_is_end_application() -> None:
    card = SelectCard({PPSE_NAME: _ppse_bytes(_entry(bytes.fromhex("A0000000651010"), 1))})
    result = perform_transaction(loopback(card), _config(_comb()), 100, switch="none")
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == "no application on the card matches a supported AID/kernel"


def test_without_a_ppse_the_list_of_aids_is_tried_in_order() -> None:
    """Book B, 3.3.2.3: no PPSE (6A82) → every allowed combination's AID is SELECTed until the
    card answers one."""
    card = SelectCard({VISA: _fci(VISA)})
    config = _config(_comb(), _comb("A0000000031010", 3))
    result = perform_transaction(loopback(card), config, 100, switch="none")
    assert card.selects == [PPSE_NAME, UNIONPAY_DEBIT, VISA]
    assert result.aid == VISA.hex().upper() and result.kernel_id == 3


def test_a_ppse_that_is_not_tlv_falls_back_to_the_list_of_aids() -> None:
    card = SelectCard({PPSE_NAME: b"\x6F\x10\x84" + b"\x90\x00", VISA: _fci(VISA)})
    result = perform_transaction(loopback(card), _config(_comb("A0000000031010", 3)), 100,
                                 switch="none")
    assert result.aid == VISA.hex().upper()
    assert any("PPSE FCI is not BER-TLV" in s for s in result.steps)


def test_card_leaving_the_field_during_selection_is_try_again() -> None:
    """Book A, 6.4 / Book B: a communication error after activation → TRY AGAIN ("present card
    again"); simulated by a transport that loses the card after the SELECT PPSE."""
    transport = RemovingTransport(emv_card(), after=1)
    result = perform_transaction(transport, _config(_comb()), 100, switch="none")
    assert (result.outcome, result.final_outcome, result.reason) == (
        Outcome.TRY_AGAIN, Outcome.TRY_AGAIN,
        "card removed from the field: present card again (simulated: the card left the field)")
    assert (result.tvr, result.tsi) == (bytes(5), bytes(2))


def test_no_card_presented_is_end_application() -> None:
    result = perform_transaction(loopback(None), _config(_comb()), 100, switch="none")
    assert (result.outcome, result.final_outcome, result.reason) == (
        Outcome.END_APPLICATION, Outcome.END_APPLICATION,
        "no card presented: loopback: no card in the field")
    assert (result.tvr, result.tsi) == (bytes(5), bytes(2))


def test_an_unimplemented_kernel_is_end_application() -> None:
    amex = bytes.fromhex("A00000002501")
    card = SelectCard({PPSE_NAME: _ppse_bytes(_entry(amex, 1)), amex: _fci(amex)})
    result = perform_transaction(loopback(card), _config(_comb("A00000002501", 4)), 100,
                                 switch="none")
    assert result.outcome == Outcome.END_APPLICATION
    assert result.reason == "kernel 4 is not implemented"
