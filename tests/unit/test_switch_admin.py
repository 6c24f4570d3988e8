"""switch.admin: the HTTP JSON admin API on 127.0.0.1 (switch/README.md)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from switch.admin import ROUTES, AdminServer, load_or_create_token
from switch.store import Store

TOKEN = "s3cret-admin-token"


@pytest.fixture
def admin(tmp_path):
    db = tmp_path / "switch.db"
    Store(db).close()
    server = AdminServer(db, TOKEN, port=0)
    server.start()
    yield server
    server.stop()


def call(admin, method, path, body=None, token=TOKEN):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{admin.port}{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_admin_binds_loopback(admin):
    assert admin.httpd.server_address[0] == "127.0.0.1"


def test_requests_without_the_token_are_refused(admin):
    assert call(admin, "GET", "/api/accounts", token=None)[0] == 401
    assert call(admin, "GET", "/api/accounts", token="wrong")[0] == 401


def test_openapi_document_lists_every_route(admin):
    status, doc = call(admin, "GET", "/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.1")
    for route in ROUTES:
        assert route.method.lower() in doc["paths"][route.path]


def test_provision_suspend_and_history_through_the_api(admin):
    status, body = call(admin, "POST", "/api/accounts", {"balance": 5000})
    assert status == 200
    account_id = body["account_id"]
    span = "6228480000000011"
    assert call(admin, "POST", "/api/cards", {"span": span, "account_id": account_id})[0] == 200
    status, prov = call(
        admin,
        "POST",
        "/api/provision",
        {
            "span": span,
            "device_id": "phone",
            "device_type": "hce",
            "token_requestor_id": "50012345678",
        },
    )
    assert status == 200, prov
    mpan = prov["mpan"]
    assert prov["profile"]["token"]["mpan"] == mpan
    assert len(prov["limited_use_keys"]["keys"]) == 10
    status, token = call(admin, "GET", f"/api/tokens/{mpan}")
    assert (status, token["state"]) == (200, "active")
    assert not any(k.startswith("key_") for k in token)  # keys never leave the vault
    status, changes = call(
        admin, "POST", "/api/events", {"event": "token.suspend", "subject": mpan, "channel": "bank"}
    )
    assert status == 200 and changes["changes"][0]["to_state"] == "suspended"
    status, events = call(admin, "GET", f"/api/events?mpan={mpan}")
    assert [e["event"] for e in events["events"]] == ["token.provisioned", "token.suspend"]
    assert call(admin, "GET", "/api/authorizations")[1] == {"authorizations": []}


def test_replenish_endpoint_returns_the_next_batch(admin):
    _, body = call(admin, "POST", "/api/accounts", {"balance": 5000})
    call(
        admin, "POST", "/api/cards", {"span": "6228480000000011", "account_id": body["account_id"]}
    )
    _, prov = call(
        admin,
        "POST",
        "/api/provision",
        {
            "span": "6228480000000011",
            "device_id": "p",
            "device_type": "hce",
            "token_requestor_id": "50012345678",
        },
    )
    status, batch = call(
        admin, "POST", f"/api/tokens/{prov['mpan']}/limited-use-keys", {"count": 3}
    )
    assert status == 200
    assert [k["atc"] for k in batch["keys"]] == [11, 12, 13]
    status, counts = call(admin, "GET", f"/api/tokens/{prov['mpan']}/limited-use-keys")
    assert counts["issued"] == 13


def test_rule_violations_are_400_with_a_reason(admin):
    _, body = call(admin, "POST", "/api/accounts", {"balance": 5000})
    call(
        admin, "POST", "/api/cards", {"span": "6228480000000011", "account_id": body["account_id"]}
    )
    req = {
        "span": "6228480000000011",
        "device_id": "p",
        "device_type": "handset-se",
        "token_requestor_id": "50012345678",
    }
    assert call(admin, "POST", "/api/provision", req)[0] == 200
    status, err = call(admin, "POST", "/api/provision", req)
    assert (status, err["reason"]) == (400, "already_on_device")
    status, err = call(
        admin, "POST", "/api/events", {"event": "card.lost", "subject": "x", "channel": "device"}
    )
    assert status == 400 and "channel" in err["error"]
    assert call(admin, "POST", "/api/provision", {"span": "1"})[0] == 422
    assert call(admin, "GET", "/api/nowhere")[0] == 404


def test_admin_token_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "db.admin-token"
    token = load_or_create_token(path)
    assert len(token) >= 24
    assert path.stat().st_mode & 0o077 == 0
    assert load_or_create_token(path) == token


# --- bounds: slow and half-sent requests ----------------------------------------------------------


@pytest.fixture
def quick_admin(tmp_path):
    db = tmp_path / "switch.db"
    Store(db).close()
    server = AdminServer(db, TOKEN, port=0, request_timeout=0.5, max_connections=4)
    server.start()
    yield server
    server.stop()


def _closed_within(sock, seconds: float) -> bytes:
    """What the server sends before closing, read until EOF (the socket times out otherwise)."""

    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"not closed within {seconds} s; got {got!r}") from None
    return got


def test_a_body_shorter_than_its_content_length_times_out_with_408(quick_admin):
    import socket

    with socket.create_connection(("127.0.0.1", quick_admin.port), timeout=5) as s:
        s.sendall(
            b"POST /api/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b'\r\nContent-Length: 100\r\n\r\n{"balance"'
        )
        assert _closed_within(s, 5).startswith(b"HTTP/1.0 408")
    assert call(quick_admin, "GET", "/api/accounts")[0] == 200


def test_half_sent_requests_are_closed_and_do_not_hold_the_api(quick_admin):
    import socket

    stalled = [socket.create_connection(("127.0.0.1", quick_admin.port)) for _ in range(20)]
    for s in stalled:
        s.sendall(b"GET /api/acc")
    for s in stalled:
        _closed_within(s, 5)  # timed out, or refused at the cap
        s.close()
    assert call(quick_admin, "GET", "/api/accounts")[0] == 200


# --- every field checked against the published schema ---------------------------------------------


def raw_call(admin, method, path, data: bytes, auth=f"Bearer {TOKEN}"):
    req = urllib.request.Request(f"http://127.0.0.1:{admin.port}{path}", data=data, method=method)
    req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def account_and_card(admin):
    account_id = call(admin, "POST", "/api/accounts", {"balance": 5000})[1]["account_id"]
    span = "6228480000000011"
    assert call(admin, "POST", "/api/cards", {"span": span, "account_id": account_id})[0] == 200
    return account_id, span


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"balance": "abc"}, "balance"),
        ({"balance": 10**30}, "balance"),
        ({"daily_limit": -1}, "daily_limit"),
        ({"kind": "gold"}, "kind"),
        ({"currency": "CNY"}, "currency"),
        ({"pin": 1234}, "pin"),
        ({"holder": "a\x00b"}, "holder"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_an_account_field_of_the_wrong_type_or_form_is_422_naming_it(admin, body, field):
    status, err = call(admin, "POST", "/api/accounts", body)
    assert (status, err["field"], err["reason"]) == (422, field, "invalid_field")
    assert call(admin, "GET", "/api/accounts")[1]["accounts"] == []  # nothing stored


@pytest.mark.parametrize("span", ["' OR '1'='1", "", "6228\U0001f4b3480000000011", "62284800"])
def test_a_span_that_is_not_12_to_19_digits_is_refused_everywhere(admin, account_and_card, span):
    account_id, _ = account_and_card
    status, err = call(admin, "POST", "/api/cards", {"span": span, "account_id": account_id})
    assert (status, err["field"]) == (422, "span")
    req = {
        "span": span,
        "device_id": "dev-1",
        "device_type": "hce",
        "token_requestor_id": "50012345678",
    }
    status, err = call(admin, "POST", "/api/provision", req)
    assert (status, err["field"]) == (422, "span")
    assert call(admin, "GET", "/api/tokens")[1]["tokens"] == []


@pytest.mark.parametrize("device_id", ["", "a\x00b", "a b", "x" * 65])
def test_a_device_id_must_be_a_printable_word(admin, account_and_card, device_id):
    _, span = account_and_card
    req = {
        "span": span,
        "device_id": device_id,
        "device_type": "hce",
        "token_requestor_id": "50012345678",
    }
    status, err = call(admin, "POST", "/api/provision", req)
    assert (status, err["field"]) == (422, "device_id")


def test_token_update_with_a_malformed_token_requestor_id_is_refused(admin, account_and_card):
    _, span = account_and_card
    req = {
        "span": span,
        "device_id": "dev-1",
        "device_type": "handset-se",
        "token_requestor_id": "50012345678",
    }
    mpan = call(admin, "POST", "/api/provision", req)[1]["mpan"]
    event = {
        "event": "token.update",
        "subject": mpan,
        "channel": "bank",
        "params": {"token_requestor_id": "x"},
    }
    status, err = call(admin, "POST", "/api/events", event)
    assert (status, err["field"]) == (422, "params.token_requestor_id")
    assert call(admin, "GET", f"/api/tokens/{mpan}")[1]["token_requestor_id"] == "50012345678"
    status, err = call(admin, "POST", "/api/events", event | {"params": "token_requestor_id=x"})
    assert (status, err["field"]) == (422, "params")


def test_deeply_nested_or_oversized_json_gets_an_answer(admin):
    status, err = raw_call(admin, "POST", "/api/accounts", b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "JSON" in err["error"]
    status, err = raw_call(admin, "POST", "/api/accounts", b'{"balance": ' + b"9" * 5000 + b"}")
    assert status == 400 and "JSON" in err["error"]
    deep = {"event": "token.suspend", "subject": "x", "channel": "bank", "params": {"a": {}}}
    node = deep["params"]["a"]
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    status, err = call(admin, "POST", "/api/events", deep)
    assert (status, err["field"]) == (422, "params.a")


def test_query_and_path_parameters_are_checked_too(admin):
    status, err = call(admin, "GET", "/api/authorizations?limit=abc")
    assert (status, err["field"]) == (422, "limit")
    status, err = call(admin, "GET", "/api/events?since=-1")
    assert (status, err["field"]) == (422, "since")
    status, err = call(admin, "GET", "/api/tokens/123abc")
    assert (status, err["field"]) == (422, "mpan")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(admin, scheme):
    assert raw_call(admin, "GET", "/api/accounts", None, auth=f"{scheme} {TOKEN}")[0] == 200


@pytest.mark.parametrize("auth", [f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x", "Bearer"])
def test_other_schemes_and_tokens_are_refused(admin, auth):
    assert raw_call(admin, "GET", "/api/accounts", None, auth=auth)[0] == 401


def test_the_published_schema_is_what_is_enforced(admin):
    from jsonschema import Draft202012Validator

    doc = call(admin, "GET", "/openapi.json", token=None)[1]
    schema = doc["paths"]["/api/accounts"]["post"]["requestBody"]["content"]["application/json"]
    validator = Draft202012Validator(schema["schema"])
    assert not validator.is_valid({"balance": "abc"})
    assert validator.is_valid({"balance": 100, "kind": "credit"})


def test_the_updates_feed_carries_state_limit_and_events_since_a_sequence(tmp_path):
    """GET /api/tokens/{mpan}/updates: what the wallet server relays to the device."""
    from switch.lifecycle import apply_event
    from switch.store import Store
    from switch.tsp import provision

    db = tmp_path / "s.db"
    with Store(db) as store, store.transaction():
        account = store.add_account(balance=1000)
        store.add_card("6228480000000015", account, "3112", no_password_limit=10000)
    with Store(db) as store:
        mpan = provision(store, span="6228480000000015", device_id="p1",
                         device_type="hce", token_requestor_id="50012345678").mpan
    admin = AdminServer(db, "t", port=0)
    admin.start()
    try:
        status, first = call(admin, "GET", f"/api/tokens/{mpan}/updates", token="t")
        assert status == 200
        assert (first["state"], first["no_password_limit"], first["is_default"]) == (
            "active", 10000, True)
        assert [e["event"] for e in first["events"]] == ["token.provisioned"]
        with Store(db) as store:
            apply_event(store, "card.no_password_limit", "6228480000000015", channel="bank",
                        params={"amount": 2000})
            apply_event(store, "token.suspend", mpan, channel="bank")
        status, later = call(admin, "GET",
                             f"/api/tokens/{mpan}/updates?since={first['last_event']}", token="t")
        assert (later["state"], later["holds"], later["no_password_limit"]) == (
            "suspended", ["bank"], 2000)
        assert [e["event"] for e in later["events"]] == ["card.no_password_limit",
                                                        "token.suspend"]
        assert later["last_event"] > first["last_event"]
        assert call(admin, "GET", "/api/tokens/6250940000000000/updates", token="t")[0] == 404
    finally:
        admin.stop()


def test_provision_takes_a_scheme_of_the_published_schema_and_names_any_other(admin):
    account_id = call(admin, "POST", "/api/accounts", {"balance": 5000})[1]["account_id"]
    span = "6228480000000011"
    assert call(admin, "POST", "/api/cards", {"span": span, "account_id": account_id})[0] == 200
    req = {"span": span, "device_id": "phone", "device_type": "hce",
           "token_requestor_id": "50012345678", "purpose": "in-app"}
    status, err = call(admin, "POST", "/api/provision", req | {"scheme": "amex"})
    assert (status, err["field"]) == (422, "scheme"), err
    status, prov = call(admin, "POST", "/api/provision", req | {"scheme": "visa"})
    assert status == 200, prov
    assert prov["profile"]["applications"][0]["cvn"] == 0x12
