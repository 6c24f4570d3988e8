"""``emvtap doctor`` on fake /proc, /sys, /dev, /etc and /usr trees, with fake probes."""

from __future__ import annotations

import grp
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from emvtap import iso8583
from lab.doctor import (
    CHECKS,
    NFCPY_DRIVER_ROLES,
    READERS,
    CapkSummary,
    CheckResult,
    DoctorEnv,
    NfcDevice,
    NfcProbe,
    NfcProbeTimeout,
    PcscUnavailable,
    Report,
    iso8583_echo,
    load_capk_summary,
    mode_bits_access,
    probe_nfcpy,
    render_table,
    run_doctor,
)
from lab.doctor_cli import make_doctor_command

UDEV = Path(__file__).resolve().parents[2] / "udev"
FAKE_CAPK = CapkSummary("fake store", 3)
ECHO_OK = {"t": "0810", "39": "00"}
ALICE = 4242  # a uid/gid no file in the fake tree belongs to
ACR122U_PCSC = "ACS ACR122U PICC Interface 00 00"
CHECK_NAMES = [
    "pcscd",
    "readers",
    "kernel modules",
    "usb permissions",
    "libccid escape",
    "nfcpy devices",
    "switch",
    "capk",
]
INFO_PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>ifdLogLevel</key>
	<string>0x0003</string>

	<key>ifdDriverOptions</key>
	<string>{options}</string>

	<!-- Possible values for ifdDriverOptions
	0x01: DRIVER_OPTION_CCID_EXCHANGE_AUTHORIZED
	-->
	<key>ifdVendorID</key>
	<array>
		<string>0x072F</string>
	</array>
