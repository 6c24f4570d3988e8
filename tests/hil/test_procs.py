"""The other actors are reached through their command lines: a command or option this build
does not have is "not supported by this build", anything else that fails is a rig error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.hil.procs import Child, classify_failure, run_emvtap
from lab.hil.results import RigError, Unsupported


@pytest.mark.parametrize(("output", "what"), [
    ("Error: No such command 'replenish'.", "command `emvtap card replenish`"),
    ("Error: No such option: --cdcvm", "option --cdcvm of `emvtap card run`"),
    ("emvtap: internal error: ModuleNotFoundError: No module named 'hce_card.link.nfc_target'",
     "module hce_card.link.nfc_target"),
])
def test_missing_parts_are_unsupported(output: str, what: str) -> None:
    exc = classify_failure(["card", "run", "--profile", "x"], output, "card")
    assert isinstance(exc, Unsupported)
    assert exc.what == what
    assert str(exc) == f"not supported by this build: {what}"


def test_other_failures_are_rig_errors_with_the_output() -> None:
    exc = classify_failure(["switch", "serve"], "line 1\nOSError: address in use", "switch")
    assert isinstance(exc, RigError)
    assert "address in use" in str(exc)


def test_a_real_unknown_command_is_reported_as_unsupported() -> None:
    with pytest.raises(Unsupported, match=r"command `emvtap card no-such-command`"):
        run_emvtap(["card", "no-such-command"])


def test_a_real_unknown_option_is_reported_as_unsupported() -> None:
    with pytest.raises(Unsupported, match=r"option --no-such-option of `emvtap card run`"):
        run_emvtap(["card", "run", "--no-such-option"])


def test_a_child_that_ends_before_its_banner_says_why(tmp_path: Path) -> None:
    child = Child("card", ["card", "run", "--profile", str(tmp_path / "none.json")],
                  tmp_path / "card.log", re.compile("Ctrl-C to stop")).start()
    with pytest.raises(RigError, match="does not exist"):
        child.wait_ready(20)
    assert child.stop() == 2  # click's usage error
    assert "none.json" in (tmp_path / "card.log").read_text()
