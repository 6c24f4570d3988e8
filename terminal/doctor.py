"""``emvtap doctor``: is this machine ready to be the terminal, the card emulator, or both?

Each check looks at one thing a first tap on real hardware depends on and returns a
:class:`CheckResult`: ``ok``, ``warn``, ``fail``, or ``skip`` with its reason. A ``warn`` or
``fail`` always carries a fix, a command to run. The machine is ready for the role when no check
fails (exit code 0).

==================  =============================================================================
check               looks at
==================  =============================================================================
pcscd               pcscd's process (``/proc/*/comm``) and a PC/SC context (pyscard)
readers             PC/SC readers and known USB readers (sysfs) and the roles they can take
kernel modules      ``/proc/modules``: pn533_usb, pn533, port100 claim the lab's readers
usb permissions     ``/dev/bus/usb/BBB/DDD`` (and serial ttys) of the readers found in sysfs
libccid escape      bit 0x01 of ``ifdDriverOptions`` in the CCID drivers' ``Info.plist``
nfcpy devices       what nfcpy can open, probed in a child process killed after a timeout
switch              TCP connect to ``--switch``; a 0800 echo when ``emvtap.iso8583`` exists
capk                ``emvtap.capk``'s default CA public key store, when that module exists
==================  =============================================================================

Everything the checks read comes through :class:`DoctorEnv`: a filesystem root (``/proc``,
``/sys``, ``/dev``, ``/etc``, ``/usr`` below it), the PC/SC lister, the access test, the nfcpy
prober, the TCP connector, the 8583 echo and the CAPK loader, so tests run on fake trees.
"""

from __future__ import annotations

import errno
import getpass
import grp
import importlib
import importlib.util
import json
import os
import plistlib
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from xml.parsers.expat import ExpatError

__all__ = [
    "CHECKS",
    "FIX",
    "NFCPY_DRIVER_ROLES",
    "READERS",
    "ROLES",
    "STEALING_MODULES",
    "CapkSummary",
    "CheckResult",
    "DoctorEnv",
    "NfcDevice",
    "NfcProbe",
    "NfcProbeTimeout",
    "PcscUnavailable",
    "Reader",
    "Report",
    "SystemView",
    "list_pcsc_readers",
    "mode_bits_access",
    "parse_host_port",
    "probe_nfcpy",
    "render_table",
    "run_doctor",
]

Status = Literal["ok", "warn", "fail", "skip"]
Role = Literal["terminal", "emulator", "both"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "skip")
ROLES: tuple[Role, ...] = ("terminal", "emulator", "both")

TERMINAL = frozenset({"terminal"})
EMULATOR = frozenset({"emulator"})
BOTH = TERMINAL | EMULATOR
#: The reader roles each ``--role`` needs.
ROLE_NEEDS: Mapping[Role, frozenset[str]] = {
    "terminal": TERMINAL,
    "emulator": EMULATOR,
    "both": BOTH,
}

