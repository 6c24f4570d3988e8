"""Ctrl-C while ``emvtap terminal pay`` waits for a card ends the command at once with exit
130, on every transport (a real subprocess, a real SIGINT): nfcpy's udp radio, whose library
swallows KeyboardInterrupt in its polling loop, and pcscd + vpcd, whose wait is a blocking C
call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from virtual_hw import VpcdSlot

from emvtap.exit_codes import ExitCode

pytestmark = pytest.mark.timeout(90)

EMVTAP = [sys.executable, "-c", "from lab.cli import main; main()"]
PROMPT = "present a card"


def _interrupt_while_waiting(reader: str) -> subprocess.CompletedProcess[str]:
    """Start a tap that would wait 600 s for a card, SIGINT it once it prompts; the process
    must be gone well inside the test's timeout, never after its own 600 s."""
    proc = subprocess.Popen(
        [*EMVTAP, "terminal", "pay", "--reader", reader, "--amount", "1.00", "--switch", "none",
         "--timeout", "600", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert PROMPT in line, line
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{reader}: still waiting for a card 30 s after SIGINT")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, line + err)


def test_ctrl_c_aborts_the_card_wait_on_nfc_udp(udp_port: int) -> None:
    done = _interrupt_while_waiting(f"nfc:udp:127.0.0.1:{udp_port}")
    assert done.returncode == ExitCode.INTERRUPTED == 130, done.stderr
    assert "interrupted" in done.stderr
    assert "Traceback" not in done.stderr


def test_ctrl_c_aborts_the_card_wait_on_pcsc(vpcd_slot: VpcdSlot) -> None:
    done = _interrupt_while_waiting(f"pcsc:{vpcd_slot.reader}")
    assert done.returncode == ExitCode.INTERRUPTED, done.stderr
    assert "interrupted" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_reader_is_an_environment_error_before_the_prompt(pcscd: None,
                                                             tmp_path: Path) -> None:
    done = subprocess.run(
        [*EMVTAP, "terminal", "pay", "--reader", "pcsc:nope", "--amount", "1.00",
         "--switch", "none", "--json", str(tmp_path / "t.json")],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert "no PC/SC reader matches 'nope'" in done.stderr
    assert PROMPT not in done.stderr and "END APPLICATION" not in done.stdout
    assert not (tmp_path / "t.json").exists()
