"""The root ``emvtap`` command (README.md, "What you get"): sub-groups ``terminal``, ``card``,
``switch``, plus ``perso``, ``demo`` and ``doctor``, loaded lazily; click usage errors."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lab.cli import LAZY_COMMANDS, cli

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_help_lists_every_sub_command() -> None:
    result = _run("--help")
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:")[1].split()
    for name in ("card", "demo", "doctor", "perso", "switch", "terminal"):
        assert name in listed


def test_version_is_the_distribution_version() -> None:
    result = _run("--version")
    assert result.exit_code == 0
    assert version("emvtap") in result.output


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_lazy_sub_command_loads_and_has_help(name: str) -> None:
    module = LAZY_COMMANDS[name].partition(":")[0]
    assert module.split(".")[0] in {"lab", "terminal", "hce_card", "switch"}
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    result = _run(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = _run("pay")
    assert result.exit_code == 2
    assert "No such command 'pay'" in result.output


# --- perso options -------------------------------------------------------------------------


def test_perso_help_shows_its_options() -> None:
    result = _run("perso", "--help")
    assert result.exit_code == 0
    for option in ("--seed", "--out", "--device-type"):
        assert option in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["perso", "--out", "card.json"], "Missing option '--seed'"),
        (["perso", "--seed", "1"], "Missing option '--out'"),
        (["perso", "--seed", "one", "--out", "card.json"], "'one' is not a valid integer"),
        (["perso", "--seed", "1", "--out", "card.json", "--device-type", "watch"],
         "'watch' is not one of"),
    ],
)
def test_perso_usage_errors_exit_2(args: list[str], message: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "card.json").exists()


def test_perso_out_may_not_be_a_directory(tmp_path: Path) -> None:
    result = _run("perso", "--seed", "1", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "is a directory" in result.output


@pytest.mark.parametrize("device_type", ["handset-se", "wearable-se", "hce"])
def test_perso_device_type_goes_into_the_token(device_type: str, tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    result = _run("perso", "--seed", "3", "--out", str(out), "--device-type", device_type)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["token"]["device_type"] == device_type


def test_perso_default_device_type_is_handset_se(tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    assert _run("perso", "--seed", "3", "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["token"]["device_type"] == "handset-se"