</dict>
</plist>
"""


class FakeSystem:
    """A root directory that looks like a Linux machine to the doctor."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.usb_count = 0
        self.add_usb(0x1D6B, 0x0002, bus=1, dev=1, sysname="usb1")  # a root hub: not a reader

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def add_usb(
        self,
        vid: int,
        pid: int,
        *,
        bus: int = 1,
        dev: int | None = None,
        sysname: str | None = None,
        driver: str | None = None,
        tty: str | None = None,
        mode: int = 0o600,
    ) -> Path:
        """A USB device in sysfs and its node in /dev/bus/usb (or /dev/ttyX); returns the node."""
        self.usb_count += 1
        dev = dev if dev is not None else 10 + self.usb_count
        sysname = sysname or f"{bus}-{self.usb_count}"
        base = f"sys/bus/usb/devices/{sysname}"
        for name, value in (
            ("idVendor", f"{vid:04x}"),
            ("idProduct", f"{pid:04x}"),
            ("busnum", str(bus)),
            ("devnum", str(dev)),
        ):
            self.write(f"{base}/{name}", value + "\n")
        interface = self.root / base / f"{sysname}:1.0"
        interface.mkdir()
        if driver:
            (interface / "driver").symlink_to(f"../../../../bus/usb/drivers/{driver}")
        if tty:
            (interface / tty).mkdir()
            node = self.write(f"dev/{tty}", "")
        else:
            node = self.write(f"dev/bus/usb/{bus:03d}/{dev:03d}", "")
        node.chmod(mode)
        return node

    def modules(self, *lines: str) -> None:
        self.write("proc/modules", "".join(f"{line} Live 0x0000000000000000\n" for line in lines))

    def info_plist(self, options: str = "0x0000") -> Path:
        """Debian's layout: the bundle's Info.plist is an absolute symlink into /etc."""
        real = self.write("etc/libccid_Info.plist", INFO_PLIST.format(options=options))
        link = self.root / "usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"
        link.parent.mkdir(parents=True)
        link.symlink_to("/etc/libccid_Info.plist")
        return real

    def install_udev_files(self, *args: str) -> None:
        done = subprocess.run(
            ["bash", str(UDEV / "install.sh"), "--root", str(self.root), "--apply", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def pcscd_process(self, pid: int = 321) -> None:
        self.write(f"proc/{pid}/comm", "pcscd\n")


@pytest.fixture
def system(tmp_path: Path) -> FakeSystem:
    return FakeSystem(tmp_path)


def make_env(
    system: FakeSystem,
    *,
    pcsc: list[str] | Exception | None = None,
    nfc: NfcProbe | Exception | None = None,
    echo: Mapping[str, str] | Exception = ECHO_OK,
    capk: CapkSummary | Exception = FAKE_CAPK,
    connect: Callable[[str, int, float], None] | None = None,
) -> DoctorEnv:
    def lister() -> list[str]:
        if isinstance(pcsc, Exception):
            raise pcsc
        return [] if pcsc is None else pcsc

    def prober(timeout: float) -> NfcProbe:
        if isinstance(nfc, Exception):
            raise nfc
        return nfc or NfcProbe(())

    def switch_echo(host: str, port: int, timeout: float) -> Mapping[str, str]:
        if isinstance(echo, Exception):
            raise echo
        return echo

    def load_capk() -> CapkSummary:
        if isinstance(capk, Exception):
            raise capk
        return capk

    def no_network(host: str, port: int, timeout: float) -> None:
        raise AssertionError("no --switch was given: the doctor must not connect")

    return DoctorEnv(
        root=system.root,
        list_pcsc_readers=lister,
        can_open=mode_bits_access(ALICE, {ALICE}),
        probe_nfc=prober,
        tcp_connect=connect or no_network,
        switch_echo=switch_echo,
        load_capk=load_capk,
        user=lambda: "alice",
        session_groups=lambda: frozenset({"alice"}),
    )


def check(report: Report, name: str) -> CheckResult:
    return next(r for r in report.results if r.name == name)


def scl3711_probe(status: str = "ok") -> NfcProbe:
    return NfcProbe(
        (
            NfcDevice(
                "usb:001:012",
                0x04E6,
                0x5591,
                "pn533",
                status,  # type: ignore[arg-type]
                "SCM Micro SCL3711-NFC&RW PN533v2.7 at usb:001:012",
            ),
        )
    )


def ready_system(system: FakeSystem) -> DoctorEnv:
    """An ACR122U (terminal) and an SCL3711 (emulator), everything set up right."""
    system.install_udev_files()
    system.add_usb(0x072F, 0x2200, mode=0o666)
    system.add_usb(0x04E6, 0x5591, mode=0o666)
    system.modules("usbcore 1 2 ehci_hcd,")
    system.info_plist("0x0001")
    system.pcscd_process()
    return make_env(system, pcsc=[ACR122U_PCSC], nfc=scl3711_probe())


# --- results and report -----------------------------------------------------------------------


def test_a_failure_without_a_fix_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a fix"):
        CheckResult("x", "fail", "broken")
    with pytest.raises(ValueError, match="needs a fix"):
        CheckResult("x", "warn", "odd", fix="")


def test_a_skip_without_a_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="reason"):
        CheckResult("x", "skip", "")


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="status"):
        CheckResult("x", "maybe", "?")  # type: ignore[arg-type]


def test_a_ready_setup_passes_every_check_and_exits_0(system: FakeSystem) -> None:
    report = run_doctor("both", env=ready_system(system))
    assert [r.name for r in report.results] == CHECK_NAMES
    assert {r.name: r.status for r in report.results} == {
        "pcscd": "ok",
        "readers": "ok",
        "kernel modules": "ok",
        "usb permissions": "ok",
        "libccid escape": "ok",
        "nfcpy devices": "ok",
        "switch": "skip",
        "capk": "ok",
    }
    assert report.ready and report.exit_code == 0


def test_one_failing_check_makes_the_exit_code_1(system: FakeSystem) -> None:
    env = ready_system(system)
    system.modules("pn533 45056 0 - ")
    report = run_doctor("both", env=env)
    assert [r.name for r in report.results if r.status == "fail"] == ["kernel modules"]
    assert not report.ready and report.exit_code == 1


def test_warnings_alone_keep_the_setup_ready(system: FakeSystem) -> None:
    env = ready_system(system)
    (system.root / "etc/libccid_Info.plist").write_text(INFO_PLIST.format(options="0x0000"))
    report = run_doctor("both", env=env)
    assert check(report, "libccid escape").status == "warn"
    assert report.exit_code == 0


