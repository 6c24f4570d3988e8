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

The package, a module per job: :mod:`.readers` (the reader table and the roles),
:mod:`.system` (the machine below a root directory, the PC/SC list), :mod:`.probes` (nfcpy in a
child process with a timeout, the switch, the CAPK store), :mod:`.env` (:class:`DoctorEnv`),
:mod:`.fixes` (the fix commands), :mod:`.results` (results, report, JSON), :mod:`.checks` (the
checks and their table), :mod:`.render` (the rich table). The public names are re-exported here.
"""

from __future__ import annotations

from lab.doctor.checks import CHECKS, run_doctor
from lab.doctor.env import DoctorEnv
from lab.doctor.fixes import FIX
from lab.doctor.probes import (
    CapkSummary,
    NfcDevice,
    NfcProbe,
    NfcProbeTimeout,
    iso8583_echo,
    load_capk_summary,
    probe_nfcpy,
    tcp_connect,
)
from lab.doctor.readers import NFCPY_DRIVER_ROLES, READERS, ROLES, STEALING_MODULES, Reader
from lab.doctor.render import render_table
from lab.doctor.results import CheckResult, Report
from lab.doctor.system import (
    PcscUnavailable,
    SystemView,
    list_pcsc_readers,
    mode_bits_access,
)

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
    "iso8583_echo",
    "list_pcsc_readers",
    "load_capk_summary",
    "mode_bits_access",
    "probe_nfcpy",
    "render_table",
    "run_doctor",
    "tcp_connect",
]
