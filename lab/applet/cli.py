"""``emvtap card`` commands for the Java Card applets (applets/README.md).

``emvtap card perso-applet --profile card.json --reader pcsc:0``
    personalises the PPSE and payment applets on a card (a real Java Card on a reader, or the
    jcardsim bridge behind vpcd) with STORE DATA built from the profile (:mod:`lab.applet.perso`).
``emvtap card run --applet --link vpcd:127.0.0.1:35963 [--profile card.json [--install-only]]``
    runs the applets in jcardsim as a vpcd card (the bridge jar); with ``--profile`` they are
    installed and personalised at start; with ``--install-only`` as well, or without a profile,
    they are only installed (the profile gives the AIDs and the ICC key length, the install
    parameter) and wait for ``perso-applet``.
``emvtap card run-applet [--profile card.json] [--link vpcd:HOST:PORT]``
    the same, as a command of its own.

:func:`register` adds these to the ``card`` group (hce_card/cli.py calls it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from emvtap.endpoints import CARD_LINK_KINDS, READER_KINDS, EndpointKind, SpecError, parse_endpoint
from emvtap.profile import CardProfile, ProfileError
from lab.applet.perso import perso_apdus

__all__ = [
    "AppletError",
    "bridge_command",
    "bridge_jar",
    "bridge_jar_is_stale",
    "build_bridge_jar",
    "ensure_bridge_jar",
    "personalise_applets",
    "register",
    "run_bridge",
]

#: applets/ of this checkout (the bridge jar is built there).
APPLETS_DIR = Path(__file__).resolve().parents[2] / "applets"
BRIDGE_JAR_NAME = "emvtap-applets-bridge.jar"
DEFAULT_VPCD_LINK = "vpcd:127.0.0.1:35963"


class AppletError(RuntimeError):
    """The applet tooling could not do what was asked (no jar, no reader, a refused APDU)."""


# --- the bridge ------------------------------------------------------------------------------


def bridge_jar() -> Path:
    """The runnable bridge jar: ``$EMVTAP_APPLET_JAR`` or applets/target/<jar>."""
    override = os.environ.get("EMVTAP_APPLET_JAR")
    return Path(override) if override else APPLETS_DIR / "target" / BRIDGE_JAR_NAME


def build_bridge_jar(quiet: bool = True) -> Path:
    """``mvn package`` in applets/ (offline first, then online for the first fetch)."""
    jar = bridge_jar()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise AppletError("Maven (mvn) is not installed: cannot build the applet bridge")
    base = [mvn, "-B", "-DskipTests", "package"] + (["-q"] if quiet else [])
    for offline in (True, False):
        cmd = base[:1] + (["-o"] if offline else []) + base[1:]
        done = subprocess.run(cmd, cwd=APPLETS_DIR, capture_output=True, text=True, check=False)
        if done.returncode == 0 and jar.exists():
            return jar
    output = (done.stdout + done.stderr)[-4000:]
    raise AppletError(f"mvn package failed in {APPLETS_DIR}:\n{output}")


def bridge_jar_is_stale() -> bool:
    """True when the jar is missing or older than a source of the applets or the pom (only for
    the jar of this checkout; ``$EMVTAP_APPLET_JAR`` is taken as it is)."""
    jar = bridge_jar()
    if not jar.exists():
        return True
    if os.environ.get("EMVTAP_APPLET_JAR"):
        return False
    built = jar.stat().st_mtime
    sources = [APPLETS_DIR / "pom.xml", *(APPLETS_DIR / "src" / "main").rglob("*.java")]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def ensure_bridge_jar() -> Path:
    """The bridge jar, built first when it is missing or stale."""
    if bridge_jar_is_stale():
        click.echo(f"building {BRIDGE_JAR_NAME} (mvn package in {APPLETS_DIR})", err=True)
        return build_bridge_jar()
    return bridge_jar()


def _vpcd_address(link: str) -> str:
    try:
        endpoint = parse_endpoint(link, CARD_LINK_KINDS, bare_kind=True)
    except SpecError as exc:
        raise AppletError(f"the applet bridge needs a vpcd:HOST:PORT link: {exc}") from None
    if endpoint.kind is not EndpointKind.VPCD or endpoint.address is None:
        raise AppletError(f"the applet bridge needs a vpcd:HOST:PORT link, not {link!r}")
    return str(endpoint.address)


def bridge_command(
    link: str = DEFAULT_VPCD_LINK,
    profile: Path | None = None,
    timing_log: Path | None = None,
    aid: str | None = None,
    once: bool = False,
    java: str = "java",
    install_only: bool = False,
) -> list[str]:
    """The command line that runs the bridge jar."""
    cmd = [java, "-jar", str(bridge_jar()), "--vpcd", _vpcd_address(link)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
        if install_only:
            cmd.append("--install-only")
    if timing_log is not None:
        cmd += ["--timing-log", str(timing_log)]
    if aid is not None:
        cmd += ["--aid", aid]
    if once:
        cmd.append("--once")
    return cmd


def run_bridge(link: str, profile: Path | None = None, timing_log: Path | None = None,
               aid: str | None = None, install_only: bool = False) -> int:
    """Runs the bridge in the foreground until Ctrl-C or SIGTERM; returns its exit code."""
    ensure_bridge_jar()
    children: list[subprocess.Popen[bytes]] = []
    # The handler goes in before the fork: the JVM must start with SIGTERM at its default
    # (a JVM that inherits an ignored SIGTERM keeps ignoring it and outlives this process).
    previous = signal.signal(signal.SIGTERM, lambda *_: [c.terminate() for c in children])
    try:
        proc = subprocess.Popen(bridge_command(link, profile, timing_log, aid,
                                               install_only=install_only),
                                preexec_fn=_default_sigterm)
        children.append(proc)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _default_sigterm() -> None:
    """In the bridge's process before exec: SIGTERM at its default disposition."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --- personalisation through PC/SC ------------------------------------------------------------