def test_every_check_runs_for_every_role(system: FakeSystem) -> None:
    for role in ("terminal", "emulator", "both"):
        report = run_doctor(role, env=make_env(system))  # type: ignore[arg-type]
        assert [r.name for r in report.results] == CHECK_NAMES
    assert len(CHECKS) == len(CHECK_NAMES)


def test_an_unknown_role_is_refused(system: FakeSystem) -> None:
    with pytest.raises(ValueError, match="role"):
        run_doctor("cashier", env=make_env(system))  # type: ignore[arg-type]


# --- kernel modules ---------------------------------------------------------------------------


def test_pn533_loaded_fails_with_the_modprobe_fix(system: FakeSystem) -> None:
    system.add_usb(0x072F, 0x2200, driver="pn533_usb")
    system.modules("pn533_usb 20480 0 -", "pn533 45056 1 pn533_usb,", "nfc 135168 1 pn533,")
    result = check(run_doctor("both", env=make_env(system)), "kernel modules")
    assert result.status == "fail"
    assert result.fix is not None
    assert result.fix == f"sudo modprobe -r pn533_usb pn533 nfc && sudo {UDEV}/install.sh --apply"
    assert "ACS ACR122U usb:001:012 bound to pn533_usb" in result.detail


def test_port100_loaded_fails_for_an_rc_s380(system: FakeSystem) -> None:
    system.modules("port100 24576 0 -", "nfc 135168 1 port100,")
    result = check(run_doctor("emulator", env=make_env(system)), "kernel modules")
    assert result.status == "fail"
    assert result.fix == f"sudo modprobe -r port100 nfc && sudo {UDEV}/install.sh --apply"


def test_nfc_core_used_by_a_built_in_controller_stays_loaded(system: FakeSystem) -> None:
    system.modules("pn533 45056 0 -", "nfc 135168 2 pn533,nxp_nci,", "nxp_nci 16384 0 -")
    result = check(run_doctor("both", env=make_env(system)), "kernel modules")
    assert result.fix == f"sudo modprobe -r pn533 && sudo {UDEV}/install.sh --apply"


def test_modules_not_loaded_but_not_blacklisted_warn_with_the_install_fix(
    system: FakeSystem,
) -> None:
    system.modules("usbcore 1 2 -")
    result = check(run_doctor("both", env=make_env(system)), "kernel modules")
    assert result.status == "warn"
    assert result.fix is not None and "install.sh --apply" in result.fix
    assert "pn533_usb, port100 not blacklisted" in result.detail


def test_modules_blacklisted_by_the_installed_file_are_ok(system: FakeSystem) -> None:
    system.install_udev_files()
    system.modules("nfc 135168 1 nxp_nci,", "nxp_nci 16384 0 -")
    result = check(run_doctor("both", env=make_env(system)), "kernel modules")
    assert result.status == "ok"
    assert "nfc core loaded for nxp_nci" in result.detail


def test_an_install_false_line_counts_as_blacklisted(system: FakeSystem) -> None:
    system.write(
        "etc/modprobe.d/mine.conf", "install pn533_usb /bin/false\ninstall port100 /bin/true\n"
    )
    system.modules("usbcore 1 2 -")
    assert check(run_doctor("both", env=make_env(system)), "kernel modules").status == "ok"


def test_unreadable_proc_modules_is_a_skip_with_its_reason(system: FakeSystem) -> None:
    result = check(run_doctor("both", env=make_env(system)), "kernel modules")
    assert result.status == "skip"
    assert "/proc/modules" in result.detail


# --- usb permissions --------------------------------------------------------------------------


def test_acr122u_with_wrong_permissions_fails_with_the_udev_fix(system: FakeSystem) -> None:
    system.add_usb(0x072F, 0x2200, mode=0o600)
    result = check(run_doctor("terminal", env=make_env(system)), "usb permissions")
    assert result.status == "fail"
    assert result.fix is not None and "install.sh --apply" in result.fix
    assert "/dev/bus/usb/001/012 -rw-------" in result.detail
    assert "no access for alice" in result.detail


