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
    assert call(admin, "POST", "/api/provision", {"span": "1"})[0] == 400
    assert call(admin, "GET", "/api/nowhere")[0] == 404


def test_admin_token_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "db.admin-token"
    token = load_or_create_token(path)
    assert len(token) >= 24
    assert path.stat().st_mode & 0o077 == 0
    assert load_or_create_token(path) == token


def test_the_updates_feed_carries_state_limit_and_events_since_a_sequence(tmp_path):
    """GET /api/tokens/{mpan}/updates: what the wallet server relays to the device."""
    from switch.lifecycle import apply_event
    from switch.store import Store
    from switch.tsp import provision

    db = tmp_path / "s.db"
    with Store(db) as store, store.transaction():
        account = store.add_account(balance=1000)
        store.add_card("6228480000000018", account, "3112", no_password_limit=10000)
    with Store(db) as store:
        mpan = provision(store, span="6228480000000018", device_id="p1",
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
            apply_event(store, "card.no_password_limit", "6228480000000018", channel="bank",
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
