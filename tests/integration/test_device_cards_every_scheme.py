"""Every scheme as a device card, from the CLI (docs/domain.md, Device cards; "Keys of the
cloud-based cards"): ``emvtap switch provision --scheme quickpass|visa|mastercard`` in an SE
form (master keys on the card) and in the HCE form (limited-use keys from the token service),
the card served by ``emvtap card run`` on vpcd, tapped by ``emvtap terminal pay`` through
pcscd, and approved online by ``emvtap switch serve`` - each a process of its own."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_procs import emvtap, free_port, serving

pytestmark = pytest.mark.pcsc

SPAN = "6228480000000015"
#: scheme → (AID the terminal selects, kernel, path, the CVN the switch verified)
EXPECTED = {
    "quickpass": ("A000000333010101", 7, "qPBOC quick path"),
    "visa": ("A0000000031010", 3, "qVSDC quick path"),
    "mastercard": ("A0000000041010", 2, "EMV full path"),
}
CVNS = {("quickpass", "handset-se"): 0x01, ("quickpass", "hce"): 0x01,
        ("visa", "handset-se"): 0x12, ("visa", "hce"): 0x12,
        ("mastercard", "handset-se"): 0x10, ("mastercard", "hce"): 0x11}


@pytest.mark.parametrize("form", ["handset-se", "hce"])
@pytest.mark.parametrize("scheme", list(EXPECTED))
def test_a_provisioned_device_card_of_each_scheme_is_approved_online(
        tmp_path: Path, vpcd_slot, scheme: str, form: str) -> None:
    db = tmp_path / "switch.db"
    account = emvtap("switch", "account", "--db", db, "--balance", "500.00").stdout.strip()
    emvtap("switch", "card", "--db", db, "--account", account, "--no-password-limit", "300.00",
           SPAN)
    profile = tmp_path / "card.json"
    out = emvtap("switch", "provision", "--db", db, "--span", SPAN, "--device-id", "phone-1",
                 "--device-type", form, "--scheme", scheme, "--seed", "1", "--out", profile)
    assert f"provisioned {scheme} " in out.stdout
    data = json.loads(profile.read_text())
    app = data["applications"][0]
    assert app["aid"] == EXPECTED[scheme][0]
    assert app["cvn"] == CVNS[scheme, form]
    if form == "hce":  # no master key on the phone, the first batch of keys instead
        assert app["keys"]["ac"] == "00" * 16
        assert len(app["extra"]["limited_use_keys"]) == 10

    port = free_port()
    with serving("switch", "serve", "--db", db, "--port", port, "--admin-port", "-1",
                 port=port), \
         serving("card", "run", "--profile", profile, "--link", vpcd_slot.link_spec,
                 log=tmp_path / "card.log"):
        record_file = tmp_path / "tap.json"
        done = emvtap("terminal", "pay", "--reader", vpcd_slot.reader_spec, "--amount", "150.00",
                      "--switch", f"127.0.0.1:{port}", "--json", record_file, "--timeout", "20",
                      check=False)
    record = json.loads(record_file.read_text())
    assert record["aid"] == EXPECTED[scheme][0] and record["kernel"] == EXPECTED[scheme][1]
    assert record["path"] == EXPECTED[scheme][2]
    assert record["outcome"] == "ONLINE REQUEST"  # the card asked for an ARQC
    assert record["final_outcome"] == "APPROVED", record["reason"]
    assert done.returncode == 0
    with sqlite3.connect(db) as conn:
        reason, atc, cvn = conn.execute(
            "SELECT a.reason, a.atc, t.cvn FROM authorizations a JOIN tokens t"
            " ON t.mpan = a.mpan ORDER BY a.id DESC LIMIT 1").fetchone()
    assert reason == "approved"
    assert atc is not None  # the switch keeps the ATC only for a verified ARQC
    assert cvn == CVNS[scheme, form]
