"""``emvtap demo``: the whole loop with no hardware and no daemon, in seconds.

A switch on a temporary SQLite file, a personalised device card whose token is provisioned in
the switch's vault, the card on the in-process loopback link, and the terminal tapping it:

1. an online approval - the card's ARQC verified by the switch, the ARPC checked with the card's
   own session key;
2. an offline approval with fDDA under the small-amount limits;
3. a decline - a device card whose token the switch has never seen (DE 39 = 14).

This module is the one place that wires the three actors together, so it imports them; they
never import each other (docs/architecture.md, "Layout and the dependency rule").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

__all__ = ["demo"]


def _arpc_check(profile, result) -> str:  # type: ignore[no-untyped-def]
    """Check the issuer's ARPC the way the card will: PBOC session key from the card's own
    master key and the ATC, ARPC method 1 (Book 2, 8.2.1)."""
    from emvtap.cryptogram import verify_arpc_method_1
    from emvtap.keys import derive_pboc_session_key

    arpc = (result.online or {}).get("arpc")
    if not arpc:
        return "no ARPC in the response"
    sk = derive_pboc_session_key(profile.application.keys.ac, bytes.fromhex(result.atc))
    ok = verify_arpc_method_1(sk, bytes.fromhex(result.cryptogram), bytes.fromhex(arpc))
    return "ARPC verified with the card's session key" if ok else "ARPC did NOT verify"


@click.command()
@click.option("--clear-pan", is_flag=True, help="Show PANs unmasked in the traces.")
@click.option("--quiet", is_flag=True, help="Outcomes only, no APDU traces.")
def demo(clear_pan: bool, quiet: bool) -> None:
    """A full tap end to end on the embedded default: perso, switch, card, terminal."""
    from rich.console import Console
    from rich.rule import Rule

    from emvtap.masking import mask_pan
    from emvtap.perso import generate_profile
    from hce_card.card import HceCard
    from switch.enroll import enroll_profile
    from switch.store import Store
    from switch.testing import running_switch
    from terminal.config import TerminalConfig
    from terminal.pay import perform_transaction
    from terminal.render import render_result
    from terminal.transport import open_transport

    console = Console()
    config = TerminalConfig.default()
    with tempfile.TemporaryDirectory(prefix="emvtap-demo-") as tmp:
        db = Path(tmp) / "switch.db"
        profile = generate_profile(1)
        stranger = generate_profile(2)
        with Store(db) as store:
            enroll_profile(store, profile.to_dict(), balance=100_000)
        token = profile.token
        assert token is not None
        console.print(Rule("emvtap demo"))
        console.print(f"device card: token (MPAN) {mask_pan(profile.pan)} → card (SPAN) "
                      f"{mask_pan(token.span)} on device {token.device_id}, provisioned in "
                      f"the switch vault {db.name}")
        taps = [
            ("online approval", profile, 15000),
            ("offline approval with fDDA", profile, 1234),
            ("decline: token not in the vault", stranger, 15000),
        ]
        failures = 0
        with running_switch(db, synchronous="NORMAL") as server:
            switch = f"127.0.0.1:{server.port}"
            console.print(f"switch listening on {switch}\n")
            cards = {1: HceCard(profile), 2: HceCard(stranger)}
            for title, prof, amount in taps:
                console.print(Rule(f"tap: {title}, amount {amount / 100:.2f}"))
                transport = open_transport("loopback:", card=cards[prof.seed])
                result = perform_transaction(transport, config, amount, switch=switch,
                                             clear_pan=clear_pan)
                render_result(result, console, trace=not quiet)
                if result.online.get("arpc"):
                    console.print(f"[bold]card-side check:[/] {_arpc_check(prof, result)}")
                expected = "DECLINED" if title.startswith("decline") else "APPROVED"
                if str(result.final_outcome) != expected:
                    failures += 1
        with Store(db) as store:
            console.print(Rule("switch record"))
            for row in store.authorizations():
                console.print(f"{row['mti']} {mask_pan(row['mpan'] or '')} → "
                              f"{mask_pan(row['span'] or '') or '-'}: DE 39 = "
                              f"{row['response_code']} ({row['reason']})")
    if failures:
        raise click.ClickException(f"{failures} tap(s) did not end as expected")