def test_installed_rules_but_a_node_in_another_group_asks_for_a_udev_trigger(
    system: FakeSystem,
) -> None:
    system.install_udev_files("--group", "emvtapnfc")  # no node in the fake tree has that group
    system.add_usb(0x04E6, 0x5591, mode=0o660)
    result = check(run_doctor("emulator", env=make_env(system)), "usb permissions")
    assert result.status == "fail"
    assert result.fix == ("sudo udevadm trigger --action=change --subsystem-match=usb"
                          "  # or replug it")


def test_node_in_the_rules_group_asks_the_user_to_join_it(system: FakeSystem) -> None:
    group = grp.getgrgid(os.getegid()).gr_name  # the group the fake nodes are created with
    system.install_udev_files("--group", group)
    system.add_usb(0x04E6, 0x5591, mode=0o660)
    result = check(run_doctor("emulator", env=make_env(system)), "usb permissions")
    assert result.status == "fail"
    assert result.fix == f"sudo usermod -aG {group} alice  # then log in again"


def test_a_readable_node_is_ok(system: FakeSystem) -> None:
    system.add_usb(0x054C, 0x06C1, mode=0o666)
    result = check(run_doctor("emulator", env=make_env(system)), "usb permissions")
    assert result.status == "ok"
    assert "Sony RC-S380/S /dev/bus/usb/001/012 -rw-rw-rw-" in result.detail


def test_a_pcsc_only_reader_without_access_only_warns(system: FakeSystem) -> None:
    system.add_usb(0x072F, 0x223B, mode=0o600)  # ACR1252U: pcscd (root) drives it
    result = check(run_doctor("terminal", env=make_env(system)), "usb permissions")
    assert result.status == "warn"


def test_the_emulator_role_does_not_fail_on_the_terminal_reader(system: FakeSystem) -> None:
    system.add_usb(0x072F, 0x2200, mode=0o600)
    result = check(run_doctor("emulator", env=make_env(system)), "usb permissions")
    assert result.status == "warn"


def test_a_pn532_serial_board_without_access_suggests_the_tty_group(system: FakeSystem) -> None:
    system.add_usb(0x1A86, 0x7523, tty="ttyUSB0", mode=0o600)
    result = check(run_doctor("emulator", env=make_env(system)), "usb permissions")
    assert result.status == "warn"  # emvtap does not drive serial PN532 boards (yet)
    assert "/dev/ttyUSB0" in result.detail
    assert result.fix is not None and result.fix.startswith("sudo usermod -aG ")


def test_no_reader_plugged_in_skips_the_permission_check(system: FakeSystem) -> None:
    result = check(run_doctor("both", env=make_env(system)), "usb permissions")
    assert result.status == "skip" and result.detail


