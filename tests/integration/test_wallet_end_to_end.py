"""The product's three features end to end, every actor a process of its own (docs/domain.md):

    emvtap wallet add-card ─HTTP→ emvtap wallet server ─HTTP→ switch admin API (the TSP)
        └ SE form: STORE DATA script → pcscd → vpcd → jcardsim applet (emvtap card run --applet)
        └ HCE form: profile + limited-use keys → the HCE app (emvtap card run)
    emvtap terminal pay (pcscd) ─ISO 8583→ emvtap switch serve
    emvtap wallet pay-in-app → token file → emvtap merchant charge ─ISO 8583→ emvtap switch serve

Add a card (SE form on the applet; HCE form), tap it, pay in-app below the limit without the
passcode, be refused above it without, approved with; the issuer lowers the limit and the next
in-app payment above the new limit needs the passcode; the bank suspends the token and both
payments decline; a contactless-only token is refused in-app.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cli_procs import emvtap, free_port, serving
from virtual_hw import wait_for_reader

from lab.applet.cli import AppletError, ensure_bridge_jar

pytestmark = pytest.mark.pcsc

SPAN = "6228480000000015"


@pytest.fixture
def network(tmp_path: Path):
    """The switch (ISO 8583 + admin API) and the wallet server, as processes; an account with
    a physical card whose in-app no-password limit is 100.00."""
    db = tmp_path / "switch.db"
    account = emvtap("switch", "account", "--db", db, "--balance", "2000.00").stdout.strip()
    emvtap("switch", "card", "--db", db, "--account", account, "--no-password-limit", "100.00",
           SPAN)
    iso, admin, wallet_port = free_port(), free_port(), free_port()
    with serving("switch", "serve", "--db", db, "--port", iso, "--admin-port", admin,
                 port=admin, log=tmp_path / "switch.log"), \
         serving("wallet", "server", "--port", wallet_port, "--switch-admin",
                 f"127.0.0.1:{admin}", "--admin-token-file", f"{db}.admin-token",
                 port=wallet_port, log=tmp_path / "wallet-server.log"):
        emvtap("merchant", "init", "--merchant", tmp_path / "shop", "--id", "SHOP0001")
        yield {"db": db, "tmp": tmp_path, "switch": f"127.0.0.1:{iso}",
               "wallet_server": f"http://127.0.0.1:{wallet_port}"}


def tap(env: dict, reader: str, amount: str, name: str) -> dict:
    record = env["tmp"] / f"{name}.json"
    emvtap("terminal", "pay", "--reader", reader, "--amount", amount, "--switch", env["switch"],
           "--json", record, "--timeout", "20", check=False)
    return json.loads(record.read_text())


def in_app(env: dict, wallet: Path, amount: str, passcode: str | None = None
           ) -> subprocess.CompletedProcess:
    """wallet pay-in-app, then merchant charge; the wallet's refusal is returned as is."""
    shop = env["tmp"] / "shop"
    order = env["tmp"] / f"order-{time.monotonic_ns()}.json"
    emvtap("merchant", "checkout", "--merchant", shop, "--amount", amount, "--out", order)
    token = order.with_suffix(".token")
    pay = emvtap("wallet", "pay-in-app", "--wallet", wallet, "--amount", amount, "--merchant",
                 order, "--out", token, *(["--passcode", passcode] if passcode else []),
                 check=False)
    if pay.returncode != 0:
        return pay
    return emvtap("merchant", "charge", "--merchant", shop, "--token", token, "--switch",
                  env["switch"], check=False)


def last_authorization(env: dict) -> tuple:
    with sqlite3.connect(env["db"]) as db:
        return db.execute("SELECT amount, reason, channel, entry_mode FROM authorizations"
                          " ORDER BY id DESC LIMIT 1").fetchone()


