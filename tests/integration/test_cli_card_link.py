"""``emvtap card run``: a second card on a udp port another card holds is an environment error
(exit 4) that names the link, not an internal error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emvtap.exit_codes import ExitCode

pytestmark = pytest.mark.timeout(90)

EMVTAP = [sys.executable, "-c", "from lab.cli import main; main()"]


def test_a_second_card_on_the_same_udp_port_exits_4(tmp_path: Path, udp_port: int) -> None:
    profile = tmp_path / "card.json"
    subprocess.run([*EMVTAP, "perso", "--seed", "5", "--out", str(profile)], check=True,
                   capture_output=True, timeout=60)
    link = f"nfc:udp:127.0.0.1:{udp_port}"
    first = subprocess.Popen([*EMVTAP, "card", "run", "--profile", str(profile), "--link", link,
                              "--state", str(tmp_path / "a.state.json")],
                             stderr=subprocess.PIPE, text=True,
                             env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        assert first.stderr is not None
        for _ in range(5):  # the wallet line(s), then "card … on LINK; Ctrl-C to stop"
            line = first.stderr.readline()
            if "Ctrl-C to stop" in line:
                break
        assert "Ctrl-C to stop" in line, line
        second = subprocess.run([*EMVTAP, "card", "run", "--profile", str(profile), "--link",
                                 link, "--state", str(tmp_path / "b.state.json")],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == ExitCode.ENVIRONMENT, second.stderr
        assert link in second.stderr and "another card" in second.stderr
        assert "internal error" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 0
