"""Regenerate ``emvtap/data/test_capk.txt``: the public halves of emvtap's test CAs
(EMV 4.4 Book 2, 11.2 for the checksum column).

    python -m emvtap.tools.gen_test_capk            # rewrite the shipped file
    python -m emvtap.tools.gen_test_capk --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emvtap.capk import (
    TEST_CA_BITS,
    TEST_CA_EXPONENT,
    TEST_CA_INDEX,
    TEST_CA_RIDS,
    CaPublicKey,
    test_ca_private_key,
)

OUTPUT = Path(__file__).resolve().parents[1] / "data" / "test_capk.txt"

HEADER = f"""\
# emvtap generated TEST CA public keys - NOT production keys; a terminal in production mode
# refuses them. Index {TEST_CA_INDEX:02X} is not used by production CAPK lists.
# Each is {TEST_CA_BITS}-bit, e={TEST_CA_EXPONENT}, derived deterministically by
# emvtap.rsa.generate_rsa_key({TEST_CA_BITS}, {TEST_CA_EXPONENT}, b"emvtap test CA " + RID).
# Regenerate with: python -m emvtap.tools.gen_test_capk
# Columns: RID INDEX EXPONENT MODULUS_BITS SHA1_CHECKSUM VERIFIED MODULUS
# Checksum rule (EMV Book 2 sec 11.2): SHA-1(RID || CA PK Index || Modulus || Exponent).
"""


def render() -> str:
    """The text of test_capk.txt, one line per test CA."""
    lines = [
        CaPublicKey.from_public_key(rid, TEST_CA_INDEX, test_ca_private_key(rid).public,
                                    test=True).to_line()
        for rid in TEST_CA_RIDS
    ]
    return HEADER + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the file")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="ascii") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; rerun without --check", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="ascii")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
