"""A fresh clone with nothing beside it: the suite collects, and every test that reads test data
passes, with the clone's own tests/data/ as the only data there is (tests/data/README.md).

The clone is of the committed HEAD; ``make test-clone`` runs the whole of ``make test`` the same
way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "EMVTAP_"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def lonely_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("lonely")
    clone = home / "emvtap"
    done = _run(["git", "clone", "-q", str(ROOT), str(clone)], cwd=home, timeout=120)
    assert done.returncode == 0, done.stderr
    return clone


def test_the_clone_has_nothing_beside_it(lonely_clone: Path) -> None:
    assert [p.name for p in lonely_clone.parent.iterdir()] == ["emvtap"]
    assert (lonely_clone / "tests" / "data" / "README.md").is_file()


def test_the_clone_imports_its_own_packages(lonely_clone: Path) -> None:
    probe = ("import emvtap, terminal, hce_card, switch, lab; "
             "print('\\n'.join(m.__file__ for m in (emvtap, terminal, hce_card, switch, lab)))")
    done = _run([sys.executable, "-c", probe], cwd=lonely_clone, timeout=60)
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert Path(path).resolve().is_relative_to(lonely_clone.resolve()), path


@pytest.mark.timeout(600)
def test_every_test_module_of_the_clone_is_collected(lonely_clone: Path) -> None:
    done = _run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                 "tests"], cwd=lonely_clone, timeout=540)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "error" not in done.stdout.splitlines()[-1].lower()


@pytest.mark.timeout(600)
def test_the_tests_that_read_test_data_pass_in_the_clone(lonely_clone: Path) -> None:
    unit = lonely_clone / "tests" / "unit"
    readers = sorted(p.relative_to(lonely_clone).as_posix() for p in unit.glob("test_*.py")
                     if "from data_files import" in p.read_text())
    assert len(readers) >= 10, readers
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *readers],
                cwd=lonely_clone, timeout=540)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
