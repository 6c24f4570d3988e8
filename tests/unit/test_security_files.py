"""Files that hold secrets are readable by their owner only (mode 0600), whatever the umask:
card profiles (ICC master keys, the ICC RSA private key, limited-use keys), key batches, the
switch's SQLite store (token master keys, limited-use keys, PIN hashes) and its WAL."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from emvtap.perso import generate_profile
from emvtap.private_files import write_private_text
from lab.hil.cards import Card, _write_profile
from lab.hil.model import CardForm, CardSpec
from switch.cli import switch_group
from switch.store import Store
from switch.tsp import provision


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask():
    """The most permissive umask: whatever is private is so by its own doing."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_written_profile_is_0600(tmp_path):
    out = tmp_path / "card.json"
    generate_profile(1).save(out)
    assert mode(out) == 0o600


def test_a_profile_written_over_a_world_readable_file_becomes_0600(tmp_path):
    out = tmp_path / "card.json"
    out.write_text("old")
    out.chmod(0o644)
    generate_profile(1).save(out)
    assert mode(out) == 0o600
    assert json.loads(out.read_text())["pan"] == generate_profile(1).pan


def test_write_private_text_writes_the_text(tmp_path):
    out = tmp_path / "x"
    write_private_text(out, "secret\n")
    assert out.read_text() == "secret\n" and mode(out) == 0o600


def test_the_switch_store_and_its_wal_are_0600(tmp_path):
    db = tmp_path / "switch.db"
    with Store(db) as store:
        store.add_account(balance=1, pin_hash="pbkdf2-sha256$1$00$00")
        assert mode(db) == 0o600
        wal = Path(f"{db}-wal")
        assert wal.exists() and mode(wal) == 0o600


def test_provisioned_profile_and_key_batches_from_the_cli_are_0600(tmp_path):
    db = tmp_path / "switch.db"

    def run(*args: object) -> str:
        result = CliRunner().invoke(switch_group, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    account = run("account", "--db", db, "--balance", "10.00").strip()
    span = "6228480000000015"
    run("card", "--db", db, "--account", account, span)
    run("provision", "--db", db, "--span", span, "--device-id", "p", "--device-type", "hce",
        "--seed", 3, "--out", tmp_path / "dc.json", "--keys-out", tmp_path / "keys.json")
    mpan = json.loads((tmp_path / "dc.json").read_text())["pan"]
    run("replenish", "--db", db, "--count", 2, "--out", tmp_path / "b2.json", mpan)
    names = ("dc.json", "keys.json", "b2.json", "switch.db")
    assert {n: oct(mode(tmp_path / n)) for n in names} == dict.fromkeys(names, oct(0o600))


def test_tsp_provision_writes_the_profile_0600(tmp_path):
    with Store(tmp_path / "s.db") as store:
        account = store.add_account(balance=100)
        store.add_card("6228480000000011", account, "3112")
        provision(store, span="6228480000000011", device_id="phone", device_type="handset-se",
                  token_requestor_id="50012345678", out=tmp_path / "dc.json")
    assert mode(tmp_path / "dc.json") == 0o600


def test_the_hil_runner_writes_card_profiles_0600(tmp_path):
    card = Card(CardSpec("phone", CardForm.HCE, None))
    _write_profile(card, tmp_path, generate_profile(1).to_dict())
    assert card.profile is not None and mode(card.profile) == 0o600
