"""The checks, one method of :class:`Doctor` each, and the table :data:`CHECKS` that
:func:`run_doctor` runs in order."""

from __future__ import annotations

import plistlib
import stat
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any
from xml.parsers.expat import ExpatError

from lab.doctor.env import DoctorEnv
from lab.doctor.fixes import FIX
from lab.doctor.probes import NfcDevice, NfcProbeTimeout
from lab.doctor.readers import (
    ROLE_NEEDS,
    ROLES,
    STEALING_MODULES,
    TERMINAL,
    Reader,
    Role,
    pcsc_label,
)
from lab.doctor.results import CheckResult, Report, Status
from lab.doctor.system import (
    PcscUnavailable,
    SystemView,
    UsbDevice,
    group_members,
    group_name,
)

#: libccid's DRIVER_OPTION_CCID_EXCHANGE_AUTHORIZED: SCardControl(SCARD_CTL_CODE(1)) allowed.
CCID_EXCHANGE_AUTHORIZED = 0x01


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
            Candidate(f"pcsc:{i}", f"{name} ({pcsc_label(name)})", TERMINAL)
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
                group = group_name(st.st_gid)
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
        if user in group_members(group) and group not in self.env.session_groups():
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
        if summary.count == 0:
            return CheckResult(
                "capk", "fail", f"{summary.source} holds no key", FIX["capk-reinstall"]
            )
        return CheckResult(
            "capk", "ok", f"{summary.source}: {summary.count} keys", data={"count": summary.count}
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
