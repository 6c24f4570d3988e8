"""``emvtap readers``: the role of each nfcpy device comes from its driver (an ACR122U through
nfcpy is a terminal only; PN533, RC-S380 can also emulate a card); a probe that hangs is cut
off and said so; pcscd missing is a note, not a failure."""

from __future__ import annotations

import pytest

import lab.readers as readers
from lab.doctor.probes import NfcDevice, NfcProbe, NfcProbeTimeout


def _probe(*devices: NfcDevice) -> object:
    return lambda timeout: NfcProbe(tuple(devices))


def test_nfcpy_roles_by_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "probe_nfcpy", _probe(
        NfcDevice("usb:001:004", 0x072F, 0x2200, "acr122", "ok"),
        NfcDevice("usb:001:005", 0x054C, 0x06C3, "rcs380", "ok", name="SONY RC-S380/P"),
        NfcDevice("usb:001:006", 0x04CC, 0x2533, "pn533", "busy", error="[Errno 16] busy"),
    ))
    found, problem = readers.nfcpy_devices(1.0)
    assert problem is None
    rows = [(r.spec, r.name, r.roles, r.status) for r in found]
    assert rows == [
        ("nfc:usb:001:004", "ACS ACR122U", ["terminal"], "ready"),
        ("nfc:usb:001:005", "SONY RC-S380/P", ["terminal", "card emulator"], "ready"),
        ("nfc:usb:001:006", "NXP PN533", ["terminal", "card emulator"],
         "busy (a kernel driver or pcscd holds it)"),
    ]


def test_a_hanging_nfcpy_probe_is_reported_not_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(timeout: float) -> NfcProbe:
        raise NfcProbeTimeout(f"nfcpy probe did not finish within {timeout:g} s")

    monkeypatch.setattr(readers, "probe_nfcpy", hang)
    monkeypatch.setattr(readers, "pcsc_readers", lambda: [])
    result = readers.list_readers(nfc_timeout=2)
    assert result.readers == []
    assert result.problems == ["nfcpy: nfcpy probe did not finish within 2 s"]


def test_no_pcscd_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def down() -> list[readers.ReaderInfo]:
        raise readers.PcscError("no PC/SC service (pcscd): Service not available.")

    monkeypatch.setattr(readers, "pcsc_readers", down)
    result = readers.list_readers(nfc=False)
    assert result.problems == ["PC/SC: no PC/SC service (pcscd): Service not available."]
