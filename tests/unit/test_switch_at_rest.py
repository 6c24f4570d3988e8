"""Card data unreadable at rest (PCI DSS v4.0 3.5.1; switch.sealing): a copy of the store's
files - the database, its -wal and its -shm - yields no card number (SPAN) and no key, in ASCII
or BCD, after every path that writes one: enrolment, provisioning (SE and HCE limited-use
keys), renewal with a new PAN, a lost card, approvals, declines, a clear PAN sent in DE 2 and in
track 2, DE 55 that does not parse, and reversals."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emvtap import tlv
from emvtap.iso8583 import decode_message, encode_message
from switch.authorize import Authorizer
from switch.enroll import enroll_profile
from switch.lifecycle import apply_event
from switch.pin import hash_pin, verify_pin
from switch.sealing import KEK_ENV, kek_path
from switch.store import Store, StoreError
from switch.testing import SimCard, make_profile
from switch.tsp import provision

NOW = datetime(2025, 11, 26, 11, 30, tzinfo=UTC)
STRANGER = "6212345678901234566"  # a clear card number no token stands for


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits + "F" * (len(digits) % 2))


def needles(pans: list[str], keys: list[bytes]) -> dict[str, bytes]:
    """Every form in which a PAN or a key could sit in a file."""
    out: dict[str, bytes] = {}
    for pan in pans:
        out[f"PAN …{pan[-4:]} ASCII"] = pan.encode()
        out[f"PAN …{pan[-4:]} BCD"] = _bcd(pan)
        out[f"PAN …{pan[-4:]} BCD (no pad)"] = bytes.fromhex(pan[: len(pan) // 2 * 2])
    for i, key in enumerate(keys):
        out[f"key {i} raw"] = key
        out[f"key {i} HEX"] = key.hex().upper().encode()
        out[f"key {i} hex"] = key.hex().encode()
    return out


def found_in(paths: list[Path], wanted: dict[str, bytes]) -> list[str]:
    hits = []
    for path in paths:
        if not path.exists():
            continue
        data = path.read_bytes()
        hits += [f"{name} in {path.name}" for name, needle in wanted.items() if needle in data]
    return hits


@pytest.fixture
def busy_store(tmp_path, monkeypatch):
    """A store that went through every path that writes card data; left open (WAL in use)."""
    monkeypatch.delenv(KEK_ENV, raising=False)
    db = tmp_path / "switch.db"
    store = Store(db)
    se = make_profile(31)
    pans = [se["token"]["span"]]
    keys = [bytes.fromhex(v) for v in se["applications"][0]["keys"].values()]
    enroll_profile(store, se, balance=100_000, pin="2468")
    with store.transaction():
        account = store.card(se["token"]["span"]).account_id
        extra = make_profile(32)["token"]["span"]
        store.add_card(extra, account, "3112", keys=(b"\x11" * 16, b"\x22" * 16, b"\x33" * 16))
    pans.append(extra)
    keys += [b"\x11" * 16, b"\x22" * 16, b"\x33" * 16]
    for device_type, device in (("hce", "phone-hce"), ("wearable-se", "watch")):
        with store.transaction():
            result = provision(
                store,
                span=extra,
                device_id=device,
                device_type=device_type,
                token_requestor_id="50012345678",
                now=NOW,
            )
        app = result.profile["applications"][0]
        keys += [bytes.fromhex(v) for v in app["keys"].values() if set(v) != {"0"}]
        for luk in app["extra"].get("limited_use_keys", []):
            keys += [bytes.fromhex(luk[name]) for name in ("ac", "smi", "smc")]
    keys += [k for t in store.tokens() for k in (t.key_ac, t.key_smi, t.key_smc)]
    keys += [store.limited_use_key(t.mpan, 1)[0] for t in store.tokens() if t.limited_use]
    renewed = make_profile(33)["token"]["span"]
    with store.transaction():
        apply_event(store, "card.renewed", extra, channel="bank", params={"new_span": renewed})
        apply_event(store, "card.lost", renewed, channel="bank")
    pans.append(renewed)

    host = Authorizer(store, clock=lambda: NOW)
    card = SimCard.from_profile(se)
    approved = card.request(1000)
    with store.transaction():
        assert decode_message(host.handle_raw(encode_message(approved)))["39"] == "00"
        reversal = {
            "t": "0400",
            "2": approved["2"],
            "4": f"{400:012d}",
            "11": "900001",
            "37": approved["37"],
            "41": approved["41"],
            "49": "156",
            "90": "0100" + approved["11"] + "0" * 32,
        }
        assert decode_message(host.handle_raw(encode_message(reversal)))["39"] == "00"
        # a client sends a clear card number: in DE 2, in track 2, inside DE 55 that is not TLV
        stranger = card.request(100) | {"2": STRANGER}
        assert decode_message(host.handle_raw(encode_message(stranger)))["39"] == "14"
        tracked = card.request(100)
        del tracked["2"]
        tracked["35"] = f"{STRANGER}=30121010000000000"
        host.handle_raw(encode_message(tracked))
        broken = card.request(100)
        broken["55"] = bytes(broken["55"])[:-2] + b"\x5a\x0a" + _bcd(STRANGER)
        with pytest.raises(tlv.TlvError):
            tlv.decode(broken["55"])
        assert decode_message(host.handle_raw(encode_message(broken)))["39"] == "30"
    pans.append(STRANGER)
    yield store, db, pans, keys
    store.close()


def files_of(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm")]


def test_the_store_files_alone_reveal_no_pan_and_no_key(busy_store, tmp_path):
    store, db, pans, keys = busy_store
    assert Path(f"{db}-wal").stat().st_size > 0  # the WAL holds data too, and is scanned
    wanted = needles(pans, keys)
    assert found_in(files_of(db), wanted) == []
    store.close()  # checkpoint: everything in the main file now
    assert found_in(files_of(db), wanted) == []
    # and the clear values are what the store's API returns with the key-encryption key
    with Store(db) as again:
        assert again.card(pans[1]).replaced_by == pans[2]
        assert {t.span for t in again.tokens()} == {pans[0], pans[2]}  # remapped on renewal


def test_the_scan_finds_what_a_clear_store_would_hold(tmp_path):
    """The needles and the scan are sound: a database with the values in clear is caught."""
    db = tmp_path / "clear.db"
    pan, key = "6228480000000011", bytes(range(16))
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (pan TEXT, bcd BLOB, key TEXT)")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", (pan, _bcd(pan), key.hex().upper()))
    hits = found_in([db], needles([pan], [key]))
    assert "PAN …0011 ASCII in clear.db" in hits
    assert "PAN …0011 BCD in clear.db" in hits
    assert "key 0 HEX in clear.db" in hits


def test_the_event_log_names_a_card_by_keyed_hash_only(busy_store):
    store, _db, pans, _keys = busy_store
    subjects = [e["subject"] for e in store.events()]
    assert any(s.startswith("card:") for s in subjects)
    assert not [s for s in subjects if any(p in s for p in pans)]
    assert f"card:{store.pan_ref(pans[2])}" in subjects


def test_stored_requests_mask_the_pan_even_when_de55_does_not_parse(busy_store):
    store, _db, _pans, _keys = busy_store
    requests = [r[0] for r in store.db.execute("SELECT request FROM authorizations")]
    assert any("not TLV" in r for r in requests)
    assert all(STRANGER not in r for r in requests)
    assert any(STRANGER[:6] + "*********" + STRANGER[-4:] in r for r in requests)


def test_a_copy_without_its_key_encryption_key_cannot_be_opened(busy_store, tmp_path):
    store, db, pans, _keys = busy_store
    store.close()
    stolen = tmp_path / "stolen" / "switch.db"
    stolen.parent.mkdir()
    shutil.copy(db, stolen)  # the database file alone; a new KEK is made next to it
    with pytest.raises(StoreError, match="another key-encryption key"):
        Store(stolen)


def test_the_kek_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(KEK_ENV, "ab" * 32)
    db = tmp_path / "env.db"
    with Store(db) as store:
        store.add_account(balance=1)
    assert not kek_path(db).exists()
    monkeypatch.setenv(KEK_ENV, "cd" * 32)
    with pytest.raises(StoreError, match="another key-encryption key"):
        Store(db)
    monkeypatch.setenv(KEK_ENV, "not hex")
    with pytest.raises(StoreError, match="not hex"):
        Store(db)


def test_the_kek_file_is_owner_only_whatever_existed_before(tmp_path, monkeypatch):
    monkeypatch.delenv(KEK_ENV, raising=False)
    db = tmp_path / "switch.db"
    Store(db).close()
    path = kek_path(db)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.chmod(0o644)
    Store(db).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_store_of_schema_1_is_refused_with_what_to_do(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("CREATE TABLE cards (span TEXT PRIMARY KEY)")
    with pytest.raises(StoreError, match=r"schema 1.*in clear.*enroll the cards again"):
        Store(db)


def test_the_pin_hash_is_scrypt_and_verifies():
    from switch.pin import TEST_ZPK, encipher_pin_block

    stored = hash_pin("2468")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 1 << 14, 8, 1)
    block = encipher_pin_block(TEST_ZPK, "2468", "6250940000000019")
    assert verify_pin(stored, TEST_ZPK, block, "6250940000000019")
    assert not verify_pin(
        stored,
        TEST_ZPK,
        encipher_pin_block(TEST_ZPK, "2469", "6250940000000019"),
        "6250940000000019",
    )


def test_the_cli_refuses_a_schema_1_store_with_a_message_not_a_traceback(tmp_path):
    from click.testing import CliRunner

    from switch.cli import switch_group

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    result = CliRunner().invoke(switch_group, ["show", "accounts", "--db", str(db)])
    assert result.exit_code == 4  # environment: emvtap.exit_codes
    assert "schema 1" in result.output and "Traceback" not in result.output


def test_the_retransmission_digest_over_the_pan_is_keyed(tmp_path):
    """The fields that identify a retransmission include DE 2: stored as an unkeyed hash, the
    masked request beside it would let the 6 hidden digits be guessed against it."""
    request = SimCard.from_profile(make_profile(34)).request(100) | {"2": STRANGER}
    digests = []
    for i, kek in enumerate((b"\x01" * 32, b"\x02" * 32)):
        with Store(tmp_path / f"s{i}.db", kek=kek) as store:
            with store.transaction():
                Authorizer(store, clock=lambda: NOW).handle_raw(encode_message(request))
            digests.append(store.db.execute("SELECT content_key FROM authorizations").fetchone()[0])
    assert digests[0] != digests[1]


def test_the_history_shows_the_card_masked(busy_store):
    from emvtap.masking import mask_pan

    store, _db, pans, _keys = busy_store
    approved = [a for a in store.authorizations() if a["reason"] == "approved"]
    assert [a["span"] for a in approved] == [mask_pan(pans[0])]
    unknown = [a for a in store.authorizations() if a["reason"] == "unknown_token"]
    assert unknown and all(a["mpan"].startswith("ref:") for a in unknown)
