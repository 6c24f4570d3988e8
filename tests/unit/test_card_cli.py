"""``emvtap perso --scheme``: profiles of the other schemes, multi-application cards and the HCE
form, each one a card that answers (the ``run`` and ``replenish`` commands are exercised in
the integration tests and in test_wallet.py)."""

from __future__ import annotations

from card_fixtures import MC_AID, QPBOC_AID, VISA_AID, Terminal, ok, transaction
from click.testing import CliRunner

from emvtap.profile import CardProfile
from hce_card.card import HceCard
from hce_card.cli import card_group
from hce_card.state import StateStore
from hce_card.wallet import wallet_status
from lab.perso_cli import perso as perso_command


def perso(tmp_path, *args: str) -> CardProfile:
    out = tmp_path / "card.json"
    result = CliRunner().invoke(perso_command, ["--seed", "11", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    assert "******" in result.output
    return CardProfile.load(out)


def test_perso_multi_writes_a_card_with_three_applications(tmp_path):
    profile = perso(tmp_path, "--scheme", "multi", "--ecash", "2500")
    assert [a.aid for a in profile.applications] == [QPBOC_AID, VISA_AID, MC_AID]
    term = Terminal(HceCard(profile, StateStore()))
    ok(term.select(QPBOC_AID))
    assert ok(term.get_data(0x9F79)).data.endswith(bytes.fromhex("000000002500"))


def test_perso_hce_writes_a_wallet_with_its_first_batch(tmp_path):
    profile = perso(tmp_path, "--scheme", "quickpass", "--hce", "4")
    assert profile.applications[0].keys.ac == bytes(16)
    card = HceCard(profile, StateStore())
    assert wallet_status(card.store, QPBOC_AID).unused == 4
    term = Terminal(card)
    ok(term.select(QPBOC_AID))
    ok(term.gpo(transaction()))


def test_perso_hce_mastercard_uses_the_cloud_cvn_with_a_key_per_atc(tmp_path):
    """CVN 16's session key needs the terminal's number: the HCE form uses CVN 17 (0x11),
    whose single-use key per ATC is EMV CSK with R = ATC ‖ 0…0 (docs/domain.md)."""
    from emvtap.keys import derive_emv_common_session_key
    from emvtap.perso_schemes import generate_mastercard_profile

    out = tmp_path / "x.json"
    result = CliRunner().invoke(perso_command, ["--scheme", "mastercard", "--seed", "1",
                                             "--out", str(out), "--hce", "3"])
    assert result.exit_code == 0, result.output
    app = CardProfile.load(out).applications[0]
    assert app.cvn == 0x11 and app.keys.ac == bytes(16)
    keys = app.extra["limited_use_keys"]
    assert [k["atc"] for k in keys] == [1, 2, 3]
    mk = generate_mastercard_profile(1).applications[0].keys.ac
    assert keys[1]["ac"] == derive_emv_common_session_key(mk, bytes.fromhex("0002") + bytes(6)
                                                          ).hex().upper()
    assert "smi" not in keys[1]  # CSK script keys depend on the ARQC: not in a batch


def test_perso_of_every_scheme_writes_a_token_switch_enroll_accepts(tmp_path):
    from switch.enroll import enroll_profile
    from switch.store import Store

    with Store(tmp_path / "s.db") as store:
        for scheme in ("visa", "mastercard", "multi"):
            out = tmp_path / f"{scheme}.json"
            result = CliRunner().invoke(perso_command, ["--scheme", scheme, "--seed", "4",
                                                     "--out", str(out)])
            assert result.exit_code == 0, result.output
            profile = CardProfile.load(out)
            assert profile.token is not None and profile.token.mpan == profile.pan
            assert profile.token.span != profile.pan
            mpan = enroll_profile(store, profile)
            token = store.token(mpan)
            assert token is not None and token.cvn == profile.applications[0].cvn


def test_card_authenticate_marks_the_next_transaction_device_verified(tmp_path):
    from card_fixtures import objects, qpboc_profile

    from emvtap.bits import CTQ, is_set

    profile_path = tmp_path / "card.json"
    qpboc_profile().save(profile_path)
    store = StateStore(tmp_path / "card.state.json")
    term = Terminal(HceCard(qpboc_profile(), store))
    result = CliRunner().invoke(card_group, ["authenticate", "--profile", str(profile_path)])
    assert result.exit_code == 0, result.output
    cvm_required = bytes.fromhex("36404000")
    ok(term.select(QPBOC_AID))  # the running card picks the signal up here
    first = objects(ok(term.gpo(transaction(ttq=cvm_required))))
    ok(term.select(QPBOC_AID))
    second = objects(ok(term.gpo(transaction(ttq=cvm_required))))
    assert is_set(first[0x9F6C], CTQ.CDCVM_PERFORMED)
    assert not is_set(second[0x9F6C], CTQ.CDCVM_PERFORMED)