def test_mode_bits_access_reads_owner_group_and_other_bits(tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.write_text("")
    st = node.stat()
    node.chmod(0o600)
    assert mode_bits_access(st.st_uid, set())(node)
    assert not mode_bits_access(ALICE, {st.st_gid})(node)
    node.chmod(0o660)
    assert mode_bits_access(ALICE, {st.st_gid})(node)
    assert not mode_bits_access(ALICE, {ALICE})(node)
    node.chmod(0o666)
    assert mode_bits_access(ALICE, {ALICE})(node)


# --- libccid Info.plist -----------------------------------------------------------------------


def test_info_plist_without_the_escape_option_warns_with_the_fix(system: FakeSystem) -> None:
    system.info_plist("0x0000")
    result = check(run_doctor("terminal", env=make_env(system)), "libccid escape")
    assert result.status == "warn"
    assert "/etc/libccid_Info.plist: ifdDriverOptions 0x0000" in result.detail
    assert result.fix is not None
    assert "<string>0x0001</string>" in result.fix
    assert "/etc/libccid_Info.plist" in result.fix  # the real file, not the bundle's symlink
    assert result.fix.endswith("&& sudo systemctl restart pcscd.service")


def test_the_printed_sed_fix_sets_the_escape_bit(system: FakeSystem) -> None:
    real = system.info_plist("0x0004")
    fix = check(run_doctor("terminal", env=make_env(system)), "libccid escape").fix
    assert fix is not None
    sed = shlex.split(fix.split(" && ")[0])
    assert sed[:3] == ["sudo", "sed", "-i"] and sed[-1] == "/etc/libccid_Info.plist"
    subprocess.run([*sed[1:-1], str(real)], check=True)
    result = check(run_doctor("terminal", env=make_env(system)), "libccid escape")
    assert result.status == "ok"
    assert "ifdDriverOptions 0x0005" in result.detail  # bit 0x04 kept, 0x01 added
    assert "<!-- Possible values for ifdDriverOptions" in real.read_text()  # comments kept


def test_info_plist_with_the_escape_option_is_ok(system: FakeSystem) -> None:
    system.info_plist("0x0001")
    assert check(run_doctor("terminal", env=make_env(system)), "libccid escape").status == "ok"


def test_no_ccid_driver_warns_with_the_package_to_install(system: FakeSystem) -> None:
    result = check(run_doctor("terminal", env=make_env(system)), "libccid escape")
    assert result.status == "warn"
    assert result.fix == "sudo apt install libccid"


def test_a_broken_info_plist_is_reported_not_raised(system: FakeSystem) -> None:
    system.write("usr/lib64/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist", "<plist><dict>")
    result = check(run_doctor("terminal", env=make_env(system)), "libccid escape")
    assert result.status == "warn"
    assert "unreadable" in result.detail


def test_the_emulator_role_skips_the_escape_check(system: FakeSystem) -> None:
    system.info_plist("0x0000")
    result = check(run_doctor("emulator", env=make_env(system)), "libccid escape")
    assert result.status == "skip" and result.detail


# --- pcscd and readers ------------------------------------------------------------------------


def test_pcscd_reachable_is_ok_and_names_its_process(system: FakeSystem) -> None:
    system.pcscd_process(4711)
    result = check(run_doctor("terminal", env=make_env(system, pcsc=[ACR122U_PCSC])), "pcscd")
    assert result.status == "ok"
    assert "pid 4711" in result.detail


def test_pcscd_unreachable_fails_for_the_terminal_with_the_start_fix(system: FakeSystem) -> None:
    system.write("usr/sbin/pcscd", "")
    env = make_env(system, pcsc=PcscUnavailable("Failed to establish context"))
    result = check(run_doctor("terminal", env=env), "pcscd")
    assert result.status == "fail"
    assert result.fix == "sudo systemctl enable --now pcscd.socket  # without systemd: sudo pcscd"
    assert "Failed to establish context" in result.detail


def test_pcscd_not_installed_gets_the_install_fix(system: FakeSystem) -> None:
    env = make_env(system, pcsc=PcscUnavailable("no service"))
    result = check(run_doctor("terminal", env=env), "pcscd")
    assert result.fix == ("sudo apt install pcscd libccid && "
                          "sudo systemctl enable --now pcscd.socket")


def test_pcscd_running_but_refusing_points_at_restart_and_polkit(system: FakeSystem) -> None:
    system.write("usr/sbin/pcscd", "")
    system.pcscd_process()
    env = make_env(system, pcsc=PcscUnavailable("Access denied"))
    result = check(run_doctor("terminal", env=env), "pcscd")
    assert result.fix is not None and "polkit" in result.fix


def test_pcscd_unreachable_only_warns_when_an_nfcpy_reader_can_be_the_terminal(
    system: FakeSystem,
) -> None:
    system.add_usb(0x054C, 0x06C1, mode=0o666)
    env = make_env(system, pcsc=PcscUnavailable("no service"))
    result = check(run_doctor("terminal", env=env), "pcscd")
    assert result.status == "warn"
    assert "nfc:usb" in result.detail


def test_pcscd_is_skipped_for_the_emulator_role(system: FakeSystem) -> None:
    env = make_env(system, pcsc=PcscUnavailable("no service"))
    result = check(run_doctor("emulator", env=env), "pcscd")
    assert result.status == "skip" and "emulator" in result.detail


def test_acr122u_and_scl3711_cover_both_roles(system: FakeSystem) -> None:
    system.add_usb(0x072F, 0x2200)
    system.add_usb(0x04E6, 0x5591)
    result = check(run_doctor("both", env=make_env(system, pcsc=[ACR122U_PCSC])), "readers")
    assert result.status == "ok"
    roles = {r["id"]: r["roles"] for r in result.data["readers"]}
    assert roles == {
        "pcsc:0": ["terminal"],
        "usb:001:012": ["terminal"],
        "usb:001:013": ["emulator", "terminal"],
    }


def test_an_acr122u_alone_cannot_be_the_emulator(system: FakeSystem) -> None:
    system.add_usb(0x072F, 0x2200)
    result = check(run_doctor("both", env=make_env(system, pcsc=[ACR122U_PCSC])), "readers")
    assert result.status == "fail"
    assert result.fix is not None and "the ACR122U cannot emulate a card" in result.fix


def test_one_scl3711_cannot_be_terminal_and_emulator_at_once(system: FakeSystem) -> None:
    system.add_usb(0x04E6, 0x5591)
    report_both = run_doctor("both", env=make_env(system))
    assert check(report_both, "readers").status == "fail"
    assert "second reader" in (check(report_both, "readers").fix or "")
    assert check(run_doctor("emulator", env=make_env(system)), "readers").status == "ok"
    assert check(run_doctor("terminal", env=make_env(system)), "readers").status == "ok"


def test_the_vpcd_virtual_reader_is_a_terminal(system: FakeSystem) -> None:
    env = make_env(system, pcsc=["Virtual PCD 00 00", "Virtual PCD 00 01"])
    result = check(run_doctor("terminal", env=env), "readers")
    assert result.status == "ok"
    assert "vpcd virtual reader" in result.detail


def test_no_reader_at_all_fails_with_what_to_plug_in(system: FakeSystem) -> None:
    result = check(run_doctor("terminal", env=make_env(system)), "readers")
    assert result.status == "fail"
    assert result.fix is not None and "pcsc_scan" in result.fix


def test_a_serial_adapter_is_listed_but_not_counted_as_an_emulator(system: FakeSystem) -> None:
    system.add_usb(0x10C4, 0xEA60, tty="ttyUSB0", mode=0o666)
    result = check(run_doctor("emulator", env=make_env(system)), "readers")
    assert result.status == "fail"
    assert "/dev/ttyUSB0: PN532 board? (CP210x serial) 10c4:ea60" in result.detail
    assert "listed, not counted" in result.detail
    assert [r["counted"] for r in result.data["readers"]] == [False]


# --- nfcpy ------------------------------------------------------------------------------------


def test_nfcpy_opening_an_emulator_is_ok(system: FakeSystem) -> None:
    result = check(
        run_doctor("emulator", env=make_env(system, nfc=scl3711_probe())), "nfcpy devices"
    )
    assert result.status == "ok"
    assert "SCL3711" in result.detail


def test_nfcpy_denied_fails_with_the_udev_fix(system: FakeSystem) -> None:
    env = make_env(system, nfc=scl3711_probe("denied"))
    result = check(run_doctor("emulator", env=env), "nfcpy devices")
    assert result.status == "fail"
    assert result.fix is not None and "install.sh --apply" in result.fix


def test_nfcpy_busy_points_at_the_kernel_modules(system: FakeSystem) -> None:
    env = make_env(system, nfc=scl3711_probe("busy"))
    result = check(run_doctor("both", env=env), "nfcpy devices")
    assert result.status == "fail"
    assert result.fix == ("sudo modprobe -r pn533_usb pn533 port100  # else another process "
                          "holds it (pcscd for an ACR122U): sudo lsof /dev/bus/usb/*/*")


def test_nfcpy_probe_timeout_fails_the_emulator_and_warns_the_terminal(system: FakeSystem) -> None:
    env = make_env(system, nfc=NfcProbeTimeout("nfcpy probe did not finish within 10 s"))
    emulator = check(run_doctor("emulator", env=env), "nfcpy devices")
    assert emulator.status == "fail" and "replug" in (emulator.fix or "")
    assert check(run_doctor("terminal", env=env), "nfcpy devices").status == "warn"


def test_nfcpy_without_libusb_gets_the_package_fix(system: FakeSystem) -> None:
    env = make_env(system, nfc=NfcProbe((), "libusb: LIBUSB_ERROR_OTHER"))
    result = check(run_doctor("emulator", env=env), "nfcpy devices")
    assert result.status == "fail" and result.fix == "sudo apt install libusb-1.0-0"


def test_nfcpy_with_only_an_acr122u_is_not_an_emulator(system: FakeSystem) -> None:
    acr = NfcProbe((NfcDevice("usb:001:005", 0x072F, 0x2200, "acr122", "ok", "ACS ACR122U"),))
    assert (
        check(run_doctor("emulator", env=make_env(system, nfc=acr)), "nfcpy devices").status
        == "fail"
    )
    assert (
        check(run_doctor("terminal", env=make_env(system, nfc=acr)), "nfcpy devices").status == "ok"
    )


def test_no_nfcpy_device_is_a_skip_for_the_terminal(system: FakeSystem) -> None:
    result = check(run_doctor("terminal", env=make_env(system)), "nfcpy devices")
    assert result.status == "skip" and "pcscd" in result.detail


def test_probe_nfcpy_kills_a_probe_that_hangs() -> None:
    started = time.monotonic()
    with pytest.raises(NfcProbeTimeout, match=r"within 0\.5 s"):
        probe_nfcpy(0.5, [sys.executable, "-c", "import time; time.sleep(60)"])
    assert time.monotonic() - started < 30


def test_probe_nfcpy_reports_a_child_that_prints_no_result() -> None:
    probe = probe_nfcpy(30, [sys.executable, "-c", "print('hello')"])
    assert probe.devices == () and "printed no result" in (probe.error or "")


def test_probe_nfcpy_reports_a_child_that_crashes() -> None:
    probe = probe_nfcpy(30, [sys.executable, "-c", "raise SystemExit('boom')"])
    assert probe.error == "nfcpy probe exited with 1: boom"


def test_probe_nfcpy_child_imports_nfcpy_and_asks_libusb() -> None:
    probe = probe_nfcpy(60)
    assert probe.error is None or probe.error.startswith("libusb: "), probe.error
    assert all(d.driver in NFCPY_DRIVER_ROLES for d in probe.devices)


def test_nfcpy_driver_roles_agree_with_the_reader_table() -> None:
    for reader in READERS:
        if reader.nfcpy_driver:
            assert NFCPY_DRIVER_ROLES[reader.nfcpy_driver] == reader.roles, reader.name


# --- switch -----------------------------------------------------------------------------------


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


def test_no_switch_given_is_a_skip(system: FakeSystem) -> None:
    result = check(run_doctor("terminal", env=make_env(system)), "switch")
    assert result.status == "skip" and "--switch" in result.detail


def test_an_unreachable_switch_fails_with_the_serve_command(system: FakeSystem) -> None:
    from lab.doctor import tcp_connect

    port = closed_port()
    env = make_env(system, connect=tcp_connect)
    result = check(run_doctor("terminal", ("127.0.0.1", port), env), "switch")
    assert result.status == "fail"
    assert result.fix is not None
    assert result.fix.startswith(
        f"emvtap switch serve --db switch.db --host 127.0.0.1 --port {port}"
    )


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ({"t": "0810", "39": "00"}, "ok"),
        ({"t": "0810", "39": "30"}, "fail"),
        ({"t": "0110", "39": "00"}, "fail"),
        (ConnectionError("closed"), "fail"),
    ],
)
def test_the_0800_echo_decides_the_switch_check(
    system: FakeSystem, reply: Any, status: str
) -> None:
    env = make_env(system, connect=lambda host, port, timeout: None, echo=reply)
    result = check(run_doctor("terminal", ("switch.lan", 8583), env), "switch")
    assert result.status == status
    if status == "fail":
        assert "log" in (result.fix or "")


