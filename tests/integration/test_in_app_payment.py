"""In-app payment (docs/domain.md, "Two ways to pay, two limits"; "Domain restrictions"): the
device card computes its cryptogram over the merchant's order, the wallet encrypts it to the
merchant, the merchant sends an in-app 0100 (DE 22 812, DE 48 channel A) to the switch over TCP,
and the switch enforces the token's domain and the issuer's no-password limit. The switch, its
admin API and the wallet server run on real sockets (in threads here; as processes in
test_wallet_end_to_end.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.merchant.shop import Merchant, MerchantError, init_merchant
from lab.wallet.device import Wallet, WalletError
from lab.wallet.server import WalletServer
from switch.admin import AdminServer
from switch.store import Store
from switch.testing import running_switch

SPAN = "6228480000000015"
LIMIT = 10000  # 100.00


@pytest.fixture
def world(tmp_path: Path):
    db = tmp_path / "switch.db"
    with Store(db) as store, store.transaction():
        account = store.add_account(balance=1_000_000)
        store.add_card(SPAN, account, "3112", no_password_limit=LIMIT)
    admin = AdminServer(db, "secret-token", port=0)
    admin.start()
    wallet_server = WalletServer(f"http://127.0.0.1:{admin.port}", "secret-token")
    wallet_server.start()
    init_merchant(tmp_path / "shop", "SHOP0001", "Tea shop")
    try:
        with running_switch(db) as switch:
            yield {"db": db, "tmp": tmp_path, "switch": f"127.0.0.1:{switch.port}",
                   "server": f"http://127.0.0.1:{wallet_server.port}",
                   "merchant": Merchant(tmp_path / "shop")}
    finally:
        wallet_server.stop()
        admin.stop()


def wallet(world, form="hce", name="w", device="phone-1") -> Wallet:
    return Wallet.create(world["tmp"] / name, device, form, "2468", server=world["server"])


def pay(world, w: Wallet, amount: int, passcode: str | None = None):
    order = world["merchant"].new_order(amount)
    return world["merchant"].charge(w.pay_in_app(order, amount, passcode), world["switch"])


def history(world) -> list[dict]:
    with Store(world["db"]) as store:
        return store.authorizations()


@pytest.mark.parametrize("scheme", ["quickpass", "visa", "mastercard"])
def test_below_the_limit_no_passcode_above_it_the_passcode(world, scheme):
    w = wallet(world)
    card = w.add_card(SPAN, scheme=scheme)
    assert card["no_password_limit"] == LIMIT

    below = pay(world, w, 5000)
    assert below.approved and below.response_code == "00" and not below.device_verified

    with pytest.raises(WalletError, match=r"no-password limit of 100\.00"):
        pay(world, w, 15000)
    with pytest.raises(WalletError, match="wrong device passcode"):
        pay(world, w, 15000, passcode="1111")
    above = pay(world, w, 15000, passcode="2468")
    assert above.approved and above.device_verified

    records = history(world)
    assert [(r["amount"], r["reason"], r["channel"], r["entry_mode"]) for r in records] == [
        (15000, "approved", "in-app", "812"), (5000, "approved", "in-app", "812")]
    assert all(r["atc"] is not None for r in records)  # the ARQCs verified


def test_a_lowered_limit_is_enforced_by_the_issuer_then_reaches_the_device(world):
    """The issuer lowers the limit; until the push reaches the device the switch declines an
    amount above the new limit without device verification; after the push the device asks
    for the passcode itself."""
    from switch.lifecycle import apply_event

    w = wallet(world)
    card = w.add_card(SPAN)
    with Store(world["db"]) as store:
        apply_event(store, "card.no_password_limit", SPAN, channel="bank",
                    params={"amount": 2000})
    result = pay(world, w, 5000)  # the device still believes 100.00
    assert not result.approved and result.response_code == "1A"
    assert history(world)[0]["reason"] == "in_app_verification_required"

    assert w.sync() == [f"{card['mpan'][:6]}******{card['mpan'][-4:]}: "
                        "no-password limit now 20.00"]
    assert w.card()["no_password_limit"] == 2000
    with pytest.raises(WalletError, match=r"no-password limit of 20\.00"):
        pay(world, w, 5000)
    assert pay(world, w, 5000, passcode="2468").approved
    assert pay(world, w, 1500).approved
    # the push reached the HCE card itself (its inbox, the SDK path): the card's own limit
    from hce_card.state import StateStore

    state = StateStore(w.dir / "cards" / w.card()["state"]).state
    assert [a.no_password_limit for a in state.applications.values()] == [2000]


def test_a_contactless_only_token_is_refused_in_app(world):
    w = wallet(world)
    w.add_card(SPAN, purpose="contactless")
    result = pay(world, w, 5000)
    assert not result.approved and result.response_code == "57"
    assert history(world)[0]["reason"] == "domain_entry_mode"


def test_the_merchant_refuses_a_token_made_for_another_order(world):
    w = wallet(world)
    w.add_card(SPAN)
    first, second = world["merchant"].new_order(5000), world["merchant"].new_order(5000)
    token = w.pay_in_app(first, 5000)
    forged = dict(second)
    forged["order_id"] = first["order_id"]
    # a cryptogram over the first order's number cannot pay an order with another number
    other = w.pay_in_app(second | {"order_id": first["order_id"]}, 5000)
    with pytest.raises(MerchantError, match="unpredictable number"):
        world["merchant"].charge(other, world["switch"])
    assert world["merchant"].charge(token, world["switch"]).approved
    with pytest.raises(MerchantError, match="already charged"):
        world["merchant"].charge(token, world["switch"])


def test_a_suspended_card_is_refused_by_the_device_and_declined_by_the_switch(world):
    w = wallet(world)
    card = w.add_card(SPAN)
    order = world["merchant"].new_order(5000)
    token = w.pay_in_app(order, 5000)  # made before the suspension reached the device
    answer = w.lifecycle("suspend", None)
    assert answer["changes"][0]["to_state"] == "suspended"
    assert w.card()["status"] == "suspended"
    with pytest.raises(WalletError, match="suspended"):
        pay(world, w, 5000)
    result = world["merchant"].charge(token, world["switch"])
    assert not result.approved and result.response_code == "62"
    w.lifecycle("resume", card["mpan"][-4:])
    assert w.card()["status"] == "active"
    assert pay(world, w, 5000).approved
    events = json.loads(json.dumps(history(world)))
    assert events[0]["reason"] == "approved"


def test_the_wallet_fetches_limited_use_keys_before_the_first_batch_runs_out(world):
    """The first batch holds 10 keys (one per payment); the wallet replenishes through the
    wallet server when few are left, so payment 11 and 12 still have a key."""
    w = wallet(world)
    w.add_card(SPAN, scheme="visa")
    results = [pay(world, w, 100) for _ in range(12)]
    assert [r.response_code for r in results] == ["00"] * 12
    with Store(world["db"]) as store:
        mpan = store.tokens()[0].mpan
        status = store.limited_use_key_status(mpan)
    assert status["last_batch"] >= 2
    events = [e["event"] for e in Store(world["db"]).events(mpan=mpan)]
    assert "token.keys_replenished" in events
