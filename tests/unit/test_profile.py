"""The card profile model (docs/contracts.md, "Card profile"): JSON round trips and the
errors a malformed profile gets - each naming the field at fault."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emvtap.perso import generate_profile
from emvtap.profile import (
    PROFILE_FORMAT,
    ApplicationProfile,
    CardProfile,
    ProfileError,
    Record,
)

PROFILE = generate_profile(11)
DICT = PROFILE.to_dict()


def _app(d: dict[str, Any]) -> dict[str, Any]:
    return d["applications"][0]


# --- round trips ---------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_through_json() -> None:
    assert CardProfile.from_dict(json.loads(json.dumps(DICT))) == PROFILE


def test_to_json_is_deterministic_and_round_trips() -> None:
    text = PROFILE.to_json()
    assert text == CardProfile.from_dict(json.loads(text)).to_json()
    assert text.endswith("\n")


def test_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    PROFILE.save(path)
    assert CardProfile.load(path) == PROFILE
    assert path.read_text() == PROFILE.to_json()


def test_dict_has_the_documented_shape() -> None:
    assert DICT["format"] == PROFILE_FORMAT == "emvtap-card-profile/1"
    assert DICT["seed"] == 11
    assert set(DICT) >= {"pan", "psn", "expiry", "effective", "token", "ppse", "applications"}
    app = _app(DICT)
    assert set(app) >= {"aid", "label", "kernel_id", "priority", "fci", "pdol", "aip", "afl",
                        "records", "cdol1", "cdol2", "ddol", "cvn", "dki", "ctq", "fdda_version",
                        "risk", "get_data", "keys", "icc_rsa", "capk"}
    assert app["aid"] == "A000000333010101"
    assert app["dki"] == "01" and app["fdda_version"] == "01"
    assert app["capk"]["rid"] == "A000000333"
    assert app["records"][-1]["dynamic"] == ["9F69"]


def test_profile_without_token_icc_key_and_optional_fields_round_trips() -> None:
    d = copy.deepcopy(DICT)
    del d["token"], d["seed"]
    app = _app(d)
    app["icc_rsa"] = None
    for optional in ("pdol", "cdol1", "cdol2", "ddol", "risk", "get_data", "label", "cvn"):
        del app[optional]
    app["extra"] = {"note": "hand-made"}
    profile = CardProfile.from_dict(d)
    assert profile.token is None and profile.seed is None
    a = profile.application
    assert a.icc_rsa is None and a.pdol == b"" and a.cvn == 1 and a.label == ""
    assert a.risk.allow_offline is True and a.get_data == {}
    assert a.extra == {"note": "hand-made"}
    assert CardProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile


def test_record_look_up_by_sfi_and_number() -> None:
    app = PROFILE.application
    assert app.record(1, 1) == app.records[0]
    assert isinstance(app.record(3, 1), Record)
    assert app.record(3, 1).dynamic == (0x9F69,)
    assert app.record(1, 2) is None


def test_application_from_dict_alone() -> None:
    app = ApplicationProfile.from_dict(copy.deepcopy(_app(DICT)))
    assert app == PROFILE.application


# --- errors: missing and malformed fields --------------------------------------------------

Mutation = Callable[[dict[str, Any]], object]

APP = "application A000000333010101"

BAD_PROFILES: list[tuple[str, Mutation, str]] = [
    ("format missing", lambda d: d.pop("format"),
     "not an emvtap card profile (format None, expected 'emvtap-card-profile/1')"),
    ("format wrong", lambda d: d.update(format="emvtap-card-profile/2"),
     "not an emvtap card profile (format 'emvtap-card-profile/2'"),
    ("pan missing", lambda d: d.pop("pan"), "profile: missing field 'pan'"),
    ("pan a number", lambda d: d.update(pan=6250941234567890),
     "profile: field 'pan' is not 12-19 decimal digits: 6250941234567890"),
    ("pan with letters", lambda d: d.update(pan="62509412345678AB"),
     "profile: field 'pan' is not 12-19 decimal digits"),
    ("psn three digits", lambda d: d.update(psn="001"),
     "profile: field 'psn' is not 2 decimal digits: '001'"),
    ("expiry YYMM", lambda d: d.update(expiry="3012"),
     "profile: field 'expiry' is not 6 decimal digits: '3012'"),
    ("seed not int", lambda d: d.update(seed="1"), "profile: field 'seed' is not an integer"),
    ("ppse missing", lambda d: d.pop("ppse"), "profile: missing field 'ppse'"),
    ("ppse fci missing", lambda d: d["ppse"].pop("fci"), "profile: ppse: missing field 'fci'"),
    ("ppse fci not hex", lambda d: d["ppse"].update(fci="6F0G"),
     "profile: ppse: field 'fci' is not hex: '6F0G'"),
    ("applications missing", lambda d: d.pop("applications"),
     "profile: missing field 'applications'"),
    ("applications empty", lambda d: d.update(applications=[]), "profile has no applications"),
    ("applications an object", lambda d: d.update(applications={"aid": "A0"}),
     "profile: field 'applications' is not a list"),
    ("application not an object", lambda d: d.update(applications=[7]),
     "application is not a JSON object: 7"),
    ("aid missing", lambda d: _app(d).pop("aid"), "application ?: missing field 'aid'"),
    ("aid not hex", lambda d: _app(d).update(aid="A0000003330101XY"),
     "application A0000003330101XY: field 'aid' is not hex"),
    ("aid too short", lambda d: _app(d).update(aid="A00000"),
     "application A00000: field 'aid' is 3 bytes, expected 5-16"),
    ("fci missing", lambda d: _app(d).pop("fci"), f"{APP}: missing field 'fci'"),
    ("aip one byte", lambda d: _app(d).update(aip="3C"),
     f"{APP}: field 'aip' is 1 bytes, expected 2"),
    ("afl not entries", lambda d: _app(d).update(afl="080101"),
     f"{APP}: field 'afl': AFL length 3 is not a multiple of 4"),
    ("afl bad sfi", lambda d: _app(d).update(afl="00010100"),
     f"{APP}: field 'afl': AFL entry 1: bad SFI byte 00"),
    ("pdol truncated", lambda d: _app(d).update(pdol="9F6604" "9F02"),
     f"{APP}: field 'pdol' is not a DOL (input ends before the length"),
    ("cdol1 not hex", lambda d: _app(d).update(cdol1="zz"), f"{APP}: field 'cdol1' is not hex"),
    ("kernel id words", lambda d: _app(d).update(kernel_id="seven"),
     f"{APP}: field 'kernel_id' is not an integer: 'seven'"),
    ("kernel id too big", lambda d: _app(d).update(kernel_id=300),
     f"{APP}: field 'kernel_id' is 300, outside 0-255"),
    ("priority a bool", lambda d: _app(d).update(priority=True),
     f"{APP}: field 'priority' is not an integer: True"),
    ("dki an int", lambda d: _app(d).update(dki=1), f"{APP}: field 'dki' is not hex: 1"),
    ("dki two bytes", lambda d: _app(d).update(dki="0101"),
     f"{APP}: field 'dki' is 2 bytes, expected 1"),
    ("ctq missing", lambda d: _app(d).pop("ctq"), f"{APP}: missing field 'ctq'"),
    ("track2 missing", lambda d: _app(d).pop("track2"), f"{APP}: missing field 'track2'"),
    ("records missing", lambda d: _app(d).pop("records"), f"{APP}: missing field 'records'"),
    ("record data not hex", lambda d: _app(d)["records"][0].update(data="70ZZ"),
     f"{APP}: records[0]: field 'data' is not hex: '70ZZ'"),
    ("record sfi words", lambda d: _app(d)["records"][1].update(sfi="two"),
     f"{APP}: records[1]: field 'sfi' is not an integer: 'two'"),
    ("record sfi 31", lambda d: _app(d)["records"][1].update(sfi=31),
     f"{APP}: records[1]: field 'sfi' is 31, outside 1-30"),
    ("record number missing", lambda d: _app(d)["records"][2].pop("record"),
     f"{APP}: records[2]: missing field 'record'"),
    ("record not an object", lambda d: _app(d)["records"].append("70"),
     f"{APP}: records[4] is not a JSON object"),
    ("dynamic tag not hex", lambda d: _app(d)["records"][3].update(dynamic=["9G69"]),
     f"{APP}: records[3]: dynamic: '9G69' is not a hex tag"),
    ("keys missing", lambda d: _app(d).pop("keys"), f"{APP}: missing field 'keys'"),
    ("key ac missing", lambda d: _app(d)["keys"].pop("ac"), f"{APP}: keys: missing field 'ac'"),
    ("key smi short", lambda d: _app(d)["keys"].update(smi="00" * 8),
     f"{APP}: keys: field 'smi' is 8 bytes, expected 16"),
    ("icc key not an object", lambda d: _app(d).update(icc_rsa="00"),
     f"{APP}: field 'icc_rsa' is not a JSON object"),
    ("icc key without d", lambda d: _app(d)["icc_rsa"].pop("d"),
     f"{APP}: icc_rsa: missing field 'd'"),
    ("icc key inconsistent", lambda d: _app(d)["icc_rsa"].update(p="0B"),
     f"{APP}: icc_rsa: not an RSA key (RSA key: p * q is not n)"),
    ("icc key degenerate", lambda d: _app(d).update(
        icc_rsa={"n": "01", "e": "03", "d": "01", "p": "01", "q": "01"}),
     f"{APP}: icc_rsa: not an RSA key"),
    ("capk missing", lambda d: _app(d).pop("capk"), f"{APP}: missing field 'capk'"),
    ("capk rid short", lambda d: _app(d)["capk"].update(rid="A00000"),
     f"{APP}: capk: field 'rid' is 3 bytes, expected 5"),
    ("capk index not hex", lambda d: _app(d)["capk"].update(index="G1"),
     f"{APP}: capk: field 'index' is not hex: 'G1'"),
    ("risk limit words", lambda d: _app(d)["risk"].update(offline_amount_limit="lots"),
     f"{APP}: risk: field 'offline_amount_limit' is not an integer: 'lots'"),
    ("risk negative", lambda d: _app(d)["risk"].update(consecutive_offline_limit=-1),
     f"{APP}: risk: field 'consecutive_offline_limit' is -1, outside 0-255"),
    ("allow offline a string", lambda d: _app(d)["risk"].update(allow_offline="no"),
     f"{APP}: risk: field 'allow_offline' is not true/false: 'no'"),
    ("get data not hex", lambda d: _app(d)["get_data"].update({"9F13": "0G"}),
     f"{APP}: get_data: field '9F13' is not hex: '0G'"),
    ("get data tag not hex", lambda d: _app(d)["get_data"].update({"PIN": "03"}),
     f"{APP}: get_data: 'PIN' is not a hex tag"),
    ("label a number", lambda d: _app(d).update(label=5),
     f"{APP}: field 'label' is not a string: 5"),
    ("token not an object", lambda d: d.update(token=["6250"]),
     "profile: token is not a JSON object"),
    ("token mpan missing", lambda d: d["token"].pop("mpan"),
     "profile: token: missing field 'mpan'"),
    ("token unknown field", lambda d: d["token"].update(cvv="123"),
     "profile: token: unknown field 'cvv'"),
    ("token span letters", lambda d: d["token"].update(span="62284801234567AB"),
     "profile: token: field 'span' is not 12-19 decimal digits"),
    ("token par a number", lambda d: d["token"].update(par=1),
     "profile: token: field 'par' is not a string: 1"),
]


@pytest.mark.parametrize(("mutate", "message"), [(m, msg) for _, m, msg in BAD_PROFILES],
                         ids=[label for label, _, _ in BAD_PROFILES])
def test_bad_profile_raises_profile_error_naming_the_field(mutate: Mutation, message: str
                                                           ) -> None:
    d = copy.deepcopy(DICT)
    mutate(d)
    with pytest.raises(ProfileError) as info:
        CardProfile.from_dict(d)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("data", [[1, 2], "profile", 42, None])
def test_json_that_is_not_an_object_is_a_profile_error(data: object) -> None:
    with pytest.raises(ProfileError, match="profile is not a JSON object"):
        CardProfile.from_dict(data)  # type: ignore[arg-type]


def test_profile_error_is_a_value_error() -> None:
    assert issubclass(ProfileError, ValueError)


# --- files ---------------------------------------------------------------------------------


def test_load_of_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text("{ not json")
    with pytest.raises(ProfileError, match=r"card\.json: not JSON"):
        CardProfile.load(path)


def test_load_of_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ProfileError, match="not JSON"):
        CardProfile.load(path)


def test_load_names_the_file_and_the_field(tmp_path: Path) -> None:
    d = copy.deepcopy(DICT)
    _app(d)["keys"].pop("smc")
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ProfileError) as info:
        CardProfile.load(path)
    assert str(info.value) == f"{path}: {APP}: keys: missing field 'smc'"


def test_load_of_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CardProfile.load(tmp_path / "absent.json")
