"""The machine as the doctor sees it: ``/proc``, ``/sys``, ``/dev``, ``/etc`` and ``/usr`` below a
root directory (:class:`SystemView`), the PC/SC reader list (pyscard), and who may open a device
node. The defaults of :class:`~lab.doctor.env.DoctorEnv` that look at the system live here;
tests replace them with fake trees and fake listers."""

from __future__ import annotations

import errno
import grp
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.doctor.readers import READERS_BY_ID, Reader

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


def read_write_access(path: Path) -> bool:
    return os.access(path, os.R_OK | os.W_OK)


def session_groups() -> frozenset[str]:
    return frozenset(group_name(gid) for gid in {os.getegid(), *os.getgroups()})


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


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def group_members(name: str) -> frozenset[str]:
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
