"""Where the doctor looks (:class:`DoctorEnv`): a filesystem root and every probe, so that
tests run the checks on fake trees with fake probes."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.doctor.probes import (
    CapkSummary,
    NfcProbe,
    iso8583_echo,
    load_capk_summary,
    probe_nfcpy,
    tcp_connect,
)
from lab.doctor.system import list_pcsc_readers, read_write_access, session_groups


@dataclass
class DoctorEnv:
    """Where the doctor looks. The defaults look at this machine."""

    root: Path = Path("/")
    list_pcsc_readers: Callable[[], list[str]] = list_pcsc_readers
    can_open: Callable[[Path], bool] = read_write_access
    probe_nfc: Callable[[float], NfcProbe] = probe_nfcpy
    tcp_connect: Callable[[str, int, float], None] = tcp_connect
    switch_echo: Callable[[str, int, float], Mapping[str, str]] = iso8583_echo
    load_capk: Callable[[], CapkSummary] = load_capk_summary
    user: Callable[[], str] = getpass.getuser
    session_groups: Callable[[], frozenset[str]] = session_groups
    nfc_timeout: float = 10.0
    switch_timeout: float = 3.0
