"""Card risk management and card action analysis as functions (EMV 4.4 Book 3 9.3, 10.8; VIS /
JR/T 0025 and M/Chip CVR layouts)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from emvtap.bits import CID, CryptogramType
from hce_card.risk import (
    CvrFacts,
    IssuerOutcome,
    RiskParameters,
    TransactionFacts,
    build_cvr,
    first_ac_decision,
    offline_reasons,
    second_ac_decision,
)
from hce_card.state import AppState

RISK = RiskParameters(offline_amount_limit=10000, lower_consecutive_offline_limit=2,
                      upper_consecutive_offline_limit=4, cumulative_offline_limit=5000,
                      cumulative_offline_upper_limit=8000)


def facts(amount=100, currency="0156", **state):
    return TransactionFacts(amount, bytes.fromhex(currency), AppState(**state))


@pytest.mark.parametrize(("txn", "reason"), [
    (facts(amount=10001), "amount above the card's offline limit"),
    (facts(consecutive_offline=2), "lower consecutive offline limit reached"),
    (facts(amount=600, cumulative_offline_amount=4500), "cumulative offline amount limit"),
    (facts(currency="0840"), "transaction currency is not the card's currency"),
    (facts(issuer_authentication_failed=True), "issuer authentication failed last time"),
    (facts(last_online_not_completed=True), "last online transaction not completed"),
])
def test_each_card_risk_rule_sends_the_transaction_online(txn, reason):
    assert any(reason in r for r in offline_reasons(RISK, txn))
    assert first_ac_decision(CID.TC, RISK, txn).cid == CID.ARQC


def test_within_every_limit_a_tc_request_is_approved_offline():
    assert offline_reasons(RISK, facts()) == []
    assert first_ac_decision(CID.TC, RISK, facts()).cid == CID.TC


@pytest.mark.parametrize(("requested", "cid"), [(CID.AAC, CID.AAC), (CID.ARQC, CID.ARQC)])
def test_the_first_cryptogram_is_never_above_the_request(requested, cid):
    assert first_ac_decision(requested, RISK, facts()).cid == cid


@pytest.mark.parametrize(("outcome", "txn", "cid"), [
    (IssuerOutcome(True, True), facts(), CID.TC),
    (IssuerOutcome(True, False), facts(), CID.AAC),
    (IssuerOutcome(False, False), facts(), CID.AAC),
    (IssuerOutcome(None, True), facts(), CID.AAC),  # issuer authentication required
    (IssuerOutcome(None, False, unable_to_go_online=True), facts(consecutive_offline=3),
     CID.TC),
    (IssuerOutcome(None, False, unable_to_go_online=True), facts(consecutive_offline=4),
     CID.AAC),
    (IssuerOutcome(None, False, unable_to_go_online=True),
     facts(amount=4000, cumulative_offline_amount=4500), CID.AAC),
])
def test_second_generate_ac_card_action_analysis(outcome, txn, cid):
    assert second_ac_decision(CID.TC, RISK, txn, outcome).cid == cid


def test_issuer_authentication_optional_lets_a_missing_arpc_through():
    relaxed = RiskParameters(issuer_authentication_required=False)
    assert second_ac_decision(CID.TC, relaxed, facts(), IssuerOutcome(None, True)).cid == CID.TC
    assert second_ac_decision(CID.AAC, relaxed, facts(), IssuerOutcome(True, True)).cid == \
        CID.AAC


def test_vis_cvr_layout():
    cvr = build_cvr("vis", CvrFacts(first_ac=CID.ARQC, second_ac=CID.TC,
                                    issuer_authentication_failed_now=True,
                                    last_online_not_completed=True, script_commands_last=3,
                                    script_failed_last=True, offline_dda_performed=True))
    assert cvr == bytes([0x03, 0b0110_1000, 0x80, 0x3A])


def test_mchip_cvr_layout():
    cvr = build_cvr("mchip", CvrFacts(first_ac=CID.ARQC, cda_performed=True,
                                      issuer_authentication_performed=True,
                                      upper_consecutive_exceeded=True))
    assert cvr == bytes([0b1010_0000, 0x50, 0x40, 0, 0, 0])


def test_cvr_facts_carry_the_last_online_transaction_from_the_state_when_it_began():
    """VIS CVR byte 3 / byte 4: what the card remembers from its last online transaction is
    read from the state before this one, the same way for either path."""
    before = facts(issuer_authentication_failed=True, issuer_authentication_not_performed=True,
                   last_online_not_completed=True, script_commands=2, script_failed=True)
    cvr_facts = CvrFacts.for_cryptogram(before, CryptogramType.TC, offline_dda_performed=True)
    assert cvr_facts == CvrFacts(
        first_ac=CryptogramType.TC, new_card=True, issuer_authentication_failed_last=True,
        issuer_authentication_not_performed_last=True, last_online_not_completed=True,
        script_commands_last=2, script_failed_last=True, offline_dda_performed=True)
    assert build_cvr("vis", cvr_facts) == bytes([0x03, 0b1001_0000, 0x80 | 0x10 | 0x08 | 0x04,
                                                 0x20 | 0x08 | 0x02])


def test_both_card_paths_build_cvr_facts_the_one_way():
    """No card path assembles the CVR facts itself: both call CvrFacts.for_cryptogram."""
    card = Path(__file__).resolve().parents[2] / "hce_card"
    for name in ("full_path.py", "quick_path.py"):
        calls = [ast.unparse(n.func) for n in ast.walk(ast.parse((card / name).read_text()))
                 if isinstance(n, ast.Call)]
        assert "CvrFacts" not in calls, name
        assert "CvrFacts.for_cryptogram" in calls, name


def test_put_data_values_override_the_profile_limits():
    from test_card_helpers import qpboc_profile

    app = qpboc_profile().applications[0]
    state = AppState(data={"9F14": "01", "9F23": "03", "9F54": "000000002000"})
    risk = RiskParameters.for_application(app, state)
    assert (risk.lower_consecutive_offline_limit, risk.upper_consecutive_offline_limit) == (1, 3)
    assert risk.cumulative_offline_limit == 2000
