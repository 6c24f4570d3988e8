"""Network inputs: servers bind 127.0.0.1 unless told otherwise, and what arrives from the
network is bounded in size (the admin API's JSON bodies, ISO-DEP chained commands)."""

from __future__ import annotations

import http.client
import socket
import sys
from pathlib import Path

import nfc  # noqa: F401  (a broken nfcpy must fail this file, not skip the check)
import pytest

from hce_card.link.isodep import DEFAULT_ATS, MAX_COMMAND_APDU, IsoDepCard, SessionEnd
from hce_card.link.nfc_target import NfcTargetLink
from switch.admin import AdminServer
from switch.store import Store

pytestmark = pytest.mark.timeout(30)

TOKEN = "s3cret-admin-token"


# --- the HCE card on nfcpy's udp radio simulation ---------------------------------------------


class _Card:
    atr = bytes.fromhex("3B8880010000000000718100F9")

    def process(self, apdu: bytes) -> bytes:
        return b"\x90\x00"

    def reset(self) -> None:
        pass


def _free_udp_port() -> int:
    """An ephemeral port /etc/services has no name for (nfcpy 1.0.4 cannot use named ones)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit():
            return port
    raise RuntimeError("no unnamed UDP port")


def _udp_local_addresses(port: int) -> set[str]:
    """Local IPv4 addresses of the UDP sockets bound to ``port`` (from /proc/net/udp)."""
    found = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        address, port_hex = line.split()[1].split(":")
        if int(port_hex, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/udp")
def test_the_card_on_nfc_udp_binds_the_loopback_address_not_every_interface():
    port = _free_udp_port()
    link = NfcTargetLink(_Card(), f"udp:127.0.0.1:{port}")
    link.start()
    try:
        assert link.listening.wait(10), "the card did not bind its port"
        assert _udp_local_addresses(port) == {"127.0.0.1"}
    finally:
        link.close()


# --- the switch's admin API -------------------------------------------------------------------


@pytest.fixture
def admin(tmp_path):
    db = tmp_path / "switch.db"
    Store(db).close()
    server = AdminServer(db, TOKEN, port=0)
    server.start()
    yield server
    server.stop()


def _post_with_length(admin: AdminServer, length: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", admin.port, timeout=5)
    try:
        conn.putrequest("POST", "/api/accounts")
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", length)
        conn.endheaders(b"{}")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("length", ["-1", "lots"])
def test_the_admin_api_refuses_a_body_length_it_cannot_bound(admin, length):
    """``read(-1)`` would read until the client closes; a length that is not a number
    must not end in a traceback."""
    assert _post_with_length(admin, length) == 400


def test_the_admin_api_still_refuses_an_oversized_body(admin):
    assert _post_with_length(admin, str((1 << 20) + 1)) == 413


# --- ISO-DEP chaining on the card side --------------------------------------------------------


class _Reader:
    """A scripted PCD (see tests/unit/test_link_isodep.py)."""

    def __init__(self, *script: bytes) -> None:
        self.script = list(script)
        self.sent: list[bytes] = []

    def exchange(self, frame: bytes | None, timeout: float) -> bytes | None:
        from hce_card.link.isodep import FieldOff

        if frame is not None:
            self.sent.append(frame)
        if timeout == 0:
            return None
        if not self.script:
            raise FieldOff("end of script")
        return self.script.pop(0)


def test_a_chained_command_longer_than_any_apdu_is_refused_unread():
    seen: list[int] = []
    picc = IsoDepCard(lambda apdu: seen.append(len(apdu)) or b"\x90\x00", DEFAULT_ATS)
    picc.activate(bytes.fromhex("E080"))
    chunk = bytes(250)
    blocks = MAX_COMMAND_APDU // len(chunk) + 2
    frames = [bytes([0x12 | (n & 1)]) + chunk for n in range(1, blocks)]
    last = bytes([0x02 | (blocks & 1)]) + chunk
    reader = _Reader(*frames, last)
    assert picc.run(reader, b"\x12" + chunk) == SessionEnd.FIELD_OFF
    assert seen == []  # the card never saw it
    assert reader.sent[-1][1:] == b"\x67\x00"  # wrong length
    assert len(picc._rx_chain) == 0


def test_a_chained_command_of_normal_size_still_reaches_the_card():
    seen: list[bytes] = []
    picc = IsoDepCard(lambda apdu: seen.append(apdu) or b"\x90\x00", DEFAULT_ATS)
    picc.activate(bytes.fromhex("E080"))
    command = bytes.fromhex("80E20000FF") + bytes(range(255))
    reader = _Reader(b"\x13" + command[100:200], b"\x02" + command[200:])
    picc.run(reader, b"\x12" + command[:100])
    assert seen == [command]
