"""No clear cardholder data or keys in logs, records and messages (docs/architecture.md "Failure
handling": PANs masked in logs and traces unless the user asks; track 2, cardholder name and PIN
blocks never in clear; keys never logged)."""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner
from test_card_helpers import QPBOC_AID, TTQ_QUICK, new_card, ok, qpboc_profile, transaction

from emvtap import iso8583, tlv
from emvtap.iso8583 import encode_message
from emvtap.profile import CardProfile, ProfileError, Record
from lab import cli as root_cli
from lab.hil.procs import run_emvtap
from lab.hil.results import RigError
from switch.authorize import Authorizer
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import SimCard, make_profile
from terminal.config import ConfigError, TerminalConfig
from terminal.outcome import Outcome
from terminal.pay import perform_transaction

NAME = b"ZHANG/SAN"
PAN = "6250941234567890"


def _profile_with_track2_and_name() -> CardProfile:
    """The qPBOC test card with track 2 (57) and the cardholder name (5F20) in record 1."""
    profile = qpboc_profile()
    app = profile.application
    first = tlv.decode(app.records[0].data)[0]
    assert first.children is not None
    record = tlv.Tlv.template(0x70, [*first.children, tlv.Tlv.primitive(0x57, app.track2),
                                     tlv.Tlv.primitive(0x5F20, NAME)])
    records = (Record(1, 1, record.encode()), *app.records[1:])
    return replace(profile, applications=(replace(app, records=records),))


# --- the card's command log -------------------------------------------------------------------


def test_the_cards_command_log_never_shows_track_2_or_the_cardholder_name(caplog):
    profile = _profile_with_track2_and_name()
    track2 = profile.application.track2.hex().upper()
    _card, term = new_card(profile)
    with caplog.at_level(logging.DEBUG, logger="emvtap.card"):
        ok(term.select(QPBOC_AID))
        ok(term.gpo(transaction(amount=100, ttq=TTQ_QUICK)))  # 57 in the GPO response
        ok(term.read_record(1, 1))  # 57 and 5F20
    text = caplog.text
    assert "R-APDU" in text  # the log is there
    assert track2.split("D", 1)[1] not in text  # expiry, service code, discretionary data
    assert NAME.hex().upper() not in text
    assert profile.pan not in text


# --- the switch's record of a request ---------------------------------------------------------


def test_the_switch_never_stores_track_2_or_a_name_from_de_55(tmp_path):
    profile = make_profile(31)
    with Store(tmp_path / "s.db") as store:
        enroll_profile(store, profile, balance=50_000)
        card = SimCard.from_profile(profile)
        request = card.request(100, extra_tags={0x5F20: NAME})
        track2 = f"{card.mpan}=30122010000012345"
        request["35"] = track2
        Authorizer(store).handle_raw(encode_message(request))
        stored = store.db.execute("SELECT request FROM authorizations").fetchone()[0]
    assert "30122010000012345" not in stored
    assert json.loads(stored)["35"].startswith(card.mpan[:6])
    assert NAME.hex().upper() not in stored


def test_redacted_messages_mask_every_sensitive_tag_of_de_55():
    de55 = tlv.encode([tlv.Tlv.primitive(0x9F26, bytes(8)), tlv.Tlv.primitive(0x5F20, NAME),
                       tlv.Tlv.primitive(0x9F1F, b"TRACK1DATA")])
    shown = iso8583.redacted({"t": "0100", "55": de55})["55"]
    assert NAME.hex().upper() not in shown and b"TRACK1DATA".hex().upper() not in shown
    assert "9F26=0000000000000000" in shown


# --- what the user sees -----------------------------------------------------------------------


def test_an_internal_error_of_the_cli_masks_pans(monkeypatch, capsys):
    def broken(**_kw: object) -> None:
        raise RuntimeError(f"unexpected card {PAN}")

    monkeypatch.delenv("EMVTAP_DEBUG", raising=False)
    monkeypatch.setattr(root_cli, "cli", broken)
    with pytest.raises(SystemExit) as exit_info:
        root_cli.main()
    assert exit_info.value.code == 70
    err = capsys.readouterr().err
    assert PAN not in err and "625094******7890" in err
    assert "Traceback" not in err


