"""``emvtap doctor`` against the real pcscd with the vpcd driver (the ``pcscd`` fixture of
tests/integration/conftest.py starts it), through the real CLI in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.pcsc


def run_doctor_cli(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", "from lab.cli import main; main()", "doctor", "--json", "-", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, json.loads(done.stdout)


def test_doctor_reaches_pcscd_and_lists_the_vpcd_readers_as_terminals(pcscd: None) -> None:
    done, report = run_doctor_cli("--role", "terminal")
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["pcscd"]["status"] == "ok", checks["pcscd"]
    assert checks["pcscd"]["data"]["readers"], "pcscd answered but listed no reader"
    vpcd = [r for r in checks["readers"]["data"]["readers"] if r["name"].startswith("Virtual PCD")]
    assert vpcd, checks["readers"]
    assert all(r["id"].startswith("pcsc:") and r["roles"] == ["terminal"] for r in vpcd)
    assert checks["readers"]["status"] == "ok"
    assert done.returncode == (0 if report["ready"] else 1), done.stderr
