"""Probes of what lies outside the filesystem: nfcpy (asked in a child process killed after a
timeout, so a wedged reader cannot hang the doctor), the switch (a TCP connect and a 0800 echo,
each with a socket timeout, at the address :func:`emvtap.endpoints.parse_host_port` reads) and
``emvtap.capk``'s CA public key store."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from emvtap import iso8583
from emvtap.capk import CapkStore
from lab.doctor.readers import NFCPY_DRIVER_ROLES, TERMINAL


@dataclass(frozen=True)
class NfcDevice:
    """A USB device nfcpy has a driver for. ``status``: ``ok`` (opened and closed again),
    ``busy`` (a kernel driver or another process holds it), ``denied``, ``error``."""

    path: str
    vid: int
    pid: int
    driver: str
    status: Literal["ok", "busy", "denied", "error"]
    name: str = ""
    error: str = ""

    @property
    def roles(self) -> frozenset[str]:
        return NFCPY_DRIVER_ROLES.get(self.driver, TERMINAL)


@dataclass(frozen=True)
class NfcProbe:
    devices: tuple[NfcDevice, ...]
    error: str | None = None


class NfcProbeTimeout(Exception):
    """nfcpy did not finish probing in time (its child process was killed)."""


# Runs in a child process, so that a reader stuck in libusb cannot hang the doctor.
_NFC_PROBE_SCRIPT = r"""
import errno, json, sys
def done(devices, error):
    print(json.dumps({"devices": devices, "error": error}))
    sys.exit(0)
try:
    import nfc, nfc.clf.device, nfc.clf.transport
except Exception as error:
    done([], "nfcpy is not importable: %s" % error)
try:
    found = nfc.clf.transport.USB.find("usb") or []
except Exception as error:
    done([], "libusb: %s" % error)
states = {errno.EACCES: "denied", errno.EPERM: "denied", errno.EBUSY: "busy"}
devices = []
for vid, pid, bus, dev in found:
    driver = nfc.clf.device.usb_device_map.get((vid, pid))
    if driver is None:
        continue
    entry = {"path": "usb:%03d:%03d" % (bus, dev), "vid": vid, "pid": pid, "driver": driver,
             "status": "ok", "name": "", "error": ""}
    try:
        clf = nfc.ContactlessFrontend(entry["path"])
    except OSError as error:
        entry.update(status=states.get(error.errno, "error"), error=str(error))
    except Exception as error:
        entry.update(status="error", error="%s: %s" % (type(error).__name__, error))
    else:
        entry["name"] = str(clf.device)
        clf.close()
    devices.append(entry)
done(devices, None)
"""


def probe_nfcpy(timeout: float, argv: Sequence[str] | None = None) -> NfcProbe:
    """What nfcpy sees on USB, asked in a child process that is killed after *timeout* seconds
    (:class:`NfcProbeTimeout`). ``argv`` replaces the child's command (tests)."""
    command = list(argv) if argv is not None else [sys.executable, "-c", _NFC_PROBE_SCRIPT]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise NfcProbeTimeout(f"nfcpy probe did not finish within {timeout:g} s") from error
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return NfcProbe((), f"nfcpy probe exited with {done.returncode}: {last}")
    try:
        raw = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return NfcProbe((), f"nfcpy probe printed no result: {done.stdout[-200:]!r}")
    return NfcProbe(tuple(NfcDevice(**entry) for entry in raw["devices"]), raw["error"])


def tcp_connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def iso8583_echo(host: str, port: int, timeout: float) -> Mapping[str, str]:
    """A network-management echo (0800, DE 70 = 301) through ``emvtap.iso8583.exchange``."""
    now = datetime.now(UTC)
    fields = {
        "t": "0800",
        "7": now.strftime("%m%d%H%M%S"),
        "11": now.strftime("%H%M%S"),
        "70": "301",
    }
    return iso8583.exchange(host, port, fields, timeout)


@dataclass(frozen=True)
class CapkSummary:
    source: str
    count: int


def load_capk_summary() -> CapkSummary:
    """Load ``emvtap.capk``'s default store and count its keys."""
    return CapkSummary("emvtap.capk.CapkStore.default()", len(CapkStore.default()))
