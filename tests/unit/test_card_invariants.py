"""Card-internal preconditions are raised, not asserted: ``python -O`` strips ``assert``, and the
card must still end a broken command in a defined answer (6F00, logged) rather than an
AttributeError deep inside the cryptogram code (Book 3 6.5.5: the card answers every command)."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from card_fixtures import QPBOC_AID, TTQ_FULL, new_card, ok, transaction

from emvtap.apdu import SW
from hce_card.session import CardInvariantError, Session, require_icc_key

CARD = Path(__file__).resolve().parents[2] / "hce_card"
P1_ARQC = 0x80


@pytest.mark.parametrize("name", ["full_path.py", "quick_path.py"])
def test_the_card_paths_use_no_assert_for_control_flow(name: str) -> None:
    tree = ast.parse((CARD / name).read_text())
    asserts = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert asserts == [], f"hce_card/{name} asserts on lines {asserts}"


def test_a_session_without_transaction_keys_raises_a_named_error() -> None:
    with pytest.raises(CardInvariantError, match="no transaction keys in this session"):
        Session().transaction_keys()
    with pytest.raises(CardInvariantError, match="CDA signature: the application has no ICC"):
        require_icc_key(None, "CDA signature")


def test_generate_ac_without_transaction_keys_answers_6f00_and_logs_why(
        caplog: pytest.LogCaptureFixture) -> None:
    card, term = new_card()
    values = transaction(ttq=TTQ_FULL)
    term.full_path(QPBOC_AID, values)
    card.selected.session.keys = None  # the invariant GET PROCESSING OPTIONS establishes, broken
    with caplog.at_level(logging.ERROR, logger="emvtap.card"):
        response = term.generate_ac(P1_ARQC, values)
    assert (response.data, response.sw) == (b"", SW.NO_PRECISE_DIAGNOSIS)
    assert any(r.exc_info and isinstance(r.exc_info[1], CardInvariantError)
               for r in caplog.records)


def test_the_invariant_holds_under_python_dash_o() -> None:
    """The same check in an interpreter that strips asserts."""
    code = ("from hce_card.session import CardInvariantError, Session\n"
            "try:\n    Session().transaction_keys()\nexcept CardInvariantError as e:\n"
            "    print('raised:', e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == ("raised: no transaction keys in this session "
                                  "(GET PROCESSING OPTIONS chooses them)")


def test_the_first_generate_ac_still_answers_with_keys_in_place() -> None:
    card, term = new_card()
    values = transaction(ttq=TTQ_FULL)
    term.full_path(QPBOC_AID, values)
    response = ok(term.generate_ac(P1_ARQC, values))
    assert response.sw == SW.OK and response.data[0] == 0x80
