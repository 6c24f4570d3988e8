"""switch.token_states: token states and lifecycle effects as enums, end to end - the store
hands back TokenState members, the lifecycle table names TokenEffect members, and the SQL
CHECK is built from the enum."""

from __future__ import annotations

import pytest

from switch.enroll import enroll_profile
from switch.lifecycle import LIFECYCLE, Policy, apply_event
from switch.store import Store, StoreError
from switch.testing import make_profile
from switch.token_states import Effect, TokenEffect, TokenState


def test_a_token_is_suspended_while_any_hold_remains() -> None:
    assert TokenState.of_holds(set()) is TokenState.ACTIVE
    assert TokenState.of_holds({"bank"}) is TokenState.SUSPENDED


def test_every_lifecycle_row_names_an_effect_of_the_enum() -> None:
    for event, rule in LIFECYCLE.items():
        assert isinstance(rule.token_effect, Effect), event
        assert rule.token_effect.kind in TokenEffect
        takes_a_name = rule.token_effect.kind in (TokenEffect.HOLD, TokenEffect.RELEASE,
                                                  TokenEffect.POLICY)
        assert bool(rule.token_effect.name) == takes_a_name, event


def test_the_passcode_policy_is_a_hold_or_a_delete() -> None:
    assert Policy("suspend").effect("passcode_removed") == Effect(TokenEffect.HOLD,
                                                                  "passcode_removed")
    assert Policy("delete").effect("passcode_removed").kind is TokenEffect.DELETE


def test_states_come_back_from_the_store_as_the_enum(tmp_path) -> None:
    with Store(tmp_path / "s.db") as store:
        mpan = enroll_profile(store, make_profile(4))
        assert store.token(mpan).state is TokenState.ACTIVE
        (change,) = apply_event(store, "token.suspend", mpan, channel="bank")
        assert (change.from_state, change.to_state) == (TokenState.ACTIVE, TokenState.SUSPENDED)
        assert store.token(mpan).state is TokenState.SUSPENDED
        apply_event(store, "token.delete", mpan, channel="bank")
        assert store.token(mpan).state is TokenState.DELETED
        assert store.tokens(include_deleted=False) == []
        with pytest.raises(StoreError):
            store.update_token(mpan, state="frozen")