def test_se_form_on_the_applet_issued_over_the_air_taps_and_pays_in_app(network, vpcd_slot):
    env = network
    try:
        ensure_bridge_jar()
    except AppletError as exc:
        pytest.fail(f"the applet bridge jar could not be built: {exc}")
    # the handset's secure element: the applets installed by its maker, not personalised
    se_image = env["tmp"] / "se-image.json"
    emvtap("perso", "--seed", "1", "--out", se_image)
    wallet = env["tmp"] / "phone-wallet"
    emvtap("wallet", "init", "--wallet", wallet, "--device-id", "phone-1", "--form",
           "handset-se", "--passcode", "2468", "--server", env["wallet_server"],
           "--se-reader", vpcd_slot.reader_spec)
    with serving("card", "run", "--applet", "--install-only", "--profile", se_image,
                 "--link", vpcd_slot.link_spec, log=env["tmp"] / "applet.log"):
        wait_for_reader(vpcd_slot.reader, present=True, timeout=30)
        added = emvtap("wallet", "add-card", "--wallet", wallet, "--span", SPAN, "--device",
                       "phone-1", "--form", "handset-se")
        assert "STORE DATA commands" in added.stdout and "default" in added.stdout
        mpan = json.loads((wallet / "wallet.json").read_text())["cards"][0]["mpan"]

        record = tap(env, vpcd_slot.reader_spec, "150.00", "se-tap")
        assert record["aid"] == "A000000333010101"
        assert record["final_outcome"] == "APPROVED", record["reason"]
        assert last_authorization(env)[1:] == ("approved", "contactless", "071")

        below = in_app(env, wallet, "50.00")
        assert below.returncode == 0 and below.stdout.startswith("APPROVED 00"), below.stdout
        assert last_authorization(env) == (5000, "approved", "in-app", "812")
        refused = in_app(env, wallet, "150.00")
        assert refused.returncode != 0
        assert "no-password limit of 100.00" in refused.stderr
        above = in_app(env, wallet, "150.00", passcode="2468")
        assert above.stdout.startswith("APPROVED 00"), above.stdout + above.stderr
        assert "device verified yes" in above.stdout

        # the issuer lowers the limit: pushed to the device through the wallet server
        emvtap("switch", "event", "--db", env["db"], "--channel", "bank", "--param",
               "amount=20.00", "card.no_password_limit", SPAN)
        synced = emvtap("wallet", "sync", "--wallet", wallet)
        assert "no-password limit now 20.00" in synced.stdout
        refused = in_app(env, wallet, "50.00")
        assert "no-password limit of 20.00" in refused.stderr
        assert in_app(env, wallet, "50.00", passcode="2468").stdout.startswith("APPROVED 00")

        # the bank suspends the token: the tap and the in-app payment both decline
        emvtap("switch", "event", "--db", env["db"], "--channel", "bank", "token.suspend", mpan)
        record = tap(env, vpcd_slot.reader_spec, "150.00", "se-tap-suspended")
        assert record["final_outcome"] == "DECLINED"
        assert record["online"]["response_code"] == "62"
        declined = in_app(env, wallet, "10.00")  # the device has not heard of it yet
        assert declined.returncode == 1 and declined.stdout.startswith("DECLINED 62")
        synced = emvtap("wallet", "sync", "--wallet", wallet)
        assert "active → suspended" in synced.stdout
        refused = in_app(env, wallet, "10.00")
        assert "is suspended" in refused.stderr

    history = emvtap("switch", "show", "--db", env["db"], "--json", "-", "history").stdout
    channels = [row["channel"] for row in json.loads(history)["rows"]]
    assert channels.count("in-app") == 4 and channels.count("contactless") == 2


def test_hce_form_issued_over_the_air_taps_and_pays_in_app_and_a_contactless_token_does_not(
        network, vpcd_slot):
    env = network
    wallet = env["tmp"] / "hce-wallet"
    emvtap("wallet", "init", "--wallet", wallet, "--device-id", "phone-2", "--form", "hce",
           "--passcode", "1357", "--server", env["wallet_server"])
    added = emvtap("wallet", "add-card", "--wallet", wallet, "--span", SPAN, "--scheme",
                   "mastercard")
    assert "HCE app" in added.stdout
    card = json.loads((wallet / "wallet.json").read_text())["cards"][0]
    profile = json.loads((wallet / "cards" / card["profile"]).read_text())
    assert profile["applications"][0]["keys"]["ac"] == "00" * 16  # keys from the TSP only

    with serving("card", "run", "--profile", wallet / "cards" / card["profile"], "--state",
                 wallet / "cards" / card["state"], "--link", vpcd_slot.link_spec,
                 log=env["tmp"] / "hce.log"):
        record = tap(env, vpcd_slot.reader_spec, "150.00", "hce-tap")
    assert record["aid"] == "A0000000041010"
    assert record["final_outcome"] == "APPROVED", record["reason"]

    assert in_app(env, wallet, "50.00").stdout.startswith("APPROVED 00")
    assert "no-password limit of 100.00" in in_app(env, wallet, "150.00").stderr
    assert in_app(env, wallet, "150.00", passcode="1357").stdout.startswith("APPROVED 00")

    # a contactless-only token on a third device: valid at a POS, refused in-app (57)
    watch = env["tmp"] / "watch-wallet"
    emvtap("wallet", "init", "--wallet", watch, "--device-id", "watch-1", "--form", "hce",
           "--passcode", "9999", "--server", env["wallet_server"])
    emvtap("wallet", "add-card", "--wallet", watch, "--span", SPAN, "--purpose", "contactless")
    refused = in_app(env, watch, "10.00")
    assert refused.returncode == 1 and refused.stdout.startswith("DECLINED 57"), refused.stdout
    assert last_authorization(env) == (1000, "domain_entry_mode", "in-app", "812")

    # the device channel's lifecycle through the wallet: delete removes the keys from the phone
    deleted = emvtap("wallet", "delete", "--wallet", wallet)
    assert "→ deleted" in deleted.stdout
    assert not (wallet / "cards" / card["profile"]).exists()
    assert "deleted" in emvtap("wallet", "cards", "--wallet", wallet).stdout
