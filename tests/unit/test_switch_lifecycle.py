"""switch.lifecycle: one test per row of switch/LIFECYCLE.md (docs/domain.md, "Token lifecycle"),
plus the rules every row shares (channels, holds, the append-only log)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import switch
from switch.lifecycle import LIFECYCLE, LifecycleError, Policy, apply_event
from switch.store import Store

SPAN_A, SPAN_B = "6228480000000011", "6228480000000029"
A_PHONE, B_PHONE, A_WATCH = "6250940000000019", "6250940000000027", "6250940000000035"
KEYS = (b"\x01" * 16, b"\x02" * 16, b"\x03" * 16)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.db") as s:
        account = s.add_account(balance=1000)
        s.add_card(SPAN_A, account, "3112", par="U001" + "A" * 25)
        s.add_card(SPAN_B, account, "3112", par="U001" + "B" * 25)
        s.add_device("phone", "handset-se", account)
        s.add_device("watch", "wearable-se", account)
        for mpan, span, device, default in (
            (A_PHONE, SPAN_A, "phone", True),
            (B_PHONE, SPAN_B, "phone", False),
            (A_WATCH, SPAN_A, "watch", True),
        ):
            s.add_token(
                mpan=mpan,
                span=span,
                device_id=device,
                token_expiry="3012",
                psn="01",
                token_requestor_id="50012345678",
                par="U001" + "A" * 25,
                keys=KEYS,
                is_default=default,
            )
        yield s


def states(store: Store) -> dict[str, str]:
    return {t.mpan: t.state for t in store.tokens()}


def defaults(store: Store, device: str) -> list[str]:
    return [t.mpan for t in store.tokens(device_id=device, include_deleted=False) if t.is_default]


# --- one test per row ---------------------------------------------------------------------------


def test_token_suspend_holds_the_token_for_the_asking_channel(store):
    changes = apply_event(store, "token.suspend", A_PHONE, channel="bank")
    assert [(c.mpan, c.from_state, c.to_state, c.holds) for c in changes] == [
        (A_PHONE, "active", "suspended", ("bank",))
    ]
    assert states(store) == {A_PHONE: "suspended", B_PHONE: "active", A_WATCH: "active"}


def test_token_resume_releases_only_the_asking_channels_hold(store):
    apply_event(store, "token.suspend", A_PHONE, channel="bank")
    with pytest.raises(LifecycleError, match="held by"):
        apply_event(store, "token.resume", A_PHONE, channel="device")
    apply_event(store, "token.suspend", A_PHONE, channel="device")
    apply_event(store, "token.resume", A_PHONE, channel="device")
    assert store.token(A_PHONE).state == "suspended"  # the bank still holds it
    apply_event(store, "token.resume", A_PHONE, channel="bank")
    assert store.token(A_PHONE).state == "active"
    assert store.token(A_PHONE).holds == ()


def test_token_delete_is_final_and_promotes_a_new_default(store):
    apply_event(store, "token.delete", A_PHONE, channel="device")
    assert store.token(A_PHONE).state == "deleted"
    assert defaults(store, "phone") == [B_PHONE]
    for event in ("token.resume", "token.suspend", "token.delete"):
        with pytest.raises(LifecycleError, match="deleted"):
            apply_event(store, event, A_PHONE, channel="bank")


def test_token_set_default_moves_the_default(store):
    apply_event(store, "token.set_default", B_PHONE, channel="device")
    assert defaults(store, "phone") == [B_PHONE]
    assert defaults(store, "watch") == [A_WATCH]


def test_token_update_changes_token_data_not_state(store):
    apply_event(
        store,
        "token.update",
        A_PHONE,
        channel="bank",
        params={"token_expiry": "2812", "domain": {"entry_modes": ["07"]}},
    )
    token = store.token(A_PHONE)
    assert (token.token_expiry, dict(token.domain), token.state) == (
        "2812",
        {"entry_modes": ["07"]},
        "active",
    )
    with pytest.raises(LifecycleError):
        apply_event(store, "token.update", A_PHONE, channel="bank", params={"state": "active"})


def test_card_lost_suspends_every_mpan_of_the_card(store):
    changes = apply_event(store, "card.lost", SPAN_A, channel="bank")
    assert {c.mpan for c in changes} == {A_PHONE, A_WATCH}
    assert states(store) == {A_PHONE: "suspended", B_PHONE: "active", A_WATCH: "suspended"}
    assert store.card(SPAN_A).status == "lost"


def test_card_found_resumes_what_card_lost_suspended(store):
    apply_event(store, "token.suspend", A_WATCH, channel="device")
    apply_event(store, "card.lost", SPAN_A, channel="bank")
    apply_event(store, "card.found", SPAN_A, channel="bank")
    assert store.card(SPAN_A).status == "active"
    assert states(store) == {A_PHONE: "active", B_PHONE: "active", A_WATCH: "suspended"}
    assert store.token(A_WATCH).holds == ("device",)


def test_card_renewed_with_new_pan_remaps_every_mpan(store):
    apply_event(store, "card.lost", SPAN_A, channel="bank")
    new_span = "6228480000000037"
    changes = apply_event(
        store,
        "card.renewed",
        SPAN_A,
        channel="bank",
        params={"new_span": new_span, "new_expiry": "3412"},
    )
    assert {c.mpan for c in changes} == {A_PHONE, A_WATCH}
    for mpan in (A_PHONE, A_WATCH):
        token = store.token(mpan)
        assert (token.span, token.state) == (new_span, "active")  # same MPAN, re-mapped
    old, new = store.card(SPAN_A), store.card(new_span)
    assert (old.status, old.replaced_by) == ("cancelled", new_span)
    assert (new.status, new.expiry, new.account_id, new.par) == (
        "active",
        "3412",
        old.account_id,
        old.par,
    )


def test_card_renewed_with_new_expiry_keeps_the_mapping(store):
    apply_event(store, "card.renewed", SPAN_A, channel="bank", params={"new_expiry": "3406"})
    assert store.card(SPAN_A).expiry == "3406"
    assert store.token(A_PHONE).span == SPAN_A
    assert states(store)[A_PHONE] == "active"


def test_card_cancelled_deletes_every_mpan_of_the_card(store):
    apply_event(store, "card.cancelled", SPAN_A, channel="bank")
    assert states(store) == {A_PHONE: "deleted", B_PHONE: "active", A_WATCH: "deleted"}
    assert defaults(store, "phone") == [B_PHONE]
    assert defaults(store, "watch") == []  # nothing left on the watch


def test_no_password_limit_change_is_pushed_to_every_device_card(store):
    changes = apply_event(
        store, "card.no_password_limit", SPAN_A, channel="bank", params={"amount": 30000}
    )
    assert store.card(SPAN_A).no_password_limit == 30000
    assert {c.mpan: c.detail["pushed"] for c in changes} == {
        A_PHONE: {"no_password_limit": 30000},
        A_WATCH: {"no_password_limit": 30000},
    }
    assert states(store)[A_PHONE] == "active"


def test_device_lost_suspends_every_mpan_on_it(store):
    apply_event(store, "device.lost", "phone", channel="device")
    assert states(store) == {A_PHONE: "suspended", B_PHONE: "suspended", A_WATCH: "active"}
    assert store.device("phone").status == "lost"


def test_device_found_resumes_only_what_device_lost_suspended(store):
    apply_event(store, "token.suspend", B_PHONE, channel="bank")
    apply_event(store, "device.lost", "phone", channel="device")
    apply_event(store, "device.found", "phone", channel="device")
    assert states(store) == {A_PHONE: "active", B_PHONE: "suspended", A_WATCH: "active"}
    assert store.device("phone").status == "active"


def test_device_wiped_deletes_every_mpan_on_it(store):
    apply_event(store, "device.wiped", "phone", channel="device")
    assert states(store) == {A_PHONE: "deleted", B_PHONE: "deleted", A_WATCH: "active"}
    assert store.device("phone").status == "wiped"


def test_device_restored_deletes_every_mpan_and_reopens_the_device(store):
    apply_event(store, "device.wiped", "phone", channel="device")
    apply_event(store, "device.restored", "phone", channel="device")
    assert store.device("phone").status == "active"
    assert states(store)[A_PHONE] == "deleted"
    apply_event(store, "device.restored", "watch", channel="network")
    assert states(store)[A_WATCH] == "deleted"


def test_account_signed_out_deletes_every_mpan_on_the_device(store):
    apply_event(store, "device.signed_out", "watch", channel="device")
    assert states(store) == {A_PHONE: "active", B_PHONE: "active", A_WATCH: "deleted"}
    assert store.device("watch").signed_in is False


def test_account_signed_in_changes_no_token(store):
    apply_event(store, "device.signed_out", "watch", channel="device")
    assert apply_event(store, "device.signed_in", "watch", channel="device") == []
    assert store.device("watch").signed_in is True
    assert states(store)[A_WATCH] == "deleted"


def test_passcode_removed_suspends_by_default(store):
    apply_event(store, "device.passcode_removed", "phone", channel="device")
    assert states(store) == {A_PHONE: "suspended", B_PHONE: "suspended", A_WATCH: "active"}
    assert store.token(A_PHONE).holds == ("passcode_removed",)


def test_passcode_removed_deletes_under_the_delete_policy(store):
    apply_event(
        store,
        "device.passcode_removed",
        "phone",
        channel="device",
        policy=Policy(passcode_removed="delete"),
    )
    assert states(store) == {A_PHONE: "deleted", B_PHONE: "deleted", A_WATCH: "active"}


def test_passcode_set_again_resumes_what_its_removal_suspended(store):
    apply_event(store, "device.lost", "phone", channel="device")
    apply_event(store, "device.passcode_removed", "phone", channel="device")
    apply_event(store, "device.passcode_set", "phone", channel="device")
    assert store.token(A_PHONE).holds == ("device_lost",)
    assert store.device("phone").passcode_set is True


# --- rules shared by every row ------------------------------------------------------------------


def test_card_events_cannot_come_from_the_device_channel(store):
    with pytest.raises(LifecycleError, match="channel"):
        apply_event(store, "card.cancelled", SPAN_A, channel="device")
    assert states(store)[A_PHONE] == "active"


def test_unknown_event_and_unknown_subject_are_refused(store):
    with pytest.raises(LifecycleError, match="unknown event"):
        apply_event(store, "token.explode", A_PHONE, channel="bank")
    with pytest.raises(LifecycleError, match="no device"):
        apply_event(store, "device.lost", "tablet", channel="device")


def test_every_change_is_logged_with_its_channel(store):
    apply_event(store, "device.lost", "phone", channel="bank")
    log = store.events()
    assert [(e["channel"], e["event"], e["subject"]) for e in log] == [
        ("bank", "device.lost", f"token:{A_PHONE}"),
        ("bank", "device.lost", f"token:{B_PHONE}"),
        ("bank", "device.lost", "device:phone"),
    ]
    assert (log[0]["from_state"], log[0]["to_state"]) == ("active", "suspended")


def test_lifecycle_readme_table_names_every_event_and_an_existing_test():
    table = (Path(switch.__file__).parent / "LIFECYCLE.md").read_text()
    events_in_table = set(re.findall(r"^\| `([a-z_.]+)` \|", table, re.M))
    assert events_in_table == set(LIFECYCLE)
    named_tests = set(re.findall(r"`(test_[a-z0-9_]+)`", table))
    defined = {name for name in globals() if name.startswith("test_")}
    assert named_tests and named_tests <= defined
