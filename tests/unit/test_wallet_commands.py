"""``emvtap wallet`` and ``emvtap merchant``: bad input ends in a clear, specific message, never a
traceback; the wallet server answers bad requests with a status and a reason; the HIL loader
checks the in-app steps."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from lab.cli import cli
from lab.wallet.server import WalletServer


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_a_short_passcode_is_refused(tmp_path):
    result = run("wallet", "init", "--wallet", str(tmp_path / "w"), "--device-id", "p1",
                 "--form", "hce", "--passcode", "12")
    assert result.exit_code == 1 and "4 to 12 digits" in result.output


def test_a_directory_that_is_no_wallet_is_named(tmp_path):
    result = run("wallet", "cards", "--wallet", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "is not a wallet (emvtap wallet init)" in result.output


def test_paying_with_an_empty_wallet_says_there_is_no_card(tmp_path):
    run("wallet", "init", "--wallet", str(tmp_path / "w"), "--device-id", "p1", "--form", "hce",
        "--passcode", "2468")
    run("merchant", "init", "--merchant", str(tmp_path / "m"), "--id", "SHOP1")
    run("merchant", "checkout", "--merchant", str(tmp_path / "m"), "--amount", "5.00", "--out",
        str(tmp_path / "o.json"))
    result = run("wallet", "pay-in-app", "--wallet", str(tmp_path / "w"), "--amount", "5.00",
                 "--merchant", str(tmp_path / "o.json"), "--out", str(tmp_path / "t.json"))
    assert result.exit_code == 1
    assert "the device refused: the wallet holds 0 matching a default card" in result.output
    other = run("wallet", "pay-in-app", "--wallet", str(tmp_path / "w"), "--amount", "6.00",
                "--merchant", str(tmp_path / "o.json"), "--out", str(tmp_path / "t.json"))
    assert "the merchant asks 5.00, not 6.00" in other.output


def test_the_wallet_says_when_its_server_does_not_answer(tmp_path):
    run("wallet", "init", "--wallet", str(tmp_path / "w"), "--device-id", "p1", "--form", "hce",
        "--passcode", "2468", "--server", "http://127.0.0.1:9")
    result = run("wallet", "add-card", "--wallet", str(tmp_path / "w"), "--span",
                 "6228480000000015")
    assert result.exit_code == 1 and "did not answer" in result.output


def test_a_file_that_is_no_payment_token_is_refused_by_the_merchant(tmp_path):
    run("merchant", "init", "--merchant", str(tmp_path / "m"), "--id", "SHOP1")
    (tmp_path / "t.json").write_text(json.dumps({"format": "something else"}))
    result = run("merchant", "charge", "--merchant", str(tmp_path / "m"), "--token",
                 str(tmp_path / "t.json"), "--switch", "127.0.0.1:8583")
    assert result.exit_code == 1 and "not a payment token" in result.output
    (tmp_path / "t.json").write_text("{")
    result = run("merchant", "charge", "--merchant", str(tmp_path / "m"), "--token",
                 str(tmp_path / "t.json"), "--switch", "127.0.0.1:8583")
    assert result.exit_code == 1 and "is not a payment token" in result.output


def test_a_merchant_id_longer_than_de_42_is_refused(tmp_path):
    result = run("merchant", "init", "--merchant", str(tmp_path / "m"), "--id", "X" * 16)
    assert result.exit_code == 1 and "1 to 15 ASCII characters (DE 42)" in result.output


@pytest.fixture
def wallet_server():
    server = WalletServer("http://127.0.0.1:9", "t")  # a TSP that is not there
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def request(url, method="GET", body: bytes | None = None):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_wallet_server_answers_bad_requests_with_a_reason(wallet_server):
    assert request(wallet_server + "/v1/nothing") == (404, {"error": "no route GET /v1/nothing"})
    status, body = request(wallet_server + "/v1/cards", "POST", b"{not json")
    assert status == 400 and "not JSON" in body["error"]
    status, body = request(wallet_server + "/v1/cards", "POST", b"{}")
    assert (status, body) == (400, {"error": "missing span"})
    status, body = request(wallet_server + "/v1/cards", "POST", json.dumps(
        {"span": "6228480000000015", "device_id": "p1", "device_type": "handset-se",
         "scheme": "visa"}).encode())
    assert status == 400 and "add it in the hce form" in body["error"]
    status, body = request(wallet_server + "/v1/cards/6250940000000001/updates?since=x")
    assert (status, body) == (400, {"error": "since is a number"})
    status, body = request(wallet_server + "/v1/cards/6250940000000001/updates")
    assert status == 502 and "token service unreachable" in body["error"]


def test_the_hil_loader_checks_in_app_steps(tmp_path):
    from lab.hil.loader import ScenarioError, load_scenario

    text = """format: emvtap-hil-scenario/1
title: t
cards:
  phone:
    form: hce
    provision: {device: p1, device_type: hce, purpose: any}
steps:
  - in_app: {card: phone, amount: 5.00}
    expect: {result: MAYBE}
"""
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match="MAYBE"):
        load_scenario(path)
    path.write_text(text.replace("MAYBE", "APPROVED"))
    step = load_scenario(path).steps[0]
    assert (step.kind, step.amount, step.expect) == ("in_app", 500, {"result": "APPROVED"})
    path.write_text(text.replace("purpose: any", "purpose: everywhere"))
    with pytest.raises(ScenarioError, match="everywhere"):
        load_scenario(path)
