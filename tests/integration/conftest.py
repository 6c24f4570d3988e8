"""Fixtures for the virtual hardware (see virtual_hw.py for the facts they follow).

- ``pcscd`` (session): pcscd is running with the vpcd readers, started by
  scripts/pcscd-start.sh if it was not. A pcscd that cannot be started fails the test with the
  script's output; it is never a skip (make test installs everything it needs).
- ``vpcd_slot``: one vpcd slot held exclusively for the test (``flock`` on
  /tmp/emvtap-vpcd-PORT.lock, shared by every developer and CI job on the machine), empty
  when the test starts; yields ``VpcdSlot(reader, port)``.
- ``udp_port``: a free UDP port for nfcpy's ``udp`` driver.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from virtual_hw import (
    PcscdError,
    VpcdSlot,
    free_udp_port,
    start_pcscd,
    vpcd_slot_lock,
    wait_for_reader,
)


@pytest.fixture(scope="session")
def pcscd() -> None:
    try:
        start_pcscd()
    except PcscdError as exc:
        pytest.fail(f"pcscd is needed for this test and could not be started:\n{exc}")


@pytest.fixture
def vpcd_slot(pcscd: None) -> Iterator[VpcdSlot]:
    with vpcd_slot_lock() as slot:
        try:
            wait_for_reader(slot.reader, present=False, timeout=5.0)
        except TimeoutError:
            pytest.fail(
                f"{slot.reader} still holds a card although its lock was free: a card process "
                f"outside the lock (emvtap card run --link vpcd:…:{slot.port}?) is connected"
            )
        yield slot
        # A card the test left connected would greet the next test; let it go first.
        try:
            wait_for_reader(slot.reader, present=False, timeout=5.0)
        except TimeoutError:
            pytest.fail(f"the test left a card connected to {slot.reader}")


@pytest.fixture
def udp_port() -> int:
    return free_udp_port()