def _pick_reader(spec: str) -> Any:
    from smartcard.System import readers

    try:
        endpoint = parse_endpoint(spec, READER_KINDS)
    except SpecError as exc:
        raise AppletError(f"perso-applet needs a pcsc: reader: {exc}") from None
    if endpoint.kind is not EndpointKind.PCSC:
        raise AppletError(f"perso-applet needs a pcsc: reader, not {spec!r}")
    name = endpoint.argument
    available = readers()
    if not available:
        raise AppletError("no PC/SC reader (is pcscd running?)")
    if name == "" or name.isdigit():
        index = int(name or 0)
        if index >= len(available):
            raise AppletError(f"no PC/SC reader {index}: {[str(r) for r in available]}")
        return available[index]
    exact = [r for r in available if str(r) == name]
    matches = exact or [r for r in available if name in str(r)]
    if len(matches) != 1:
        names = [str(r) for r in available]
        raise AppletError(f"reader {name!r} matches {len(matches)} of {names}")
    return matches[0]


def personalise_applets(
    profile: CardProfile,
    reader: str,
    timeout: float = 10.0,
    log: Callable[[str], None] | None = None,
) -> int:
    """Sends the whole personalisation to the card in ``reader`` (waiting up to ``timeout``
    seconds for one); returns the number of APDUs. Any status other than 9000 stops it."""
    from smartcard.CardRequest import CardRequest
    from smartcard.Exceptions import CardConnectionException, CardRequestTimeoutException

    target = _pick_reader(reader)
    try:
        service = CardRequest(timeout=timeout, readers=[target]).waitforcard()
    except CardRequestTimeoutException as exc:
        raise AppletError(f"no card in {target} after {timeout:g} s") from exc
    connection = service.connection
    try:
        connection.connect()
        apdus = perso_apdus(profile)
        for n, apdu in enumerate(apdus):
            _data, sw1, sw2 = connection.transmit(list(apdu))
            sw = (sw1 << 8) | sw2
            if log is not None:
                log(f"{apdu[:5].hex().upper()}… → {sw:04X}")
            if sw != 0x9000:
                what = "SELECT" if apdu[1] == 0xA4 else f"STORE DATA block {apdu[3]}"
                raise AppletError(f"APDU {n + 1}/{len(apdus)} ({what}) answered {sw:04X}"
                                  + (" (already personalised?)" if sw == 0x6985 else ""))
        return len(apdus)
    except CardConnectionException as exc:
        raise AppletError(f"card connection: {exc}") from exc
    finally:
        try:
            connection.disconnect()
        except CardConnectionException:
            pass


