"""emvtap.device_types: one list of device types, from which the profile check, the switch's
SQL CHECK, the TSP and every CLI choice are built."""

from __future__ import annotations

import sqlite3

import click
import pytest

from emvtap.device_types import DEVICE_TYPE_NAMES, DeviceType, sql_check
from emvtap.profile import CardProfile, ProfileError
from switch.store import Store, StoreError
from switch.testing import make_profile
from switch.tsp import ProvisioningError, provision


def test_the_three_device_types_and_which_holds_limited_use_keys() -> None:
    assert DEVICE_TYPE_NAMES == ("handset-se", "wearable-se", "hce")
    assert [t.limited_use for t in DeviceType] == [False, False, True]


def test_an_unknown_device_type_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'watch' is not one of handset-se, wearable-se, hce"):
        DeviceType.parse("watch")
    assert DeviceType.parse("hce") is DeviceType.HCE


def test_the_sql_check_admits_exactly_the_enum() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE d (t TEXT CHECK ({sql_check('t')}))")
    for name in DEVICE_TYPE_NAMES:
        db.execute("INSERT INTO d VALUES (?)", (name,))
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO d VALUES ('phone')")


def test_the_switch_store_refuses_a_device_type_outside_the_enum(tmp_path) -> None:
    with Store(tmp_path / "s.db") as store:
        account = store.add_account()
        store.add_device("watch", DeviceType.WEARABLE_SE, account)
        assert store.device("watch").device_type is DeviceType.WEARABLE_SE
        with pytest.raises(StoreError):
            store.add_device("toaster", "toaster", account)  # type: ignore[arg-type]


def test_a_profile_with_an_unknown_device_type_is_a_clear_profile_error() -> None:
    profile = make_profile(3)
    assert CardProfile.from_dict(profile).token.device_type is DeviceType.HANDSET_SE
    profile["token"]["device_type"] = "fridge"
    with pytest.raises(ProfileError,
                       match="token: field 'device_type': device type 'fridge' is not one of"):
        CardProfile.from_dict(profile)


def test_the_tsp_refuses_an_unknown_device_type(tmp_path) -> None:
    with Store(tmp_path / "s.db") as store, pytest.raises(ProvisioningError) as info:
        provision(store, span="6228480000000011", device_id="d", device_type="fridge",
                  token_requestor_id="50012345678")
    assert info.value.reason == "bad_device_type"


@pytest.mark.parametrize("command", ["lab.cli:cli perso", "switch.cli:switch_group provision"])
def test_every_cli_choice_is_the_enum(command: str) -> None:
    import importlib

    target, sub = command.split(" ")
    module, attr = target.split(":")
    group = getattr(importlib.import_module(module), attr)
    option = next(p for p in group.commands[sub].params if p.name == "device_type")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == DEVICE_TYPE_NAMES
