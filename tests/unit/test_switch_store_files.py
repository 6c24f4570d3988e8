"""The switch's secrets are owner-only (mode 0600) whatever existed before: a store file, its
-wal and -shm that an older version or another tool left world-readable, and the admin token."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from switch.admin import load_or_create_token
from switch.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_an_existing_world_readable_store_and_its_wal_and_shm_become_0600(tmp_path):
    db = tmp_path / "switch.db"
    with Store(db):
        pass
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").touch()
        os.chmod(f"{db}{suffix}", 0o644)
    # another process keeps the WAL open, so the files stay while the store opens
    other = sqlite3.connect(db)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("SELECT 1 FROM sqlite_master").fetchall()
    try:
        with Store(db) as store:
            store.add_account(balance=1)
            assert {s: mode(Path(f"{db}{s}")) for s in ("", "-wal", "-shm")} == {
                "": 0o600,
                "-wal": 0o600,
                "-shm": 0o600,
            }
    finally:
        other.close()


def test_a_new_store_creates_its_wal_and_shm_0600(tmp_path):
    db = tmp_path / "switch.db"
    with Store(db) as store:
        store.add_account(balance=1)
        assert mode(db) == 0o600
        assert mode(Path(f"{db}-wal")) == 0o600
        assert mode(Path(f"{db}-shm")) == 0o600


def test_an_existing_world_readable_admin_token_becomes_0600(tmp_path):
    path = tmp_path / "admin.token"
    path.write_text("tok\n")
    path.chmod(0o644)
    assert load_or_create_token(path) == "tok"
    assert mode(path) == 0o600
