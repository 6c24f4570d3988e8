"""Test assertions with ids (the EMVCo Entry Point test assertions are the model): each one a
card image (card product + mutations of the lying card), terminal settings (amount, tap date,
configuration keys) and the expected outcome, TVR, TSI, CVM and selected AID.

The table is YAML (``tests/assertions/*.yaml``, format :data:`ASSERTIONS_FORMAT`); every entry
becomes an :class:`~hce_card.attacks.Attack` so that the attack bench runs it against any
terminal exactly as it runs the attack catalogue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hce_card.attacks.model import Attack, AttackError, attack_from_dict

__all__ = ["ASSERTIONS_FORMAT", "load_assertions"]

ASSERTIONS_FORMAT = "emvtap-test-assertions/1"


def _entry(d: dict[str, Any], where: str) -> Attack:
    if not isinstance(d, dict):
        raise AttackError(f"{where}: an assertion is a mapping")
    scenario = {"card": d.get("card", "quickpass"), "amount": d.get("amount", 1000)}
    for key in ("terminal", "date", "taps"):
        if key in d:
            scenario[key] = d[key]
    mutations = d.get("mutations") or []
    entry = {
        "id": d.get("id"), "title": d.get("title", ""), "family": "shadowing",
        "description": d.get("area", ""), "source": d.get("spec", ""),
        "kernel_rule": d.get("rule", ""), "scenario": scenario,
        "expected": d.get("expected"),
        "mutations": mutations or [{"op": "add", "target": "get_data:0", "tag": "00"}],
    }
    attack = attack_from_dict(entry, where)
    if not mutations:  # the card image unchanged: no lie at all
        from dataclasses import replace

        attack = replace(attack, mutations=())
    return attack


def load_assertions(path: str | Path) -> list[Attack]:
    """Every assertion of the table at *path*, in order; ids must be unique."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AttackError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != ASSERTIONS_FORMAT:
        raise AttackError(f"{path}: not a test-assertion table (format {ASSERTIONS_FORMAT})")
    entries = doc.get("assertions")
    if not isinstance(entries, list):
        raise AttackError(f"{path}: 'assertions' must be a list")
    out = [_entry(d, f"{path} assertion {i + 1}") for i, d in enumerate(entries)]
    seen: set[str] = set()
    for a in out:
        if a.id in seen:
            raise AttackError(f"{path}: assertion id {a.id} appears twice")
        seen.add(a.id)
    return out
