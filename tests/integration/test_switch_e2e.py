"""End to end over TCP and the admin API (switch/README.md): a tap is approved, the bank suspends
the token and the next tap declines, resumed it approves; the device is reported lost and every
token on it declines; the physical card is cancelled and every device card of it is deleted."""

from __future__ import annotations

import itertools
import json
import urllib.request

import pytest

from emvtap import tlv
from emvtap.iso8583 import exchange
from switch.admin import AdminServer
from switch.store import Store
from switch.testing import SimCard, running_switch

TOKEN = "e2e-token"
SPAN_A, SPAN_B = "6228480000000011", "6228480000000029"
TERMINALS = itertools.count(1)


@pytest.fixture
def network(tmp_path):
    db = tmp_path / "switch.db"
    with Store(db) as store, store.transaction():
        account = store.add_account(balance=1_000_000)
        store.add_card(SPAN_A, account, "3112", psn="01")
        store.add_card(SPAN_B, account, "3112", psn="01")
    admin = AdminServer(db, TOKEN, port=0)
    admin.start()
    with running_switch(db) as server:
        yield admin, server
    admin.stop()


def api(admin, method, path, body=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{admin.port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def provision(admin, span, device, device_type="handset-se") -> SimCard:
    body = {
        "span": span,
        "device_id": device,
        "device_type": device_type,
        "token_requestor_id": "50012345678",
    }
    profile = api(admin, "POST", "/api/provision", body)["profile"]
    # each card taps at its own terminal, so STANs never collide across cards
    return SimCard.from_profile(profile, terminal_id=f"TERM{next(TERMINALS):04d}")


def event(admin, name, subject, channel):
    return api(
        admin, "POST", "/api/events", {"event": name, "subject": subject, "channel": channel}
    )


def tap(server, card: SimCard, amount=100) -> str:
    return exchange("127.0.0.1", server.port, card.request(amount))["39"]


def test_bank_suspends_then_resumes_a_token(network):
    admin, server = network
    card = provision(admin, SPAN_A, "phone")
    assert tap(server, card) == "00"
    event(admin, "token.suspend", card.mpan, "bank")
    assert tap(server, card) == "62"
    event(admin, "token.resume", card.mpan, "bank")
    assert tap(server, card) == "00"


def test_device_lost_declines_every_token_on_it(network):
    admin, server = network
    a, b = provision(admin, SPAN_A, "phone"), provision(admin, SPAN_B, "phone")
    watch = provision(admin, SPAN_A, "watch", "wearable-se")
    assert [tap(server, c) for c in (a, b, watch)] == ["00", "00", "00"]
    event(admin, "device.lost", "phone", "device")
    assert [tap(server, c) for c in (a, b, watch)] == ["62", "62", "00"]
    event(admin, "device.found", "phone", "device")
    assert [tap(server, c) for c in (a, b)] == ["00", "00"]


def test_card_cancelled_deletes_every_device_card_of_it(network):
    admin, server = network
    phone, watch = (
        provision(admin, SPAN_A, "phone"),
        provision(admin, SPAN_A, "watch", "wearable-se"),
    )
    other = provision(admin, SPAN_B, "phone")
    event(admin, "card.cancelled", SPAN_A, "bank")
    for card in (phone, watch):
        response = exchange("127.0.0.1", server.port, card.request(100))
        assert response["39"] == "14"
        script = tlv.find(tlv.decode(response["55"]), 0x72)
        assert tlv.find(script.children, 0x86).value[:2] == bytes.fromhex(
            "841E"
        )  # APPLICATION BLOCK
    assert tap(server, other) == "00"
    tokens = api(admin, "GET", f"/api/tokens?span={SPAN_A}")["tokens"]
    assert {t["state"] for t in tokens} == {"deleted"}


def test_hce_wallet_pays_with_limited_use_keys_and_replenishes(network):
    admin, server = network
    body = {
        "span": SPAN_A,
        "device_id": "android",
        "device_type": "hce",
        "token_requestor_id": "50012345678",
    }
    result = api(admin, "POST", "/api/provision", body)
    keys = {k["atc"]: bytes.fromhex(k["ac"]) for k in result["limited_use_keys"]["keys"]}
    card = SimCard(result["mpan"], bytes(16), session_keys=keys)
    assert [tap(server, card) for _ in range(10)] == ["00"] * 10
    assert tap(server, card) == "05"  # ATC 11: no key issued yet
    batch = api(admin, "POST", f"/api/tokens/{card.mpan}/limited-use-keys", {"count": 5})
    card.session_keys |= {k["atc"]: bytes.fromhex(k["ac"]) for k in batch["keys"]}
    card.atc = 11  # the wallet skips to the first key of the new batch it has not used
    assert tap(server, card) == "00"  # ATC 12
