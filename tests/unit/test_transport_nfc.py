"""nfcpy reader driver pieces that need no radio: ATR from ATS (PC/SC Part 3), the
on-discover rule for phones, spec checks."""

from __future__ import annotations

import socket

import pytest

from hce_card.link import open_link
from hce_card.link.nfc_target import NfcTargetLink
from terminal.transport import open_transport
from terminal.transport.nfc import NfcTransport, _accept_iso_dep, atr_from_ats


class Target:
    def __init__(self, sel_res: str | None = None, sensb_res: str | None = None) -> None:
        self.sel_res = bytes.fromhex(sel_res) if sel_res else None
        self.sensb_res = bytes.fromhex(sensb_res) if sensb_res else None


def test_atr_of_an_ats_without_historical_bytes_is_the_acr122u_one() -> None:
    assert atr_from_ats(bytes.fromhex("0578807002")) == bytes.fromhex("3B80800101")


def test_atr_carries_the_ats_historical_bytes_and_tck() -> None:
    atr = atr_from_ats(bytes.fromhex("0A78807002") + bytes.fromhex("8031C073D6"))
    assert atr[:4] == bytes.fromhex("3B858001")
    assert atr[4:-1] == bytes.fromhex("8031C073D6")
    tck = 0
    for byte in atr[1:]:
        tck ^= byte
    assert tck == 0  # TCK makes the XOR of T0..TCK zero


def test_atr_keeps_at_most_15_historical_bytes() -> None:
    atr = atr_from_ats(bytes([2 + 20, 0x00]) + bytes(20))
    assert atr[1] == 0x8F and len(atr) == 4 + 15 + 1


@pytest.mark.parametrize(
    ("target", "accepted"),
    [
        (Target("20"), True),  # ISO-DEP card
        (Target("60"), True),  # phone: ISO-DEP and NFC-DEP (dropped by nfcpy's default)
        (Target("28"), True),  # card with MIFARE Classic emulation as well
        (Target("40"), False),  # NFC-DEP only
        (Target("00"), False),  # Type 2 tag
        (Target(sensb_res="50" + "00" * 11), True),  # Type B is ISO-DEP
    ],
)
def test_on_discover_takes_every_iso_dep_target_phones_included(
    target: Target, accepted: bool
) -> None:
    assert _accept_iso_dep(target) is accepted


@pytest.mark.parametrize(
    "spec", ["nfc:", "nfc:pcsc:0", "nfc:udp:host:port", "nfc:udp:a:1:2", "nfc:bluetooth"]
)
def test_bad_nfc_reader_specs_are_value_errors(spec: str) -> None:
    with pytest.raises(ValueError, match="nfc"):
        open_transport(spec)


@pytest.mark.parametrize(
    "spec", ["nfc:usb", "nfc:usb:054c:06c3", "nfc:usb:001:023", "nfc:udp", "nfc:udp:127.0.0.1:5"]
)
def test_nfc_reader_specs_open_without_touching_a_device(spec: str) -> None:
    transport = open_transport(spec)
    assert isinstance(transport, NfcTransport)
    assert transport.spec == spec


def test_nfc_card_link_specs() -> None:
    link = open_link("nfc:udp:127.0.0.1:50999", object())  # type: ignore[arg-type]
    assert isinstance(link, NfcTargetLink)
    assert link.path == "udp:127.0.0.1:50999"
    assert link.uid[0] == 0x08 and len(link.uid) == 4
    link.isodep.close()


@pytest.mark.parametrize("spec", ["nfc:", "nfc:acr122", "nfc:udp:h:p"])
def test_bad_nfc_card_link_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        open_link(spec, object())  # type: ignore[arg-type]


def test_udp_ports_with_a_service_name_are_refused_with_the_reason() -> None:
    """nfcpy 1.0.4 turns 30865 into "csync2" (/etc/services) and fails on int()."""
    named = next(p for p in (30865, 5353, 161, 53) if _has_service_name(p))
    with pytest.raises(ValueError, match="/etc/services"):
        open_transport(f"nfc:udp:127.0.0.1:{named}")
    with pytest.raises(ValueError, match="/etc/services"):
        open_link(f"nfc:udp:127.0.0.1:{named}", object())  # type: ignore[arg-type]


def _has_service_name(port: int) -> bool:
    return not socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit()


def test_nfc_card_link_refuses_a_sak_without_iso_dep() -> None:
    with pytest.raises(ValueError, match="SEL_RES"):
        NfcTargetLink(object(), "udp", sel_res=b"\x00")  # type: ignore[arg-type]
