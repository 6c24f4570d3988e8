"""switch/README.md stays the truth of the code: the response-code table is codes.RESPONSE_CODES
and the field table lists every data element of emvtap.iso8583.FIELDS."""

from __future__ import annotations

import re
from pathlib import Path

import switch
from emvtap.iso8583 import FIELDS
from switch.codes import RESPONSE_CODES

README = (Path(switch.__file__).parent / "README.md").read_text()


def test_readme_response_code_table_is_the_code_table():
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `(\w\w)` \|", README, re.M))
    assert rows == {reason.value: outcome.code for reason, outcome in RESPONSE_CODES.items()}


def test_readme_field_table_lists_every_data_element():
    table = README.split("## ISO 8583 field table", 1)[1].split("DE 48 token data", 1)[0]
    listed = {int(n) for n in re.findall(r"^\| (\d+) \| [a-z]+ ", table, re.M)}
    assert listed == set(FIELDS)