def test_iso8583_echo_sends_an_0800_echo_test_and_returns_the_0810() -> None:
    received: list[dict[str, Any]] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                request = iso8583.decode_message(iso8583.read_frame(connection))
                received.append(request)
                reply = {
                    "t": "0810",
                    "7": request["7"],
                    "11": request["11"],
                    "39": "00",
                    "70": request["70"],
                }
                connection.sendall(iso8583.frame(iso8583.encode_message(reply)))

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        reply = iso8583_echo("127.0.0.1", port, 5.0)
        thread.join(5)
    assert received[0]["t"] == "0800" and received[0]["70"] == "301"
    assert reply["t"] == "0810" and reply["39"] == "00"


# --- capk -------------------------------------------------------------------------------------


def test_capk_that_fails_to_load_fails_the_terminal(system: FakeSystem) -> None:
    env = make_env(system, capk=ValueError("bad checksum for A000000003 09"))
    result = check(run_doctor("terminal", env=env), "capk")
    assert result.status == "fail" and "bad checksum" in result.detail


def test_an_empty_capk_store_fails(system: FakeSystem) -> None:
    env = make_env(system, capk=CapkSummary("fake store", 0))
    assert check(run_doctor("terminal", env=env), "capk").status == "fail"


def test_the_shipped_capk_store_loads() -> None:
    summary = load_capk_summary()
    assert summary.count > 0


