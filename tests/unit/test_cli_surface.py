"""One command-line surface: every command has an example and a description for every option,
``-v`` everywhere, ``--json FILE|-`` with the same meaning everywhere, one ``perso``; and the
first-hour mistakes (a negative seed, a card profile that is not one, an unknown configuration
key, nfcpy's log lines) end in a clear answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from emvtap.exit_codes import ExitCode
from emvtap.perso import generate_profile
from lab.cli import LAZY_COMMANDS, cli

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")

#: The commands a script calls, each with --json FILE|-.
SCRIPTED = [
    ("terminal", "pay"), ("perso",), ("doctor",), ("hil", "run"), ("hil", "list"),
    ("switch", "enroll"), ("switch", "provision"), ("switch", "event"), ("switch", "show"),
    ("switch", "account"), ("switch", "card"),
]


def _commands() -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli)

    def walk(path: tuple[str, ...], command: click.Command) -> Iterator[
            tuple[tuple[str, ...], click.Command]]:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                yield from walk((*path, name), sub)
        else:
            yield path, command

    for name in sorted(LAZY_COMMANDS):
        command = cli.get_command(ctx, name)
        assert command is not None
        yield from walk((name,), command)


COMMANDS = dict(_commands())


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_shows_an_example(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "Example" in text
    assert f"emvtap {' '.join(path)}" in text.split("Example", 1)[1]


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_option_has_a_description(path: tuple[str, ...]) -> None:
    for param in COMMANDS[path].params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"emvtap {' '.join(path)} {param.opts[0]} has no help"


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_takes_v(path: tuple[str, ...]) -> None:
    assert any("-v" in getattr(p, "opts", ()) for p in COMMANDS[path].params)


@pytest.mark.parametrize("path", SCRIPTED, ids=" ".join)
def test_json_is_file_or_dash_on_every_scripted_command(path: tuple[str, ...]) -> None:
    (option,) = [p for p in COMMANDS[path].params if "--json" in getattr(p, "opts", ())]
    assert isinstance(option, click.Option) and not option.is_flag
    assert option.metavar == "FILE|-"


def test_the_event_usage_line_does_not_list_every_event() -> None:
    usage = _help(("switch", "event")).splitlines()[0]
    assert usage == "Usage: cli switch event [OPTIONS] EVENT SUBJECT"
    assert "device.passcode_removed" in _help(("switch", "event"))  # listed below, one a line


def test_pay_reader_help_names_only_what_the_cli_can_open() -> None:
    text = " ".join(_help(("terminal", "pay")).split())
    assert "pcsc:" in text and "nfc:udp" in text and "loopback" not in text


def test_perso_seed_help_does_not_print_the_int64_range() -> None:
    assert "9223372036854775807" not in _help(("perso",))


# --- one perso --------------------------------------------------------------------------------


def test_there_is_one_perso_command() -> None:
    assert "perso" in cli.list_commands(click.Context(cli))
    assert ("card", "perso") not in COMMANDS


def test_perso_writes_every_scheme(tmp_path: Path) -> None:
    for scheme, apps in (("quickpass", 1), ("visa", 1), ("mastercard", 1), ("multi", 3)):
        out = tmp_path / f"{scheme}.json"
        result = CliRunner().invoke(cli, ["perso", "--scheme", scheme, "--seed", "2", "--out",
                                          str(out), "--json", "-"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["format"] == {"name": "emvtap.perso", "version": 1}
        assert len(doc["applications"]) == apps and doc["scheme"] == scheme


# --- seeds ------------------------------------------------------------------------------------


def test_seeds_1_and_minus_1_are_different_cards() -> None:
    a, b = generate_profile(1), generate_profile(-1)
    assert a.token is not None and b.token is not None
    assert a.pan != b.pan and a.token.span != b.token.span
    assert a.token.device_id != b.token.device_id


def test_perso_refuses_a_negative_seed(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["perso", "--seed", "-1", "--out", str(tmp_path / "c.json")])
    assert result.exit_code == ExitCode.USAGE
    assert "0 to 2^63-1" in result.output
    assert not (tmp_path / "c.json").exists()


# --- bad input, named -------------------------------------------------------------------------


def test_perso_into_a_missing_directory_names_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["perso", "--seed", "1", "--out",
                                      str(tmp_path / "nodir" / "x.json")])
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "nodir" in result.output and "does not exist" in result.output


def test_perso_refuses_ecash_on_a_visa_card(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["perso", "--scheme", "visa", "--seed", "1", "--ecash",
                                      "100", "--out", str(tmp_path / "v.json")])
    assert result.exit_code == ExitCode.USAGE
    assert "--ecash needs a UnionPay card" in result.output


def test_card_authenticate_refuses_a_file_that_is_not_a_profile(tmp_path: Path) -> None:
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n")
    result = CliRunner().invoke(cli, ["card", "authenticate", "--profile", str(other)])
    assert result.exit_code == ExitCode.USAGE
    assert "not a card profile" in result.output
    assert not (tmp_path / "passwd.state.json.inbox").exists()


def test_an_unknown_terminal_configuration_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "terminal.json"
    config.write_text(json.dumps({"terminal_floor_limt": 1000}))
    result = CliRunner().invoke(cli, ["terminal", "pay", "--reader", "nfc:udp", "--amount",
                                      "1.00", "--switch", "none", "--config", str(config)])
    assert result.exit_code == ExitCode.USAGE
    assert "unknown key(s) 'terminal_floor_limt' (did you mean 'terminal_floor_limit'?)" in \
        " ".join(result.output.split())


# --- logs -------------------------------------------------------------------------------------


@pytest.fixture
def root_handler() -> Iterator[logging.Handler]:
    """A root handler as ``basicConfig`` makes it (pytest's own capture handlers aside)."""
    root = logging.getLogger()
    handler = logging.StreamHandler()
    saved = root.handlers[:], root.level
    root.handlers = [handler]
    yield handler
    root.handlers, level = saved
    root.setLevel(level)


def _passes(handler: logging.Handler, name: str, level: int) -> bool:
    record = logging.LogRecord(name, level, __file__, 1, "ISO-DEP unrecoverable timeout error",
                               None, None)
    return all(f.filter(record) if isinstance(f, logging.Filter) else f(record)
               for f in handler.filters)


def test_library_logs_appear_only_with_v(root_handler: logging.Handler,
                                         tmp_path: Path) -> None:
    out = str(tmp_path / "c.json")
    assert CliRunner().invoke(cli, ["perso", "--seed", "1", "--out", out]).exit_code == 0
    assert not _passes(root_handler, "nfc.tag.tt4", logging.ERROR)
    assert _passes(root_handler, "emvtap.card", logging.WARNING)
    assert CliRunner().invoke(cli, ["perso", "--seed", "1", "--out", out, "-v"]).exit_code == 0
    assert _passes(root_handler, "nfc.tag.tt4", logging.ERROR)
