"""Attack files: YAML naming catalogue attacks and defining new ones in the catalogue's form.

.. code-block:: yaml

    format: emvtap-attacks/1
    attacks:
      - visa-limit-bypass            # a catalogue id
      - id: my-shadow-expiry         # a new attack, same fields as a catalogue entry
        family: shadowing
        expected: {outcomes: not approved offline}
        mutations:
          - {op: add, target: gpo, path: "77", tag: 5F24, value: "991231"}
"""

from __future__ import annotations

from pathlib import Path

import yaml

from hce_card.attacks.catalogue import resolve
from hce_card.attacks.model import Attack, AttackError, attack_from_dict

__all__ = ["ATTACK_FILE_FORMAT", "load_attack_file"]

ATTACK_FILE_FORMAT = "emvtap-attacks/1"


def load_attack_file(path: str | Path) -> list[Attack]:
    """The attacks an attack file names or defines, in its order."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AttackError(f"{path}: {exc}") from exc
    if isinstance(doc, list):
        doc = {"attacks": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("attacks"), list):
        raise AttackError(f"{path}: expected a mapping with a list 'attacks'")
    fmt = doc.get("format", ATTACK_FILE_FORMAT)
    if fmt != ATTACK_FILE_FORMAT:
        raise AttackError(f"{path}: format {fmt!r}, expected {ATTACK_FILE_FORMAT}")
    out: list[Attack] = []
    for i, entry in enumerate(doc["attacks"]):
        if isinstance(entry, str):
            out += resolve(entry)
        else:
            out.append(attack_from_dict(entry, f"{path} attack {i + 1}"))
    if not out:
        raise AttackError(f"{path}: no attacks")
    return out