# --- output -----------------------------------------------------------------------------------


def test_json_output_has_the_role_the_verdict_and_every_check(system: FakeSystem) -> None:
    env = make_env(system, pcsc=[ACR122U_PCSC])
    result = CliRunner().invoke(make_doctor_command(lambda: env),
                                ["--json", "-", "--role", "terminal"])
    document = json.loads(result.output)
    assert set(document) == {"format", "created", "role", "ready", "checks"}
    assert document["format"] == {"name": "emvtap.doctor", "version": 1}
    assert document["role"] == "terminal"
    assert [c["name"] for c in document["checks"]] == CHECK_NAMES
    for entry in document["checks"]:
        assert set(entry) == {"name", "status", "detail", "fix", "data"}
        assert entry["status"] in ("ok", "warn", "fail", "skip")
        assert (entry["fix"] is not None) == (entry["status"] in ("warn", "fail"))
    assert document["ready"] is (result.exit_code == 0)


def test_cli_exit_code_is_0_when_ready_and_1_when_not(system: FakeSystem) -> None:
    env = ready_system(system)
    command = make_doctor_command(lambda: env)
    assert CliRunner().invoke(command, ["--json", "-"]).exit_code == 0
    system.modules("pn533_usb 20480 0 -")
    assert CliRunner().invoke(command, ["--json", "-"]).exit_code == 1


