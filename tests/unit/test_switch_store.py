"""switch.store: the vault's rules held by the schema itself (docs/domain.md, "SPAN and MPAN"), the
append-only event log, durability across reopen."""

from __future__ import annotations

import sqlite3

import pytest

from switch.store import Store, StoreError

KEYS = (b"\x01" * 16, b"\x02" * 16, b"\x03" * 16)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.db") as s:
        account = s.add_account(balance=100)
        s.add_card("6228480000000011", account, "3112")
        s.add_device("dev-a", "handset-se", account)
        s.add_device("dev-b", "wearable-se", account)
        yield s


def _token(store: Store, mpan: str, device: str, **kw) -> None:
    store.add_token(
        mpan=mpan,
        span="6228480000000011",
        device_id=device,
        token_expiry="3012",
        psn="01",
        token_requestor_id="50012345678",
        par="U001" + "0" * 25,
        keys=KEYS,
        **kw,
    )


def test_store_uses_wal_and_full_synchronous(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_one_span_is_loaded_on_one_device_only_once(store):
    _token(store, "6250940000000019", "dev-a")
    with pytest.raises(StoreError):
        _token(store, "6250940000000027", "dev-a")


def test_same_span_on_another_device_gets_its_own_mpan(store):
    _token(store, "6250940000000019", "dev-a")
    _token(store, "6250940000000027", "dev-b")
    assert {t.device_id for t in store.tokens(span="6228480000000011")} == {"dev-a", "dev-b"}


def test_a_deleted_token_frees_the_span_for_the_device(store):
    _token(store, "6250940000000019", "dev-a")
    store.update_token("6250940000000019", state="deleted")
    _token(store, "6250940000000027", "dev-a")


def test_a_device_has_at_most_one_default_card(store):
    store.add_card("6228480000000029", 1, "3112")
    _token(store, "6250940000000019", "dev-a", is_default=True)
    with pytest.raises(StoreError):
        store.add_token(
            mpan="6250940000000027",
            span="6228480000000029",
            device_id="dev-a",
            token_expiry="3012",
            psn="01",
            token_requestor_id="50012345678",
            par="U001" + "0" * 25,
            keys=KEYS,
            is_default=True,
        )


def test_events_are_append_only(store):
    seq = store.append_event(channel="bank", event="token.suspend", subject="token:x")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE events SET channel = 'device' WHERE seq = ?", (seq,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM events")
    assert [e["event"] for e in store.events()] == ["token.suspend"]


def test_token_repr_never_shows_keys_or_the_full_mpan(store):
    _token(store, "6250940000000019", "dev-a")
    text = repr(store.token("6250940000000019"))
    assert "0101" not in text and "6250940000000019" not in text


def test_rolled_back_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.post(1, -50)
        raise RuntimeError("boom")
    assert store.account(1).balance == 100


def test_nested_transaction_rolls_back_only_its_savepoint(store):
    with store.transaction():
        store.post(1, -10)
        with pytest.raises(RuntimeError), store.transaction():
            store.post(1, -20)
            raise RuntimeError("one request failed")
    assert store.account(1).balance == 90


def test_committed_data_is_there_after_reopening(tmp_path):
    path = tmp_path / "d.db"
    with Store(path) as s, s.transaction():
        s.add_account(balance=42)
    with Store(path) as s:
        assert s.account(1).balance == 42
