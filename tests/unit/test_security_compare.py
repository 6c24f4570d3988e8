"""Secrets are compared in constant time (``hmac.compare_digest``): cryptograms, ARPCs, MACs,
the admin token - and the current PIN a PIN CHANGE script must match (Book 3 6.5.10)."""

from __future__ import annotations

import hmac

from card_fixtures import QPBOC_AID, ok
from test_card_scripts import Online, enciphered_pin


def test_the_current_pin_of_a_pin_change_is_compared_in_constant_time(monkeypatch):
    online = Online()
    current = bytes.fromhex("241234FFFFFFFFFF")
    ok(online.send(online.script(0x84, 0x24, 0, 2, enciphered_pin(online, current))))
    compared: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    newer = bytes.fromhex("26123456FFFFFFFF")
    ok(online.send(online.script(0x84, 0x24, 0, 1, enciphered_pin(online, newer, current))))
    assert online.card.store.app(QPBOC_AID).pin_block == newer.hex().upper()
    shown = current.hex().upper()
    assert any(shown in str(a) or shown in str(b) for a, b in compared), compared
