"""Card-read time: median and p95 of ``terminal read`` (connect → last APDU, certificate chain
included) of each recorded card in tests/data/cards, over the in-process loopback, over nfcpy's
udp radio, and over pcscd+vpcd; APDU count per read.

    python bench/read.py [--reads 10] [--reader "pcsc:Virtual PCD 00 00"] [--vpcd-port 35963]
    flock /tmp/emvtap-vpcd.lock python bench/read.py        # when others use the vpcd slots

The card (the recorded-card personality) runs in a thread of this process on its link.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emvtap.capk import CapkStore
from hce_card.link.nfc_target import NfcTargetLink
from hce_card.link.vpcd import VpcdLink
from hce_card.recorded import RecordedCard
from terminal.config import TerminalConfig
from terminal.read import read_card
from terminal.transport import open_transport
from terminal.transport.loopback import LoopbackTransport

CARDS = Path(__file__).resolve().parents[1] / "tests" / "data" / "cards"


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def _free_udp_port() -> int:
    for port in range(41000, 42000):
        if not socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit():
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


def reads(make: Callable[[], Any], n: int) -> dict[str, float]:
    config, capks = TerminalConfig.default(), CapkStore.default()
    ms, apdus = [], 0
    for _ in range(n):
        transport = make()
        start = time.perf_counter()
        atr = transport.connect(10)
        report = read_card(transport, atr, reader="bench", config=config, capks=capks)
        ms.append((time.perf_counter() - start) * 1000)
        apdus = len(report.apdus)
        transport.close()
        assert report.complete, report.errors
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(_p95(ms), 1),
            "apdus": apdus}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reads", type=int, default=10)
    ap.add_argument("--reader", default="pcsc:Virtual PCD 00 00")
    ap.add_argument("--vpcd-port", type=int, default=35963)
    ap.add_argument("--no-vpcd", action="store_true")
    args = ap.parse_args()
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(CARDS.glob("*.json")):
        card = RecordedCard.load(path)
        row = out[path.stem] = {"loopback": reads(lambda c=card: LoopbackTransport(c),
                                                  args.reads)}
        port = _free_udp_port()
        link = NfcTargetLink(card, f"udp:127.0.0.1:{port}")
        link.start()
        link.listening.wait(5)
        try:
            row["nfc:udp"] = reads(lambda p=port: open_transport(f"nfc:udp:127.0.0.1:{p}"),
                                   args.reads)
        finally:
            link.close()
        if not args.no_vpcd:
            vlink = VpcdLink(card, "127.0.0.1", args.vpcd_port)
            vlink.start()
            vlink.connected.wait(5)
            time.sleep(0.5)  # pcscd polls its readers every 400 ms
            try:
                row["pcsc+vpcd"] = reads(lambda: open_transport(args.reader), args.reads)
            finally:
                vlink.close()
                time.sleep(0.5)
        print(path.stem, json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