# --- data tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """A row of the reader table (``udev/README.md``, ``udev/60-emvtap-nfc.rules``).

    ``nfcpy_driver``: nfcpy's module for it (``None``: PC/SC only). ``kernel_driver``: the Linux
    module that claims it before pcscd or nfcpy can. ``serial``: a USB-serial bridge that may
    carry a PN532 board (the id is the bridge chip's); listed, not counted as a reader, since
    emvtap's links have no ``nfc:tty`` form.
    """

    vid: int
    pid: int
    name: str
    roles: frozenset[str]
    nfcpy_driver: str | None
    kernel_driver: str | None
    serial: bool = False

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"


READERS: tuple[Reader, ...] = (
    Reader(0x072F, 0x2200, "ACS ACR122U", TERMINAL, "acr122", "pn533_usb"),
    Reader(0x072F, 0x221A, "ACS ACR1251 Dual Reader", TERMINAL, None, None),
    Reader(0x072F, 0x223B, "ACS ACR1252U Dual Reader", TERMINAL, None, None),
    Reader(0x054C, 0x02E1, "Sony RC-S330/S360/S370", TERMINAL, "rcs956", "pn533_usb"),
    Reader(0x04E6, 0x5591, "SCM SCL3711", BOTH, "pn533", "pn533_usb"),
    Reader(0x04CC, 0x2533, "NXP PN533", BOTH, "pn533", "pn533_usb"),
    Reader(0x054C, 0x06C1, "Sony RC-S380/S", BOTH, "rcs380", "port100"),
    Reader(0x054C, 0x06C3, "Sony RC-S380/P", BOTH, "rcs380", "port100"),
    Reader(0x1A86, 0x7523, "PN532 board? (CH340 serial)", BOTH, "pn532", None, serial=True),
    Reader(0x10C4, 0xEA60, "PN532 board? (CP210x serial)", BOTH, "pn532", None, serial=True),
    Reader(0x0403, 0x6001, "PN532 board? (FT232R serial)", BOTH, "pn532", None, serial=True),
    Reader(0x067B, 0x2303, "PN532 board? (PL2303 serial)", BOTH, "pn532", None, serial=True),
)
READERS_BY_ID: Mapping[tuple[int, int], Reader] = {(r.vid, r.pid): r for r in READERS}

#: What each nfcpy driver can be: ``acr122`` refuses every ``listen_*``, ``rcs956`` refuses to
#: listen as a Type 4A target; the PN53x and RC-S380 drivers can be an ISO 14443-4A card.
NFCPY_DRIVER_ROLES: Mapping[str, frozenset[str]] = {
    "acr122": TERMINAL,
    "rcs956": TERMINAL,
    "pn531": BOTH,
    "pn532": BOTH,
    "pn533": BOTH,
    "rcs380": BOTH,
}

#: Labels for PC/SC reader names (first match wins). Every PC/SC reader is a terminal only.
PCSC_READER_NAMES: tuple[tuple[str, str], ...] = (
    (r"ACR122", "ACS ACR122U"),
    (r"ACR125[12]", "ACS ACR1251/ACR1252U"),
    (r"^Virtual PCD", "vpcd virtual reader"),
    (r"OMNIKEY|uTrust|Identiv|SCL01", "CCID contactless reader"),
    (r"", "PC/SC reader, a terminal if it has a contactless slot"),
)

#: Kernel modules that claim the lab's readers, in unloading order, with what they take.
STEALING_MODULES: Mapping[str, str] = {
    "pn533_usb": "ACR122U, SCL3711, PN533, RC-S330/360/370",
    "pn533": "the PN533 core under pn533_usb",
    "port100": "RC-S380",
}

RULES_NAME = "60-emvtap-nfc.rules"
DEFAULT_GROUP = "plugdev"
RULES_DIRS = ("etc/udev/rules.d", "run/udev/rules.d", "usr/lib/udev/rules.d", "lib/udev/rules.d")
MODPROBE_DIRS = ("etc/modprobe.d", "run/modprobe.d", "usr/lib/modprobe.d", "lib/modprobe.d")
CCID_PLIST_GLOBS = (
    "usr/lib/pcsc/drivers/*/Contents/Info.plist",
    "usr/lib64/pcsc/drivers/*/Contents/Info.plist",
    "usr/lib/*/pcsc/drivers/*/Contents/Info.plist",
    "usr/local/lib/pcsc/drivers/*/Contents/Info.plist",
)
#: libccid's DRIVER_OPTION_CCID_EXCHANGE_AUTHORIZED: SCardControl(SCARD_CTL_CODE(1)) allowed.
CCID_EXCHANGE_AUTHORIZED = 0x01


def _install_command() -> str:
    script = Path(__file__).resolve().parents[1] / "udev" / "install.sh"
    if script.is_file():
        return f"sudo {script} --apply"
    return "sudo udev/install.sh --apply  # from the emvtap source tree"


#: The fixes, as commands. ``{…}`` fields are filled in by the check.
FIX: Mapping[str, str] = {
    "install": _install_command(),
    "pcscd-install": "sudo apt install pcscd libccid && sudo systemctl enable --now pcscd.socket",
    "pcscd-start": "sudo systemctl enable --now pcscd.socket  # without systemd: sudo pcscd",
    "pcscd-refused": "sudo systemctl restart pcscd.service  # if still refused, polkit denies this"
    " session: allow org.debian.pcsc-lite.access_pcsc (udev/README.md)",
    "plug-terminal": "plug in the terminal reader (ACR122U or a PC/SC contactless reader);"
    " check: pcsc_scan",
    "plug-emulator": "plug in an SCL3711, PN533 or RC-S380 (the ACR122U cannot emulate a card);"
    " check: python -m nfc",
    "plug-second": "plug in a second reader: one device cannot be terminal and emulator at once",
    "unload": "sudo modprobe -r {modules} && {install}",
    "retrigger": "sudo udevadm trigger --action=change --subsystem-match=usb  # or replug it",
    "join-group": "sudo usermod -aG {group} {user}  # then log in again",
    "relogin": "log in again (or: newgrp {group}): {user} is in {group}, this session is not",
    "node-missing": "replug the reader; if the node stays missing: sudo udevadm trigger",
    "libccid-install": "sudo apt install libccid",
    "libccid-escape": "sudo sed -i '/<key>ifdDriverOptions<\\/key>/{{n;s|<string>[^<]*</string>|"
    "<string>{value}</string>|}}' {plist}",
    "pcscd-restart": "sudo systemctl restart pcscd.service",
    "libusb": "sudo apt install libusb-1.0-0",
    "nfcpy-diagnose": "python -m nfc  # nfcpy's own diagnosis of each device",
    "nfcpy-busy": "sudo modprobe -r pn533_usb pn533 port100  # else another process holds it"
    " (pcscd for an ACR122U): sudo lsof /dev/bus/usb/*/*",
    "nfcpy-wedged": "replug the NFC readers (a wedged ACR122U/PN53x stops answering);"
    " then: python -m nfc",
    "switch-start": "emvtap switch serve --db switch.db --host {host} --port {port}"
    "  # or pass the switch's real address; check: nc -zv {host} {port}",
    "switch-log": "check the switch's log for the 0800 (DE 70 = 301) it received",
    "capk-reinstall": "reinstall emvtap (pip install -e .) and check emvtap/data/capk.txt",
}

# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: a ``warn``/``fail`` needs a fix, a ``skip`` its reason."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.name!r}: status {self.status!r} not in {STATUSES}")
        if self.status in ("warn", "fail") and not self.fix:
            raise ValueError(f"check {self.name!r}: a {self.status} needs a fix")
        if self.status == "skip" and not self.detail:
            raise ValueError(f"check {self.name!r}: a skip needs its reason")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class Report:
    role: Role
    results: tuple[CheckResult, ...]

    @property
    def ready(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ready else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "ready": self.ready,
            "checks": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


# --- probes: the defaults of DoctorEnv ----------------------------------------------------------


class PcscUnavailable(Exception):
    """No PC/SC context: pcscd not running or not reachable, or pyscard missing."""


def list_pcsc_readers() -> list[str]:
    """Reader names from pcscd through pyscard (a context, then SCardListReaders)."""
    try:
        from smartcard.Exceptions import SmartcardException
        from smartcard.pcsc.PCSCExceptions import BaseSCardException
        from smartcard.System import readers
    except ImportError as error:
        raise PcscUnavailable(f"pyscard is not importable: {error}") from error
    try:
        return [str(reader) for reader in readers()]
    except (SmartcardException, BaseSCardException) as error:
        raise PcscUnavailable(str(error) or type(error).__name__) from error


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


def iso8583_echo(host: str, port: int, timeout: float) -> Mapping[str, str] | None:
    """A network-management echo (0800, DE 70 = 301) through ``emvtap.iso8583.exchange``;
    ``None`` when this build has no ``emvtap.iso8583``."""
    if importlib.util.find_spec("emvtap.iso8583") is None:
        return None
    iso8583 = importlib.import_module("emvtap.iso8583")
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
    count: int | None  # None: the store does not say how many keys it holds


def load_capk_summary() -> CapkSummary | None:
    """Load ``emvtap.capk``'s default store; ``None`` when this build has no ``emvtap.capk``."""
    if importlib.util.find_spec("emvtap.capk") is None:
        return None
    store = importlib.import_module("emvtap.capk").CapkStore.default()
    count = len(store) if hasattr(store, "__len__") else None
    return CapkSummary("emvtap.capk.CapkStore.default()", count)


def mode_bits_access(uid: int, gids: Iterable[int]) -> Callable[[Path], bool]:
    """An access test from the owner/group/other mode bits, for user *uid* in groups *gids*
    (ACLs ignored): what ``os.access`` answers for that user on a plain file."""
    groups = frozenset(gids)

    def can_open(path: Path) -> bool:
        st = path.stat()
        if uid == 0:
            return True
        if st.st_uid == uid:
            need = stat.S_IRUSR | stat.S_IWUSR
        elif st.st_gid in groups:
            need = stat.S_IRGRP | stat.S_IWGRP
        else:
            need = stat.S_IROTH | stat.S_IWOTH
        return st.st_mode & need == need

    return can_open


def _read_write_access(path: Path) -> bool:
    return os.access(path, os.R_OK | os.W_OK)


def _session_groups() -> frozenset[str]:
    return frozenset(_group_name(gid) for gid in {os.getegid(), *os.getgroups()})


@dataclass
class DoctorEnv:
    """Where the doctor looks. The defaults look at this machine."""

    root: Path = Path("/")
    list_pcsc_readers: Callable[[], list[str]] = list_pcsc_readers
    can_open: Callable[[Path], bool] = _read_write_access
    probe_nfc: Callable[[float], NfcProbe] = probe_nfcpy
    tcp_connect: Callable[[str, int, float], None] = tcp_connect
    switch_echo: Callable[[str, int, float], Mapping[str, str] | None] = iso8583_echo
    load_capk: Callable[[], CapkSummary | None] = load_capk_summary
    user: Callable[[], str] = getpass.getuser
    session_groups: Callable[[], frozenset[str]] = _session_groups
    nfc_timeout: float = 10.0
    switch_timeout: float = 3.0


# --- the system, seen through a root directory --------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str
    used_by: tuple[str, ...]


@dataclass(frozen=True)
class UsbDevice:
    sysname: str
    vid: int
    pid: int
    busnum: int
    devnum: int
    drivers: tuple[str, ...]  # bound to its interfaces
    ttys: tuple[str, ...]  # serial ports on its interfaces

    @property
    def path(self) -> str:
        return f"usb:{self.busnum:03d}:{self.devnum:03d}"

    @property
    def reader(self) -> Reader | None:
        return READERS_BY_ID.get((self.vid, self.pid))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _group_members(name: str) -> frozenset[str]:
    try:
        return frozenset(grp.getgrnam(name).gr_mem)
    except KeyError:
        return frozenset()


class SystemView:
    """``/proc``, ``/sys``, ``/dev``, ``/etc`` and ``/usr`` below *root*."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        return self.root / relative

    def shown(self, path: Path) -> str:
        """*path* as the system sees it (without the root prefix)."""
        relative = path.relative_to(self.root).as_posix()
        return "/" if relative == "." else f"/{relative}"

    def resolve(self, path: Path) -> Path:
        """Follow symlinks, absolute targets taken relative to the root."""
        for _ in range(40):
            if not path.is_symlink():
                return path
            target = Path(os.readlink(path))
            base = (
                self.root / target.relative_to("/")
                if target.is_absolute()
                else path.parent / target
            )
            path = Path(os.path.normpath(base))
        raise OSError(errno.ELOOP, "too many levels of symbolic links", str(path))

    def modules(self) -> dict[str, Module] | None:
        text = _read(self.path("proc/modules"))
        if text is None:
            return None
        modules = {}
        for line in text.splitlines():
            words = line.split()  # name size refcount used_by state address
            if len(words) >= 4:
                used_by = tuple(m for m in words[3].split(",") if m not in ("", "-"))
                modules[words[0]] = Module(words[0], used_by)
        return modules

    def blocked_modules(self) -> set[str]:
        """Modules a modprobe.d file blacklists or replaces with ``/bin/false`` / ``/bin/true``."""
        blocked = set()
        for directory in MODPROBE_DIRS:
            for conf in sorted(self.path(directory).glob("*.conf")):
                for line in (_read(conf) or "").splitlines():
                    words = line.split("#", 1)[0].split()
                    if words[:1] == ["blacklist"] and len(words) >= 2:
                        blocked.add(words[1])
                    if words[:1] == ["install"] and words[2:3] in (["/bin/false"], ["/bin/true"]):
                        blocked.add(words[1])
        return blocked

    def usb_devices(self) -> list[UsbDevice] | None:
        base = self.path("sys/bus/usb/devices")
        if not base.is_dir():
            return None
        devices = []
        for entry in sorted(base.iterdir()):
            values = [_read(entry / n) for n in ("idVendor", "idProduct", "busnum", "devnum")]
            if ":" in entry.name or None in values:
                continue  # an interface, or a device that went away
            try:
                vid, pid, bus, dev = int(values[0], 16), int(values[1], 16), *map(int, values[2:])
            except ValueError:
                continue
            drivers, ttys = [], []
            for interface in sorted(entry.glob(f"{entry.name}:*")):
                if (interface / "driver").is_symlink():
                    drivers.append(Path(os.readlink(interface / "driver")).name)
                ttys += [p.name for p in sorted(interface.glob("tty?*"))]  # usb-serial
                ttys += [p.name for p in sorted(interface.glob("tty/tty?*"))]  # cdc-acm
            devices.append(UsbDevice(entry.name, vid, pid, bus, dev, tuple(drivers), tuple(ttys)))
        return devices

    def usb_node(self, device: UsbDevice) -> Path:
        return self.path(f"dev/bus/usb/{device.busnum:03d}/{device.devnum:03d}")

    def pcscd_pids(self) -> list[int]:
        procs = self.path("proc").glob("[0-9]*")
        return sorted(int(p.name) for p in procs if _read(p / "comm") == "pcscd")

    def installed_rules(self) -> tuple[Path, str] | None:
        """The installed emvtap rules file and the group it grants."""
        for directory in RULES_DIRS:
            rules = self.path(directory) / RULES_NAME
            if rules.is_file():
                match = re.search(r'^[^#\n]*GROUP="([^"]+)"', _read(rules) or "", re.MULTILINE)
                return rules, match[1] if match else DEFAULT_GROUP
        return None

    def ccid_plists(self) -> list[Path]:
        """Info.plist files of the installed PC/SC drivers, symlinks resolved, each once."""
        found = {
            self.resolve(p): None for pattern in CCID_PLIST_GLOBS for p in self.root.glob(pattern)
        }
        return sorted(p for p in found if p.is_file())


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` → (host, port); :class:`ValueError` otherwise."""
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<p6>\d+)|(?P<host>[^:\[\]]+):(?P<port>\d+)", text)
    if not match:
        raise ValueError(f"{text!r} is not HOST:PORT")
    port = int(match["p6"] or match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return match["v6"] or match["host"], port


# --- the checks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A device that can take a role: a PC/SC reader, or a known reader on USB."""

    id: str
    name: str
    roles: frozenset[str]
    counted: bool = True  # False: listed, but emvtap cannot drive it (a serial PN532)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "roles": sorted(self.roles)}


SERIAL_NOTE = (
    "serial adapters are listed, not counted: a PN532 on one is nfcpy's tty:USB0:pn532,"
    " and emvtap's links take nfc:usb and nfc:udp only"
)


def _pcsc_label(name: str) -> str:
    return next(label for pattern, label in PCSC_READER_NAMES if re.search(pattern, name))


class Doctor:
    """The checks for one role. What they probe is probed once and shared."""

    def __init__(self, env: DoctorEnv, role: Role, switch: tuple[str, int] | None) -> None:
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {ROLES}")
        self.env, self.role, self.switch = env, role, switch
        self.needs = ROLE_NEEDS[role]
        self.system = SystemView(env.root)

    @cached_property
    def pcsc(self) -> tuple[list[str] | None, str | None]:
        """(reader names, None) or (None, why there is no PC/SC context)."""
        try:
            return self.env.list_pcsc_readers(), None
        except PcscUnavailable as error:
            return None, str(error)

    @cached_property
    def usb(self) -> list[UsbDevice] | None:
        return self.system.usb_devices()

    @cached_property
    def known_usb(self) -> list[tuple[UsbDevice, Reader]]:
        return [(d, d.reader) for d in self.usb or [] if d.reader is not None]

    def candidates(self) -> list[Candidate]:
        found = [
            Candidate(f"pcsc:{i}", f"{name} ({_pcsc_label(name)})", TERMINAL)
            for i, name in enumerate(self.pcsc[0] or [])
        ]
        for device, reader in self.known_usb:
            where = ", ".join(f"/dev/{t}" for t in device.ttys) or device.path
            name = f"{reader.name} {reader.usb_id}"
            found.append(Candidate(where, name, reader.roles, counted=not reader.serial))
        return found

    def check_pcscd(self) -> CheckResult:
        pids = self.system.pcscd_pids()
        running = f"pcscd running (pid {', '.join(map(str, pids))})" if pids else "no pcscd process"
        readers, error = self.pcsc
        data = {"pids": pids, "readers": readers, "error": error}
        if readers is not None:
            return CheckResult("pcscd", "ok", f"{running}; PC/SC context up", data=data)
        if "terminal" not in self.needs:
            return CheckResult("pcscd", "skip", f"not needed by the emulator ({running}: {error})")
        if not any(self.system.path(p).exists() for p in ("usr/sbin/pcscd", "usr/bin/pcscd")):
            fix = FIX["pcscd-install"]
        else:
            fix = FIX["pcscd-refused"] if pids else FIX["pcscd-start"]
        detail = f"{running}; no PC/SC context: {error}"
        nfc_terminals = [r for _, r in self.known_usb if r.nfcpy_driver and not r.serial]
        if nfc_terminals:
            detail += f" (the terminal can use nfc:usb on the {nfc_terminals[0].name} instead)"
        return CheckResult("pcscd", "warn" if nfc_terminals else "fail", detail, fix, data)

    def check_readers(self) -> CheckResult:
        found = self.candidates()
        terminals = [c for c in found if "terminal" in c.roles and c.counted]
        emulators = [c for c in found if "emulator" in c.roles and c.counted]
        missing = [
            FIX[f"plug-{role}"]
            for role, have in (("terminal", terminals), ("emulator", emulators))
            if role in self.needs and not have
        ]
        distinct = any(t.id != e.id for t in terminals for e in emulators)
        if self.role == "both" and not missing and not distinct:
            missing.append(FIX["plug-second"])
        listing = "; ".join(f"{c.id}: {c.name} [{'/'.join(sorted(c.roles))}]" for c in found)
        notes = [
            note
            for note, applies in (
                ("PC/SC not reachable", self.pcsc[0] is None),
                ("no USB view: /sys/bus/usb/devices missing", self.usb is None),
                (SERIAL_NOTE, not all(c.counted for c in found)),
            )
            if applies
        ]
        detail = "; ".join([listing or "no reader found", *notes])
        data = {"readers": [c.to_dict() for c in found]}
        if missing:
            return CheckResult("readers", "fail", detail, "; ".join(missing), data)
        return CheckResult("readers", "ok", detail, data=data)

    def check_kernel_modules(self) -> CheckResult:
        name = "kernel modules"
        modules = self.system.modules()
        if modules is None:
            return CheckResult(name, "skip", "/proc/modules is not readable (a container?)")
        loaded = [m for m in STEALING_MODULES if m in modules]
        held = [
            f"{reader.name} {device.path} bound to {driver}"
            for device, reader in self.known_usb
            for driver in device.drivers
            if driver in STEALING_MODULES
        ]
        data = {"loaded": loaded, "held": held}
        nfc = modules.get("nfc")
        if loaded:
            unload = (
                [*loaded, "nfc"] if nfc and set(nfc.used_by) <= set(STEALING_MODULES) else loaded
            )
            detail = "; ".join([f"loaded: {', '.join(loaded)}", *held])
            fix = FIX["unload"].format(modules=" ".join(unload), install=FIX["install"])
            return CheckResult(name, "fail", detail, fix, data)
        nfc_note = f"; nfc core loaded for {', '.join(nfc.used_by) or 'nothing'}" if nfc else ""
        unblocked = [m for m in ("pn533_usb", "port100") if m not in self.system.blocked_modules()]
        if unblocked:
            detail = (
                f"none loaded, but {', '.join(unblocked)} not blacklisted: plugging a reader in"
            )
            return CheckResult(name, "warn", f"{detail} loads them{nfc_note}", FIX["install"], data)
        return CheckResult(name, "ok", f"none loaded, all blacklisted{nfc_note}", data=data)

    def check_usb_permissions(self) -> CheckResult:
        name = "usb permissions"
        if self.usb is None:
            return CheckResult(name, "skip", "no USB view: /sys/bus/usb/devices is missing")
        if not self.known_usb:
            return CheckResult(name, "skip", "no known reader is plugged in")
        user = self.env.user()
        rows, fixes, failed = [], [], False
        for device, reader in self.known_usb:
            if reader.serial:
                nodes = [self.system.path(f"dev/{tty}") for tty in device.ttys]
            else:
                nodes = [self.system.usb_node(device)]
            for node in nodes:
                row: dict[str, Any] = {"reader": reader.name, "node": self.system.shown(node)}
                rows.append(row)
                if not node.exists():
                    row.update(access=False, problem="node missing")
                    fixes.append(FIX["node-missing"])
                    continue
                st = node.stat()
                group = _group_name(st.st_gid)
                row.update(
                    mode=stat.filemode(st.st_mode), group=group, access=self.env.can_open(node)
                )
                if row["access"]:
                    continue
                row["problem"] = f"no access for {user}"
                fixes.append(self._permission_fix(reader, group, user))
                # Fatal only where emvtap itself opens the USB device for the role asked for.
                usable = bool(reader.nfcpy_driver) and not reader.serial
                failed |= usable and bool(reader.roles & self.needs)
        detail = "; ".join(
            f"{r['reader']} {r['node']}"
            + (f" {r['mode']} {r['group']}" if "mode" in r else "")
            + f": {r.get('problem', 'ok')}"
            for r in rows
        )
        data = {"user": user, "devices": rows}
        if fixes:
            fix = " ; ".join(dict.fromkeys(fixes))
            return CheckResult(name, "fail" if failed else "warn", detail, fix, data)
        return CheckResult(name, "ok", detail, data=data)

    def _permission_fix(self, reader: Reader, group: str, user: str) -> str:
        installed = self.system.installed_rules()
        if reader.serial:
            return FIX["join-group"].format(group=group, user=user)
        if installed is None:
            return f"{FIX['install']}  # then replug the reader"
        if group != installed[1]:
            return FIX["retrigger"]
        if user in _group_members(group) and group not in self.env.session_groups():
            return FIX["relogin"].format(group=group, user=user)
        return FIX["join-group"].format(group=group, user=user)

    def check_libccid_escape(self) -> CheckResult:
        name = "libccid escape"
        if "terminal" not in self.needs:
            return CheckResult(name, "skip", "only the terminal's PC/SC reader sends escapes")
        rows, fixes = [], []
        for plist in self.system.ccid_plists():
            shown = self.system.shown(plist)
            try:
                with plist.open("rb") as handle:
                    value = plistlib.load(handle).get("ifdDriverOptions")
                options = None if value is None else int(str(value), 0)
            except (OSError, ValueError, ExpatError, plistlib.InvalidFileException) as error:
                rows.append(f"{shown}: unreadable ({error})")
                fixes.append(f"check {shown} (reinstall the driver package)")
                continue
            if options is None:
                continue  # a driver without libccid's options
            rows.append(f"{shown}: ifdDriverOptions 0x{options:04X}")
            if not options & CCID_EXCHANGE_AUTHORIZED:
                value = f"0x{options | CCID_EXCHANGE_AUTHORIZED:04X}"
                fixes.append(FIX["libccid-escape"].format(value=value, plist=shown))
        data = {"plists": rows}
        if not rows:
            detail = "no CCID driver Info.plist with ifdDriverOptions found"
            return CheckResult(name, "warn", detail, FIX["libccid-install"], data)
        detail = "; ".join(rows)
        if fixes:
            detail += ": SCardControl escapes with no card (ACR122U LED, buzzer, firmware) refused"
            fix = " && ".join([*fixes, FIX["pcscd-restart"]])
            return CheckResult(name, "warn", detail, fix, data)
        return CheckResult(name, "ok", f"{detail}: escape commands allowed", data=data)

    def check_nfcpy_devices(self) -> CheckResult:
        name = "nfcpy devices"
        need_emulator = "emulator" in self.needs
        problem: Status = "fail" if need_emulator else "warn"
        try:
            probe = self.env.probe_nfc(self.env.nfc_timeout)
        except NfcProbeTimeout as error:
            return CheckResult(name, problem, str(error), FIX["nfcpy-wedged"])
        data = {"devices": [asdict(d) for d in probe.devices], "error": probe.error}
        if probe.error:
            fix = FIX["libusb"] if "libusb" in probe.error else FIX["nfcpy-diagnose"]
            return CheckResult(name, problem, probe.error, fix, data)
        detail = "; ".join(
            f"{d.path} {d.name or d.driver} {d.vid:04x}:{d.pid:04x}: "
            + ("opens" if d.status == "ok" else f"{d.status} ({d.error})")
            for d in probe.devices
        )
        opening = [d for d in probe.devices if d.status == "ok"]
        if need_emulator and not any("emulator" in d.roles for d in opening):
            detail = f"no emulator-capable device opens; {detail or 'nfcpy sees no device'}"
            return CheckResult(name, "fail", detail, self._nfcpy_fix(probe.devices), data)
        if not probe.devices:
            return CheckResult(name, "skip", "no nfcpy device attached (the terminal uses pcscd)")
        if not opening:
            return CheckResult(name, "warn", detail, self._nfcpy_fix(probe.devices), data)
        return CheckResult(name, "ok", detail, data=data)

    @staticmethod
    def _nfcpy_fix(devices: Sequence[NfcDevice]) -> str:
        statuses = {d.status for d in devices}
        for status, fix in (("denied", FIX["install"]), ("busy", FIX["nfcpy-busy"])):
            if status in statuses:
                return fix
        return FIX["nfcpy-diagnose"] if statuses else FIX["plug-emulator"]

    def check_switch(self) -> CheckResult:
        if self.switch is None:
            return CheckResult("switch", "skip", "no --switch HOST:PORT given")
        host, port = self.switch
        where = f"{host}:{port}"
        data = {"address": where}
        try:
            self.env.tcp_connect(host, port, self.env.switch_timeout)
        except OSError as error:
            fix = FIX["switch-start"].format(host=host, port=port)
            return CheckResult("switch", "fail", f"TCP connect to {where}: {error}", fix, data)
        try:
            reply = self.env.switch_echo(host, port, self.env.switch_timeout)
        except Exception as error:  # another part's protocol code: report it, never crash
            detail = f"TCP connect to {where} ok; 0800 echo failed: {type(error).__name__}: {error}"
            return CheckResult("switch", "fail", detail, FIX["switch-log"], data)
        if reply is None:
            detail = f"TCP connect to {where} ok (no 0800 echo: emvtap.iso8583 not in this build)"
            return CheckResult("switch", "ok", detail, data=data)
        mti, code = reply.get("t"), reply.get("39")
        detail = f"0800 echo to {where} answered {mti}" + (f" with DE 39 = {code}" if code else "")
        if mti != "0810" or code not in (None, "00"):
            return CheckResult("switch", "fail", detail, FIX["switch-log"], data)
        return CheckResult("switch", "ok", detail, data=data)

    def check_capk(self) -> CheckResult:
        if "terminal" not in self.needs:
            return CheckResult("capk", "skip", "only the terminal authenticates cards (ODA)")
        try:
            summary = self.env.load_capk()
        except Exception as error:  # a broken data file is a finding, not a crash
            detail = f"loading the CAPK store failed: {type(error).__name__}: {error}"
            return CheckResult("capk", "fail", detail, FIX["capk-reinstall"])
        if summary is None:
            return CheckResult("capk", "skip", "not available: emvtap.capk is not in this build")
        if summary.count == 0:
            return CheckResult(
                "capk", "fail", f"{summary.source} holds no key", FIX["capk-reinstall"]
            )
        count = "loaded" if summary.count is None else f"{summary.count} keys"
        return CheckResult(
            "capk", "ok", f"{summary.source}: {count}", data={"count": summary.count}
        )


CHECKS: tuple[Callable[[Doctor], CheckResult], ...] = (
    Doctor.check_pcscd,
    Doctor.check_readers,
    Doctor.check_kernel_modules,
    Doctor.check_usb_permissions,
    Doctor.check_libccid_escape,
    Doctor.check_nfcpy_devices,
    Doctor.check_switch,
    Doctor.check_capk,
)


def run_doctor(
    role: Role = "both", switch: tuple[str, int] | None = None, env: DoctorEnv | None = None
) -> Report:
    """Run every check for *role*; ``report.exit_code`` is 0 when the machine is ready."""
    doctor = Doctor(env or DoctorEnv(), role, switch)
    return Report(role, tuple(check(doctor) for check in CHECKS))


# --- rendering ----------------------------------------------------------------------------------

STATUS_STYLE: Mapping[Status, str] = {
    "ok": "green",
    "warn": "yellow",
    "fail": "bold red",
    "skip": "dim",
}


def render_table(report: Report, console: Any) -> None:
    """Print *report* on a rich ``Console``: a row per check, then the verdict."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"emvtap doctor (role: {report.role})", show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")  # commands must stay whole to be copied
    for r in report.results:
        status = Text(r.status, style=STATUS_STYLE[r.status])
        table.add_row(r.name, status, Text(r.detail), Text(r.fix or ""))
    console.print(table)
    failed = [r.name for r in report.results if r.status == "fail"]
    verdict = f"not ready for {report.role}: {', '.join(failed)} failed" if failed else "ready"
    console.print(
        Text(
            verdict if failed else f"ready for {report.role}",
            style="bold red" if failed else "bold green",
        )
    )
