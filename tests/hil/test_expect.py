"""Expectations against a tap's JSON record (the record `emvtap terminal pay --json` writes)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.hil.expect import EXPECTATIONS, check, normalise

APPROVED_ONLINE: dict[str, Any] = {
    "outcome": "ONLINE REQUEST",
    "final_outcome": "APPROVED",
    "reason": "card requested online authorisation (ARQC); issuer approved (00)",
    "cvm": "CONFIRMATION CODE VERIFIED",
    "oda": {"method": "none", "result": "not performed (online authorisation)"},
    "cryptogram": {"type": "ARQC", "value": "0011223344556677", "atc": "0001"},
    "tvr": "8000000000",
    "online": {"request": {"t": "0100"}, "response_code": "00", "arpc": "11223344556677883030",
               "scripts": 0},
    "issuer_update": {"result": "delivered"},
    "issuer_script_results": "",
}


def checks(**expected: Any) -> dict[str, Any]:
    return {k: normalise(k, v) for k, v in expected.items()}


def test_a_record_that_meets_everything_has_no_failures() -> None:
    assert check(checks(
        outcome="ONLINE REQUEST", final_outcome="APPROVED", cvm="CDCVM", cryptogram="ARQC",
        oda_method="none", oda_result="not performed", response_code="00", online=True,
        reason_contains="ISSUER APPROVED", tvr_set=["oda_not_performed"],
        tvr_clear=["dda_failed"], arpc=True, scripts=0, issuer_update="delivered",
        script_results="none",
    ), APPROVED_ONLINE) == []


@pytest.mark.parametrize(("key", "value", "message"), [
    ("final_outcome", "DECLINED", "final_outcome: expected 'DECLINED', got 'APPROVED'"),
    ("response_code", "62", "response_code: expected '62', got '00'"),
    ("response_code", None, "response_code: expected None, got '00'"),
    ("cvm", "ONLINE PIN", "cvm: expected 'ONLINE PIN', got 'CONFIRMATION CODE VERIFIED'"),
    ("online", False, "online: expected False, got True"),
    ("tvr_set", ["exceeds_floor_limit"], "tvr_set: expected ['exceeds_floor_limit'], got "
                                          "8000000000 (offline data authentication was not "
                                          "performed)"),
    ("tvr_clear", "oda_not_performed", "tvr_clear"),
    ("oda_result", "ok", "oda_result: expected 'ok'"),
    ("final_outcome", ["DECLINED", "TRY AGAIN"], "expected 'DECLINED' or 'TRY AGAIN'"),
])
def test_each_unmet_expectation_is_one_message(key: str, value: Any, message: str) -> None:
    (failure,) = check(checks(**{key: value}), APPROVED_ONLINE)
    assert failure.startswith(key) and message in failure


def test_a_list_accepts_any_of_its_values() -> None:
    assert check(checks(final_outcome=["DECLINED", "APPROVED"]), APPROVED_ONLINE) == []


def test_a_tap_that_never_went_online_has_no_response_code() -> None:
    offline = {"outcome": "APPROVED", "final_outcome": "APPROVED", "online": {}}
    assert check(checks(response_code=None, online=False), offline) == []


def test_the_kernel_outcome_stands_in_when_there_is_no_final_one() -> None:
    assert check(checks(final_outcome="TRY AGAIN"), {"outcome": "TRY AGAIN"}) == []


@pytest.mark.parametrize(("results", "summary"), [
    ("", "none"),
    ("2000000001", "successful"),
    ("2000000001" "1100000002", "failed"),
    ("0000000001", "not performed"),
])
def test_issuer_script_results_read_per_script(results: str, summary: str) -> None:
    record = APPROVED_ONLINE | {"issuer_script_results": results}
    assert EXPECTATIONS["script_results"].actual(record) == summary


def test_every_expectation_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "hil.md").read_text()
    assert [k for k in EXPECTATIONS if f"`{k}`" not in doc] == []