# --- click ------------------------------------------------------------------------------------


def _load_profile(path: str | Path) -> CardProfile:
    try:
        return CardProfile.load(path)
    except (ProfileError, OSError) as exc:
        raise click.UsageError(f"cannot load the profile: {exc}") from exc


@click.command("perso-applet")
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="Card profile JSON (emvtap perso).")
@click.option("--reader", default="pcsc:0", show_default=True,
              help="pcsc:INDEX or pcsc:NAME (the card or the bridge's vpcd reader).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for a card.")
@click.option("--verbose", is_flag=True, help="Print each APDU's header and status word.")
def perso_applet(profile_path: str, reader: str, timeout: float, verbose: bool) -> None:
    """Personalise the PPSE and payment applets from a card profile (STORE DATA, once)."""
    profile = _load_profile(profile_path)
    try:
        count = personalise_applets(profile, reader, timeout,
                                    (lambda s: click.echo(s, err=True)) if verbose else None)
    except AppletError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"personalised {len(profile.applications)} payment applet(s) and the PPSE "
               f"with {count} APDUs", err=True)


_link_option = click.option("--link", default=DEFAULT_VPCD_LINK, show_default=True,
                            help="vpcd:HOST:PORT the bridge connects to.")
_timing_option = click.option("--timing-log", type=click.Path(dir_okay=False, path_type=Path),
                              default=None, help="Per-APDU processing time in jcardsim (TSV).")
_install_only_option = click.option(
    "--install-only", is_flag=True,
    help="With --profile: install as the profile needs, personalise later (perso-applet).")


@click.command("run-applet")
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Install and personalise from this profile at start.")
@_link_option
@_timing_option
@_install_only_option
@click.option("--aid", default=None, help="Payment applet AID without --profile.")
def run_applet(profile_path: str | None, link: str, timing_log: Path | None,
               install_only: bool, aid: str | None) -> None:
    """Run the Java Card applets in jcardsim as a vpcd card (the bridge jar)."""
    try:
        sys.exit(run_bridge(link, Path(profile_path) if profile_path else None, timing_log, aid,
                            install_only))
    except AppletError as exc:
        raise click.ClickException(str(exc)) from exc


def _add_applet_flag(run: click.Command) -> None:
    """``card run --applet``: the same command serves the applet bridge instead of the HCE card
    (its ``--profile`` becomes optional: without it the applets wait for perso-applet)."""
    if any(p.name == "applet" for p in run.params):
        return
    for param in run.params:
        if param.name == "profile_path":
            param.required = False
    run.params.append(click.Option(["--applet"], is_flag=True,
                                   help="Run the Java Card applets (jcardsim bridge) instead."))
    run.params.append(click.Option(["--timing-log"], type=click.Path(dir_okay=False,
                                                                     path_type=Path),
                                   default=None, help="With --applet: per-APDU jcardsim time."))
    run.params.append(click.Option(["--install-only"], is_flag=True,
                                   help="With --applet --profile: install, perso later."))
    hce_run = run.callback
    assert hce_run is not None

    def callback(applet: bool, timing_log: Path | None, install_only: bool,
                 **kwargs: Any) -> Any:
        if applet:
            profile = kwargs.get("profile_path")
            try:
                sys.exit(run_bridge(kwargs.get("link", DEFAULT_VPCD_LINK),
                                    Path(profile) if profile else None, timing_log,
                                    install_only=install_only))
            except AppletError as exc:
                raise click.ClickException(str(exc)) from exc
        if kwargs.get("profile_path") is None:
            raise click.UsageError("Missing option '--profile' (needed for the HCE card).")
        return hce_run(**kwargs)

    run.callback = callback


def register(card_group: click.Group, extra: Sequence[click.Command] = ()) -> None:
    """Adds ``perso-applet``, ``run-applet`` and ``run --applet`` to the ``card`` group."""
    card_group.add_command(perso_applet)
    card_group.add_command(run_applet)
    for command in extra:
        card_group.add_command(command)
    run = card_group.commands.get("run")
    if run is not None:
        _add_applet_flag(run)
