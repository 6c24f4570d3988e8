"""docs/hardware.md's session on the simulated readers runs as printed (in an empty directory
with the scenarios beside it; only its two port numbers are swapped for free ones, so that
concurrent runs do not collide) and prints what the page says it prints."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(400)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hardware.md"
MARKER = "(tests/integration/test_hardware_doc.py runs it)"


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def virtual_session() -> str:
    text = DOC.read_text()
    after = text[text.index(MARKER):]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match, "the simulated session's shell block follows the marker"
    return match.group(1)


def test_the_simulated_session_of_docs_hardware_md_runs_as_printed(tmp_path: Path) -> None:
    script = virtual_session()
    script = script.replace("SWITCH=18583", f"SWITCH={free_tcp_port()}", 1)
    script = script.replace("FIELD=54533", f"FIELD={free_tcp_port()}", 1)
    assert "SWITCH=18583" not in script and "FIELD=54533" not in script
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=380)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "APPROVED" in output
    recorded = re.search(r"\d+ APDUs recorded \(.*\); redacted: (.*); written to my-card\.json",
                         output)
    assert recorded, output[-3000:]
    assert "5A (PAN)" in recorded.group(1) and "57 (track 2 equivalent data)" in recorded.group(1)
    assert (tmp_path / "my-card.json").exists()
    assert "virtual-sim" in output and "offline-fdda" in output and "card-pulled" in output
