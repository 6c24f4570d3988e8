"""udev/: the rules, the blacklist and the install/uninstall scripts.

The scripts run under bash against a temporary ``--root``: nothing here touches the real /etc.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from lab.doctor import READERS

UDEV = Path(__file__).resolve().parents[2] / "udev"
RULES = UDEV / "60-emvtap-nfc.rules"
BLACKLIST = UDEV / "blacklist-emvtap-nfc.conf"
README = UDEV / "README.md"
RULES_DEST = Path("etc/udev/rules.d/60-emvtap-nfc.rules")
BLACKLIST_DEST = Path("etc/modprobe.d/blacklist-emvtap-nfc.conf")

# udev keys this file may use: match keys compare (== !=), assignment keys assign (= += :=).
MATCH_KEYS = {"SUBSYSTEM", "ATTRS", "ENV", "ACTION", "KERNEL", "DRIVERS"}
ASSIGN_KEYS = {"MODE", "GROUP", "TAG", "ENV", "OWNER"}
TOKEN = re.compile(
    r'(?P<key>[A-Z]+)(?:\{(?P<attr>[A-Za-z_]+)\})?(?P<op>==|!=|\+=|:=|=)"(?P<value>[^"]*)"'
)
HEX4 = re.compile(r"[0-9a-f]{4}")


def rule_lines() -> list[str]:
    return [line for line in RULES.read_text().splitlines() if line and not line.startswith("#")]


def parse_rule(line: str) -> list[re.Match[str]]:
    tokens = [TOKEN.fullmatch(part) for part in line.split(", ")]
    assert all(tokens), f"malformed token in: {line}"
    return tokens  # type: ignore[return-value]


def rule_fields(line: str) -> dict[str, str]:
    """``{"ATTRS{idVendor}==": "072f", "GROUP=": "plugdev", ...}`` for one rule line."""
    return {
        f"{t['key']}{{{t['attr']}}}{t['op']}" if t["attr"] else f"{t['key']}{t['op']}": t["value"]
        for t in parse_rule(line)
    }


def rule_ids() -> set[tuple[str, str]]:
    return {
        (f["ATTRS{idVendor}=="], f["ATTRS{idProduct}=="]) for f in map(rule_fields, rule_lines())
    }


def readme_reader_rows() -> list[list[str]]:
    rows = []
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and HEX4.fullmatch(cells[0]) and HEX4.fullmatch(cells[1]):
            rows.append(cells)
    return rows


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(UDEV / name), *args], capture_output=True, text=True, timeout=60, check=False
    )


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under *root*: (mtime_ns, content) for files, (0, b"") for directories."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
        if p.is_file()
        else (0, b"")
        for p in sorted(root.rglob("*"))
    }


# --- the rules --------------------------------------------------------------------------------


def test_every_rules_line_is_a_comment_or_a_well_formed_rule() -> None:
    for line in RULES.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        tokens = parse_rule(line)
        for token in tokens:
            if token["op"] in ("==", "!="):
                assert token["key"] in MATCH_KEYS, f"{token['key']} is not a match key: {line}"
            else:
                assert token["key"] in ASSIGN_KEYS, f"{token['key']} is not assignable: {line}"
        fields = rule_fields(line)
        assert HEX4.fullmatch(fields.get("ATTRS{idVendor}==", "")), line
        assert HEX4.fullmatch(fields.get("ATTRS{idProduct}==", "")), line
        assert fields["SUBSYSTEM=="] in ("usb", "tty"), line


def test_every_rule_has_its_own_comment_naming_the_reader() -> None:
    lines = RULES.read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[index - 1].startswith("#"), f"rule without a comment above it: {line}"


def test_usb_rules_grant_plugdev_read_write_and_the_seat_user() -> None:
    usb = [rule_fields(line) for line in rule_lines() if 'SUBSYSTEM=="usb"' in line]
    assert usb
    for fields in usb:
        assert fields["ENV{DEVTYPE}=="] == "usb_device"
        assert fields["MODE="] == "0660"
        assert fields["GROUP="] == "plugdev"
        assert fields["TAG+="] == "uaccess"


def test_serial_bridge_rules_keep_the_tty_group_and_only_stop_modemmanager() -> None:
    tty = [rule_fields(line) for line in rule_lines() if 'SUBSYSTEM=="tty"' in line]
    assert tty
    for fields in tty:
        assert "GROUP=" not in fields and "MODE=" not in fields
        assert fields["ENV{ID_MM_DEVICE_IGNORE}="] == "1"


def test_rules_ids_are_unique() -> None:
    assert len(rule_ids()) == len(rule_lines())


def test_rules_ids_equal_the_reader_table_in_the_readme() -> None:
    readme_ids = {(row[0], row[1]) for row in readme_reader_rows()}
    assert readme_ids == rule_ids()


def test_rules_ids_equal_the_doctor_reader_table() -> None:
    assert {(f"{r.vid:04x}", f"{r.pid:04x}") for r in READERS} == rule_ids()
    serial_ids = {
        (f["ATTRS{idVendor}=="], f["ATTRS{idProduct}=="])
        for f in map(rule_fields, rule_lines())
        if f["SUBSYSTEM=="] == "tty"
    }
    assert {(f"{r.vid:04x}", f"{r.pid:04x}") for r in READERS if r.serial} == serial_ids


def test_readme_roles_equal_the_doctor_reader_table() -> None:
    roles = {"terminal": {"terminal"}, "both": {"terminal", "emulator"}}
    readme = {(row[0], row[1]): roles[row[3]] for row in readme_reader_rows()}
    assert readme == {(f"{r.vid:04x}", f"{r.pid:04x}"): set(r.roles) for r in READERS}


def test_the_requested_readers_are_all_covered() -> None:
    wanted = {
        ("072f", "2200"),
        ("04e6", "5591"),
        ("04cc", "2533"),
        ("054c", "06c1"),
        ("054c", "02e1"),
        ("072f", "223b"),
        ("072f", "221a"),
    }
    assert wanted <= rule_ids()


# --- the blacklist ----------------------------------------------------------------------------


def test_blacklist_lists_exactly_the_four_nfc_modules() -> None:
    lines = [
        line for line in BLACKLIST.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"blacklist [a-z0-9_]+", line) for line in lines), lines
    assert {line.split()[1] for line in lines} == {"pn533", "pn533_usb", "nfc", "port100"}


def test_blacklist_covers_every_kernel_driver_of_the_reader_table() -> None:
    blacklisted = {
        line.split()[1]
        for line in BLACKLIST.read_text().splitlines()
        if line.startswith("blacklist ")
    }
    assert {r.kernel_driver for r in READERS if r.kernel_driver} <= blacklisted


def test_blacklist_says_what_it_disables() -> None:
    comments = " ".join(line for line in BLACKLIST.read_text().splitlines() if line.startswith("#"))
    assert "What this disables" in comments and "neard" in comments


# --- install.sh / uninstall.sh ----------------------------------------------------------------


@pytest.mark.parametrize("script", ["install.sh", "uninstall.sh", "common.sh"])
def test_scripts_parse_under_bash(script: str) -> None:
    done = subprocess.run(
        ["bash", "-n", str(UDEV / script)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_install_dry_run_into_a_temp_root_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "etc/udev/rules.d").mkdir(parents=True)
    (tmp_path / "etc/udev/rules.d/99-other.rules").write_text("# someone else's\n")
    before = snapshot(tmp_path)
    done = run_script("install.sh", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path) == before
    assert f"create     {tmp_path / RULES_DEST}" in done.stdout
    assert f"create     {tmp_path / BLACKLIST_DEST}" in done.stdout
    assert "dry run: nothing written" in done.stdout


def test_install_apply_writes_exactly_the_rules_and_the_blacklist(tmp_path: Path) -> None:
    done = run_script("install.sh", "--root", str(tmp_path), "--apply")
    assert done.returncode == 0, done.stderr
    files = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert files == {RULES_DEST, BLACKLIST_DEST}
    assert (tmp_path / RULES_DEST).read_bytes() == RULES.read_bytes()
    assert (tmp_path / BLACKLIST_DEST).read_bytes() == BLACKLIST.read_bytes()
    for dest in (RULES_DEST, BLACKLIST_DEST):
        assert (tmp_path / dest).stat().st_mode & 0o777 == 0o644
    assert "changed: 2 file(s)" in done.stdout


def test_install_apply_is_idempotent_on_a_second_run(tmp_path: Path) -> None:
    assert run_script("install.sh", "--root", str(tmp_path), "--apply").returncode == 0
    before = snapshot(tmp_path)
    inodes = {d: (tmp_path / d).stat().st_ino for d in (RULES_DEST, BLACKLIST_DEST)}
    done = run_script("install.sh", "--root", str(tmp_path), "--apply")
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path) == before
    assert inodes == {d: (tmp_path / d).stat().st_ino for d in (RULES_DEST, BLACKLIST_DEST)}
    assert done.stdout.count("unchanged  ") == 2
    assert "changed: 0 file(s)" in done.stdout
    assert "udevadm" not in done.stdout  # nothing to reload


def test_install_updates_a_stale_rules_file_and_shows_the_diff(tmp_path: Path) -> None:
    stale = tmp_path / RULES_DEST
    stale.parent.mkdir(parents=True)
    stale.write_text("# an older version\n")
    done = run_script("install.sh", "--root", str(tmp_path), "--apply")
    assert done.returncode == 0, done.stderr
    assert f"update     {stale}" in done.stdout
    assert "-# an older version" in done.stdout
    assert stale.read_bytes() == RULES.read_bytes()


def test_install_group_option_rewrites_only_the_rule_lines(tmp_path: Path) -> None:
    done = run_script("install.sh", "--root", str(tmp_path), "--apply", "--group", "nfc")
    assert done.returncode == 0, done.stderr
    installed = (tmp_path / RULES_DEST).read_text().splitlines()
    original = RULES.read_text().splitlines()
    assert [line for line in installed if line.startswith("#")] == [
        line for line in original if line.startswith("#")
    ]
    usb_rules = [line for line in installed if line.startswith('SUBSYSTEM=="usb"')]
    assert usb_rules and all('GROUP="nfc"' in line for line in usb_rules)
    again = run_script("install.sh", "--root", str(tmp_path), "--apply", "--group", "nfc")
    assert "changed: 0 file(s)" in again.stdout


def test_install_unloads_loaded_nfc_modules_only_on_the_live_system(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/modules").write_text(
        "pn533_usb 20480 0 - Live 0x0\npn533 45056 1 pn533_usb, Live 0x0\n"
        "nfc 135168 1 pn533, Live 0x0\n"
    )
    dry = run_script("install.sh", "--root", str(tmp_path))
    assert "would run  modprobe -r pn533_usb pn533" in dry.stdout
    applied = run_script("install.sh", "--root", str(tmp_path), "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "skipped    modprobe -r pn533_usb pn533 (--root" in applied.stdout
    assert "skipped    modprobe -r nfc (--root" in applied.stdout


def test_uninstall_removes_what_install_wrote_and_nothing_else(tmp_path: Path) -> None:
    other = tmp_path / "etc/udev/rules.d/99-other.rules"
    other.parent.mkdir(parents=True)
    other.write_text("# someone else's\n")
    assert run_script("install.sh", "--root", str(tmp_path), "--apply").returncode == 0
    done = run_script("uninstall.sh", "--root", str(tmp_path), "--apply")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / RULES_DEST).exists()
    assert not (tmp_path / BLACKLIST_DEST).exists()
    assert other.read_text() == "# someone else's\n"
    assert "removed: 2 file(s)" in done.stdout
    again = run_script("uninstall.sh", "--root", str(tmp_path), "--apply")
    assert "removed: 0 file(s)" in again.stdout


def test_uninstall_dry_run_removes_nothing(tmp_path: Path) -> None:
    assert run_script("install.sh", "--root", str(tmp_path), "--apply").returncode == 0
    before = snapshot(tmp_path)
    done = run_script("uninstall.sh", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path) == before
    assert f"remove     {tmp_path / RULES_DEST}" in done.stdout


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("install.sh", ["--bogus"]),
        ("install.sh", ["--group", 'bad"name']),
        ("install.sh", ["--root"]),
        ("uninstall.sh", ["--group", "nfc"]),
    ],
)
def test_scripts_refuse_bad_arguments_without_writing(
    tmp_path: Path, script: str, args: list[str]
) -> None:
    done = run_script(script, "--root", str(tmp_path), "--apply", *args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_scripts_are_executable() -> None:
    for script in ("install.sh", "uninstall.sh"):
        assert os.access(UDEV / script, os.X_OK)