@pytest.fixture
def root_at_debug():
    root, nfc = logging.getLogger(), logging.getLogger("nfc")
    levels = root.level, nfc.level
    root.setLevel(logging.DEBUG)
    yield
    root.setLevel(levels[0])
    nfc.setLevel(levels[1])


def test_nfcpy_frame_dumps_stay_off_at_vv(root_at_debug, tmp_path):
    """nfcpy logs every frame in hex at DEBUG (R-APDUs with PAN and track 2): ``-vv`` turns
    on emvtap's debug log, not those."""
    result = CliRunner().invoke(root_cli.cli, ["-vv", "perso", "--seed", "1", "--out",
                                               str(tmp_path / "card.json")])
    assert result.exit_code == 0, result.output
    assert not logging.getLogger("nfc.clf").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("emvtap").isEnabledFor(logging.DEBUG)


class _Glitch:
    """A reader that fails in a way the kernel does not expect, naming a PAN."""

    def connect(self, timeout: float | None = None) -> bytes:
        raise RuntimeError(f"reader glitch on {PAN}")

    def transmit(self, apdu: bytes) -> bytes:
        raise AssertionError("not reached")

    def disconnect(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_tap_record_masks_pans_in_an_internal_error():
    result = perform_transaction(_Glitch(), TerminalConfig.default(), 100,  # type: ignore[arg-type]
                                 switch="none")
    assert result.outcome == Outcome.END_APPLICATION
    assert "internal error" in result.reason
    assert PAN not in json.dumps(result.to_json())


def test_a_tap_record_shows_the_pan_when_asked_for_clear_output():
    result = perform_transaction(_Glitch(), TerminalConfig.default(), 100,  # type: ignore[arg-type]
                                 switch="none", clear_pan=True)
    assert PAN in result.reason


# --- messages never repeat a key -------------------------------------------------------------


def test_a_malformed_pin_encryption_key_is_not_repeated():
    data = TerminalConfig.defaults_dict() | {
        "pin_encryption_key": "0123456789ABCDEFFEDCBA98765432XY"}
    with pytest.raises(ConfigError, match="pin_encryption_key") as info:
        TerminalConfig.from_dict(data)
    assert "0123456789ABCDEF" not in str(info.value)


@pytest.mark.parametrize("field", ["ac", "smi", "smc"])
def test_a_malformed_card_key_is_not_repeated(field):
    d = qpboc_profile().to_dict()
    d["applications"][0]["keys"][field] = "00112233445566778899AABBCCDDEEXY"
    with pytest.raises(ProfileError, match=f"'{field}' is not hex") as info:
        CardProfile.from_dict(d)
    assert "00112233445566778899" not in str(info.value)


def test_malformed_track_2_is_not_repeated():
    d = qpboc_profile().to_dict()
    d["applications"][0]["track2"] = "6250941234567890D30122010000012345X"
    with pytest.raises(ProfileError, match="'track2' is not hex") as info:
        CardProfile.from_dict(d)
    assert "6250941234567890" not in str(info.value)


# --- the hardware-in-the-loop runner's reports and logs ---------------------------------------


def test_a_failed_command_in_a_hil_report_hides_the_pin_and_masks_pans(tmp_path):
    span = "6228480000000011"
    with pytest.raises(RigError) as info:
        run_emvtap(["switch", "card", "--db", str(tmp_path / "s.db"), "--account", "99", span])
    assert span not in str(info.value) and "622848******0011" in str(info.value)
    with pytest.raises(RigError) as info:
        run_emvtap(["switch", "enroll", "--db", str(tmp_path / "s.db"), "--pin", "2468",
                    str(tmp_path / "missing.json")])
    assert "2468" not in str(info.value)


@pytest.mark.skipif(sys.platform != "linux", reason="reads the process's own output")
def test_the_hil_child_log_hides_the_pin(tmp_path):
    from lab.hil.procs import Child

    child = Child("x", ["switch", "account", "--db", str(tmp_path / "s.db"), "--pin", "2468"],
                  tmp_path / "x.log", re.compile("^1$"))
    child.start()
    child.wait_ready(30)
    child.stop()
    assert "--pin ****" in (tmp_path / "x.log").read_text()
    assert "2468" not in (tmp_path / "x.log").read_text()