def test_cli_passes_the_switch_address_and_refuses_a_bad_one(system: FakeSystem) -> None:
    seen: list[tuple[str, int]] = []
    env = make_env(system, connect=lambda host, port, timeout: seen.append((host, port)))
    command = make_doctor_command(lambda: env)
    done = CliRunner().invoke(command, ["--json", "-", "--switch", "[::1]:8583"])
    assert done.exit_code in (0, 1)
    assert seen == [("::1", 8583)]
    bad = CliRunner().invoke(command, ["--switch", "switch-without-port"])
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output


def test_the_table_shows_every_check_its_fix_and_the_verdict(system: FakeSystem) -> None:
    system.modules("pn533 45056 0 -")
    report = run_doctor("both", env=make_env(system))
    out = io.StringIO()
    render_table(report, Console(file=out, width=400, color_system=None))
    text = out.getvalue()
    for name in CHECK_NAMES:
        assert name in text
    assert "sudo modprobe -r pn533 &&" in text
    assert "not ready for both: readers, kernel modules, nfcpy devices failed" in text


def test_each_fix_is_printed_whole_on_one_line_at_80_columns(system: FakeSystem) -> None:
    """A fix is a command to copy: at 80 columns it stays on one line (the terminal may wrap
    it on screen, the copied text has no line breaks inside)."""
    system.modules("pn533 45056 0 -")
    report = run_doctor("both", env=make_env(system))
    out = io.StringIO()
    render_table(report, Console(file=out, width=80, color_system=None))
    lines = out.getvalue().splitlines()
    fixes = [r.fix for r in report.results if r.fix]
    assert any(len(f) > 80 for f in fixes)
    for fix in fixes:
        assert fix in lines, fix
