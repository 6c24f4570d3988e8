"""The fixes the checks print, as commands: one table, ``{…}`` fields filled in by the check."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def _install_command() -> str:
    script = Path(__file__).resolve().parents[2] / "udev" / "install.sh"
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
