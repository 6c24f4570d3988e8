"""Tap time: median and p95 of the whole tap (SELECT PPSE → last card APDU, ODA included) over
pcscd+vpcd and over the in-process loopback, and the terminal's CPU time per tap.

    python bench/tap.py [--taps 50] [--reader "pcsc:Virtual PCD 00 00"] [--vpcd-port 35963]

Needs pcscd running with vpcd (``bash scripts/pcscd-start.sh``) for the PC/SC half; the card
runs in its own process (``emvtap card run``), the terminal in this one. Both halves run in one
invocation so that their ratio is meaningful on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emvtap.perso import generate_profile
from hce_card.card import HceCard
from terminal.config import TerminalConfig
from terminal.pay import perform_transaction
from terminal.transport import open_transport


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def run_taps(make_transport, taps: int, amount: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    config = TerminalConfig.default()
    tap_ms, cpu_ms, apdus = [], [], 0
    outcomes: set[str] = set()
    for _ in range(taps):
        transport = make_transport()
        cpu0 = time.process_time()
        try:
            result = perform_transaction(transport, config, amount, switch="none",
                                         card_timeout=10)
        finally:
            transport.close()
        cpu_ms.append((time.process_time() - cpu0) * 1000)
        tap_ms.append(result.tap_seconds * 1000)
        apdus = len(result.apdus)
        outcomes.add(str(result.outcome))
    return {
        "taps": taps,
        "apdus_per_tap": apdus,
        "outcomes": sorted(outcomes),
        "tap_ms_median": round(statistics.median(tap_ms), 3),
        "tap_ms_p95": round(_p95(tap_ms), 3),
        "terminal_cpu_ms_median": round(statistics.median(cpu_ms), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--taps", type=int, default=50)
    ap.add_argument("--reader", default="pcsc:Virtual PCD 00 00")
    ap.add_argument("--vpcd-port", type=int, default=35963)
    ap.add_argument("--skip-pcsc", action="store_true")
    args = ap.parse_args()

    profile = generate_profile(1)
    report: dict[str, dict] = {}
    for label, amount in (("offline TC + fDDA", 1234), ("online ARQC", 15000)):
        card = HceCard(profile)
        report[f"loopback, {label}"] = run_taps(
            lambda card=card: open_transport("loopback:", card=card), args.taps, amount)

    if not args.skip_pcsc:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "card.json"
            profile.save(path)
            card_proc = subprocess.Popen(
                [sys.executable, "-m", "lab.cli", "card", "run", "--profile", str(path),
                 "--link", f"vpcd:127.0.0.1:{args.vpcd_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for label, amount in (("offline TC + fDDA", 1234), ("online ARQC", 15000)):
                    report[f"pcscd+vpcd, {label}"] = run_taps(
                        lambda: open_transport(args.reader), args.taps, amount)
            finally:
                card_proc.terminate()
                card_proc.wait(10)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
