"""APDU round trip over nfcpy's ``udp`` radio on loopback: the terminal's nfcpy reader, ISO-DEP
framing (docs/architecture.md, links), and the card side, with an echo card. Median and p95 of
``--apdus`` SELECT round trips.

    python bench/nfc_udp.py [--apdus 200]

A measurement, not a test (the suite asserts no timings).
"""

from __future__ import annotations

import argparse
import json
import statistics

from hce_card.link.nfc_target import NfcTargetLink
from lab.hil.rigs import free_udp_port
from terminal.transport.nfc import NfcTransport

SELECT = bytes.fromhex("00A4040007A000000333010100")


class EchoCard:
    """Answers every command with its data field and 9000."""

    atr = bytes.fromhex("3B8880010000000000718100F9")

    def reset(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        return (apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b"") + b"\x90\x00"


def measure(apdus: int) -> dict[str, float]:
    port = free_udp_port()
    link = NfcTargetLink(EchoCard(), f"udp:127.0.0.1:{port}")
    link.start()
    if not link.listening.wait(5):
        raise SystemExit("the card side did not start listening")
    reader = NfcTransport(f"udp:127.0.0.1:{port}")
    try:
        reader.connect(5)
        for _ in range(apdus):
            if reader.transmit(SELECT) != SELECT[5:-1] + b"\x90\x00":
                raise SystemExit("echo card answered something else")
        times = sorted(e.seconds * 1000 for e in reader.exchanges)
    finally:
        reader.close()
        link.close()
    return {"apdus": len(times), "median_ms": round(statistics.median(times), 3),
            "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apdus", type=int, default=200)
    print(json.dumps(measure(parser.parse_args().apdus)))


if __name__ == "__main__":
    main()
