"""The Java Card applet beside the HCE card: tap time through pcscd+vpcd for each, and the
applet's own processing time per command inside jcardsim (from the bridge's timing log).

    python bench/applet.py [--taps 30] [--vpcd-port 35963]

Needs pcscd with vpcd (``bash scripts/pcscd-start.sh``) and the bridge jar (built with
``mvn -q package`` in applets/ when missing). Each card runs in its own process
(``emvtap card run --applet`` / ``emvtap card run``), the terminal in this one; the vpcd slot is
taken with the same flock the integration tests use, so the two never collide.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from smartcard import scard

from emvtap.perso import generate_profile
from lab.applet.cli import ensure_bridge_jar
from terminal.config import TerminalConfig
from terminal.pay import perform_transaction
from terminal.transport import open_transport

EMVTAP = [sys.executable, "-m", "lab.cli"]
INS_NAMES = {"A4": "SELECT", "A8": "GPO", "B2": "READ RECORD", "CA": "GET DATA",
             "AE": "GENERATE AC", "88": "INTERNAL AUTHENTICATE", "82": "EXTERNAL AUTHENTICATE",
             "C0": "GET RESPONSE", "E2": "STORE DATA"}
#: (label, amount in minor units): within the card's offline limit, and above it.
CASES = (("offline TC + fDDA", 1234), ("online ARQC", 15000))


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


@contextlib.contextmanager
def vpcd_lock(port: int) -> Iterator[None]:
    """The integration tests' slot lock (tests/integration/virtual_hw.py)."""
    fd = os.open(f"/tmp/emvtap-vpcd-{port}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def wait_for_card(reader: str, present: bool, timeout: float = 20.0) -> None:
    """Wait on pcscd's reader state (SCardGetStatusChange), never a fixed sleep; a context
    that breaks (pcscd restarted by someone else) is opened again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc != scard.SCARD_S_SUCCESS:
            continue
        state = scard.SCARD_STATE_UNAWARE
        try:
            while time.monotonic() < deadline:
                ms = max(0, int((deadline - time.monotonic()) * 1000))
                rc, states = scard.SCardGetStatusChange(ctx, ms, [(reader, state)])
                if rc == scard.SCARD_S_SUCCESS:
                    ev = states[0][1]
                    if bool(ev & scard.SCARD_STATE_PRESENT) == present:
                        return
                    state = ev & ~scard.SCARD_STATE_CHANGED
                elif (rc & 0xFFFFFFFF) != (scard.SCARD_E_TIMEOUT & 0xFFFFFFFF):
                    break  # the context went bad: open another
        except SystemError:
            pass  # pyscard on a context pcscd dropped
        finally:
            with contextlib.suppress(SystemError):
                scard.SCardReleaseContext(ctx)
    raise TimeoutError(f"{reader}: card {'present' if present else 'absent'} not seen")


def run_taps(reader: str, taps: int, amount: int) -> dict[str, Any]:
    config = TerminalConfig.default()
    tap_ms: list[float] = []
    outcomes: dict[str, int] = {}
    apdus = 0
    for _ in range(taps):
        transport = open_transport(reader)
        try:
            result = perform_transaction(transport, config, amount, switch="none",
                                         card_timeout=10)
        finally:
            transport.close()  # disconnect and release the PC/SC context (pcscd limits them)
        tap_ms.append(result.tap_seconds * 1000)
        apdus = len(result.apdus)
        outcomes[str(result.outcome)] = outcomes.get(str(result.outcome), 0) + 1
    return {"taps": taps, "apdus_per_tap": apdus, "outcomes": outcomes,
            "tap_ms_median": round(statistics.median(tap_ms), 3),
            "tap_ms_p95": round(_p95(tap_ms), 3)}


def with_card(cmd: list[str], reader: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs ``body`` with the card process ``cmd`` in the vpcd slot, then waits for the slot to
    be empty again."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_card(reader, present=True)
        result = body()
    except BaseException:
        proc.kill()
        proc.wait(20)
        raise
    proc.terminate()
    code = proc.wait(20)
    try:
        wait_for_card(reader, present=False)
    except TimeoutError as exc:
        err = proc.stderr.read()[-1500:] if proc.stderr else ""
        raise TimeoutError(f"{exc} after {cmd[3:6]} exited with {code}:\n{err}") from None
    return result


def jcardsim_times(timing_logs: list[Path]) -> dict[str, dict[str, Any]]:
    """Per INS: count, median and p95 of the microseconds inside jcardsim (transmitCommand)."""
    per: dict[str, list[float]] = {}
    for log in timing_logs:
        for line in log.read_text().splitlines():
            ins, ns, _sw, _lc, _lr = line.split("\t")
            per.setdefault(ins, []).append(int(ns) / 1000)
    return {f"{INS_NAMES.get(ins, ins)} ({ins})": {
                "count": len(us), "us_median": round(statistics.median(us), 1),
                "us_p95": round(_p95(us), 1)}
            for ins, us in sorted(per.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--taps", type=int, default=30)
    ap.add_argument("--vpcd-port", type=int, default=35963)
    ap.add_argument("--reader", default=None, help="default: the vpcd reader of --vpcd-port")
    args = ap.parse_args()
    reader_name = args.reader or f"Virtual PCD 00 {args.vpcd_port - 35963:02d}"
    reader = f"pcsc:{reader_name}"
    link = f"vpcd:127.0.0.1:{args.vpcd_port}"
    ensure_bridge_jar()

    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, vpcd_lock(args.vpcd_port):
        base = Path(tmp)
        generate_profile(5).save(base / "card.json")
        timing_logs = [base / f"timing-{n}.tsv" for n in range(len(CASES))]
        hce_cmd = [*EMVTAP, "card", "run", "--link", link, "--profile", str(base / "card.json"),
                   "--state", str(base / "hce.state.json")]
        for n, (label, amount) in enumerate(CASES):
            applet_cmd = [*EMVTAP, "card", "run", "--applet", "--link", link, "--profile",
                          str(base / "card.json"), "--timing-log", str(timing_logs[n])]
            for kind, cmd in (("applet (jcardsim)", applet_cmd), ("HCE card", hce_cmd)):
                report[f"{kind}, {label}"] = with_card(
                    cmd, reader_name, lambda amount=amount: run_taps(reader, args.taps, amount))
                print(f"{kind}, {label}: {report[f'{kind}, {label}']['tap_ms_median']} ms",
                      file=sys.stderr)
        for n, (label, _amount) in enumerate(CASES):
            report[f"applet processing in jcardsim, {label}"] = jcardsim_times([timing_logs[n]])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
