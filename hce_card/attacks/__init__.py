"""The card as a test bench: attacks that make the HCE card lie in defined ways.

- :mod:`.model` - an attack as data (target commands, mutations, scenario, expected verdict);
- :mod:`.mutators` - the operations that change an answer;
- :mod:`.card` - :class:`AttackCard`, the layer around the card's ``process(apdu)``;
- :mod:`.catalogue` - the built-in catalogue, one data-table entry per attack;
- :mod:`.files` - YAML attack files.
"""

from hce_card.attacks.card import AttackCard, CardLeftField
from hce_card.attacks.catalogue import CATALOGUE, KERNEL_RULES, attacks_by_id, catalogue, resolve
from hce_card.attacks.files import load_attack_file
from hce_card.attacks.model import Attack, AttackError, Mutation, Scenario, Verdict

__all__ = [
    "CATALOGUE",
    "KERNEL_RULES",
    "Attack",
    "AttackCard",
    "AttackError",
    "CardLeftField",
    "Mutation",
    "Scenario",
    "Verdict",
    "attacks_by_id",
    "catalogue",
    "load_attack_file",
    "resolve",
]
