"""switch.tsp: over-the-air issuance and the mapping rules of docs/domain.md; HCE limited-use
keys; the in-app no-password limit (docs/domain.md, "Two ways to pay, two limits")."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from emvtap import tlv
from emvtap.iso8583 import TokenData, decode_message, encode_message
from emvtap.keys import derive_pboc_session_key
from emvtap.profile import CardProfile
from switch.authorize import Authorizer
from switch.lifecycle import apply_event
from switch.store import Store
from switch.testing import SimCard
from switch.tsp import (
    LUK_BATCH_FORMAT,
    ProvisioningError,
    TspConfig,
    luhn_valid,
    provision,
    replenish_limited_use_keys,
)

NOW = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)
SPAN_A, SPAN_B = "6228480000000011", "6228480000000029"
TRID = "50012345678"


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.db") as s:
        account = s.add_account(balance=100_000)
        s.add_card(SPAN_A, account, "3112", psn="01", no_password_limit=20_000)
        s.add_card(SPAN_B, account, "3112", psn="01")
        yield s


def bind(store, span=SPAN_A, device="phone", device_type="handset-se", seed=1, **kw):
    return provision(
        store,
        span=span,
        device_id=device,
        device_type=device_type,
        token_requestor_id=TRID,
        rng=random.Random(seed),
        now=NOW,
        **kw,
    )


def send(store, fields):
    raw = Authorizer(store, clock=lambda: NOW).handle_raw(encode_message(fields))
    return decode_message(raw)


# --- mapping rules ------------------------------------------------------------------------------


def test_mpan_comes_from_the_token_bin_range_and_is_luhn_valid(store):
    result = bind(store)
    assert result.mpan.startswith(TspConfig().token_bin)
    assert len(result.mpan) == 16 and luhn_valid(result.mpan)
    assert result.mpan != SPAN_A
    assert store.token(result.mpan).span == SPAN_A


def test_one_span_is_loaded_on_one_device_only_once(store):
    bind(store)
    with pytest.raises(ProvisioningError) as err:
        bind(store, seed=2)
    assert err.value.reason == "already_on_device"


def test_the_same_span_on_each_device_gets_a_different_mpan(store):
    phone, watch = bind(store), bind(store, device="watch", device_type="wearable-se", seed=1)
    assert phone.mpan != watch.mpan
    assert {t.mpan for t in store.tokens(span=SPAN_A)} == {phone.mpan, watch.mpan}


def test_a_device_holds_several_cards_and_the_first_is_the_default(store):
    first, second = bind(store), bind(store, span=SPAN_B, seed=2)
    assert (first.is_default, second.is_default) == (True, False)
    live = store.tokens(device_id="phone", include_deleted=False)
    assert [t.mpan for t in live if t.is_default] == [first.mpan]


def test_deleting_the_default_promotes_another_card(store):
    first, second = bind(store), bind(store, span=SPAN_B, seed=2)
    apply_event(store, "token.delete", first.mpan, channel="device")
    assert store.token(second.mpan).is_default


def test_after_deletion_the_span_can_be_loaded_on_the_device_again(store):
    first = bind(store)
    apply_event(store, "token.delete", first.mpan, channel="bank")
    again = bind(store, seed=3)
    assert again.mpan != first.mpan and again.is_default


def test_every_token_of_an_account_carries_the_same_par(store):
    phone, watch = bind(store), bind(store, device="watch", device_type="wearable-se", seed=5)
    pars = {store.token(phone.mpan).par, store.token(watch.mpan).par, store.card(SPAN_A).par}
    assert len(pars) == 1
    (par,) = pars
    # TF v2.3 PAR: 29 characters, the 4-character BIN controller id (U001) then 25 alphanumerics
    assert re.fullmatch(r"U001[0-9A-Z]{25}", par), par


@pytest.mark.parametrize(
    "prepare, reason",
    [
        (lambda s: apply_event(s, "card.lost", SPAN_A, channel="bank"), "card_not_active"),
        (
            lambda s: (
                s.add_device("phone", "handset-se", 1) or s.update_device("phone", status="wiped")
            ),
            "device_not_ready",
        ),
        (
            lambda s: (
                s.add_device("phone", "handset-se", 1) or s.update_device("phone", passcode_set=0)
            ),
            "device_not_ready",
        ),
        (lambda s: s.add_device("phone", "wearable-se", 1), "device_type_mismatch"),
    ],
)
def test_provisioning_is_refused_for_a_card_or_device_that_cannot_take_it(store, prepare, reason):
    prepare(store)
    with pytest.raises(ProvisioningError) as err:
        bind(store)
    assert err.value.reason == reason


# --- the personalisation profile ----------------------------------------------------------------


def test_profile_is_an_emvtap_perso_profile_of_the_token(store, tmp_path):
    out = tmp_path / "device-card.json"
    result = bind(store, out=out)
    profile = CardProfile.load(out)
    assert profile.pan == result.mpan
    assert profile.token.mpan == result.mpan and profile.token.span == SPAN_A
    assert profile.token.par == store.card(SPAN_A).par
    assert profile.token.device_id == "phone"
    token = store.token(result.mpan)
    assert profile.application.keys.ac == token.key_ac  # an SE holds the card master keys
    record = tlv.flatten(tlv.decode(profile.application.records[0].data))
    assert record[0x5A].hex().rstrip("f") == result.mpan
    assert profile.application.extra["no_password_limit"] == 20_000


def test_approved_tap_with_the_provisioned_profile(store):
    result = bind(store)
    card = SimCard.from_profile(result.profile)
    assert send(store, card.request(1000))["39"] == "00"


# --- HCE limited-use keys -----------------------------------------------------------------------


def test_hce_profile_carries_limited_use_keys_and_no_master_key(store):
    result = bind(store, device_type="hce")
    app = result.profile["applications"][0]
    assert set(app["keys"].values()) == {"00" * 16}
    assert app["extra"]["key_mode"] == "limited-use"
    batch = result.limited_use_keys
    assert batch["format"] == LUK_BATCH_FORMAT
    assert [k["atc"] for k in batch["keys"]] == list(range(1, 11))
    token = store.token(result.mpan)
    first = batch["keys"][0]
    assert bytes.fromhex(first["ac"]) == derive_pboc_session_key(token.key_ac, b"\x00\x01")
    assert bytes.fromhex(first["smi"]) == derive_pboc_session_key(token.key_smi, b"\x00\x01")


def _hce_card(result) -> SimCard:
    keys = {k["atc"]: bytes.fromhex(k["ac"]) for k in result.limited_use_keys["keys"]}
    return SimCard(result.mpan, bytes(16), session_keys=keys)


def test_hce_cryptogram_under_a_limited_use_key_is_approved_once(store):
    result = bind(store, device_type="hce")
    card = _hce_card(result)
    request = card.request(500)
    assert send(store, request)["39"] == "00"
    replay = dict(request, **{"11": "777777"})
    assert send(store, replay)["39"] == "05"
    reasons = [a["reason"] for a in store.authorizations()]
    assert reasons[0] == "limited_use_key_used"
    assert store.limited_use_key_status(result.mpan)["used"] == 1


def test_hce_cryptogram_for_an_atc_without_an_issued_key_is_declined(store):
    result = bind(store, device_type="hce")
    card = _hce_card(result)
    card.atc = 10  # ATC 11: not issued yet; the phone has no key, a thief with the MK would
    card.session_keys[11] = derive_pboc_session_key(store.token(result.mpan).key_ac, b"\x00\x0b")
    assert send(store, card.request(500))["39"] == "05"
    assert store.authorizations()[0]["reason"] == "limited_use_key_not_issued"


def test_replenish_issues_the_next_atcs_and_they_verify(store):
    result = bind(store, device_type="hce")
    batch = replenish_limited_use_keys(store, result.mpan, count=5, now=NOW)
    assert batch["batch"] == 2
    assert [k["atc"] for k in batch["keys"]] == [11, 12, 13, 14, 15]
    card = _hce_card(result)
    card.session_keys |= {k["atc"]: bytes.fromhex(k["ac"]) for k in batch["keys"]}
    card.atc = 11
    assert send(store, card.request(100))["39"] == "00"  # ATC 12
    assert store.limited_use_key_status(result.mpan) == {
        "issued": 15,
        "used": 1,
        "unused": 14,
        "highest_atc": 15,
        "last_batch": 2,
    }


def test_replenish_is_refused_for_a_suspended_or_non_hce_token(store):
    hce = bind(store, device_type="hce")
    apply_event(store, "token.suspend", hce.mpan, channel="bank")
    with pytest.raises(ProvisioningError) as err:
        replenish_limited_use_keys(store, hce.mpan)
    assert err.value.reason == "token_not_active"
    se = bind(store, span=SPAN_B, device="phone2", seed=9)
    with pytest.raises(ProvisioningError) as err:
        replenish_limited_use_keys(store, se.mpan)
    assert err.value.reason == "not_limited_use"


# --- in-app payments and the no-password limit --------------------------------------------------


@pytest.fixture
def in_app(store):
    result = bind(store, purpose="in-app")
    return SimCard.from_profile(result.profile)


def _in_app(card, amount, verified, token_requestor_id: str | None = TRID):
    """A remote payment as the token requestor submits it: DE 48 names the requestor."""
    return card.request(
        amount, entry_mode="812", token_data=TokenData(
            token_requestor_id=token_requestor_id, channel="A", device_verified=verified)
    )


def test_in_app_amount_within_the_no_password_limit_needs_no_device_verification(in_app, store):
    assert send(store, _in_app(in_app, 20_000, False))["39"] == "00"


def test_in_app_amount_above_the_limit_without_device_verification_is_declined(in_app, store):
    response = send(store, _in_app(in_app, 20_001, False))
    assert response["39"] == "1A"
    assert store.authorizations()[0]["reason"] == "in_app_verification_required"


def test_in_app_amount_above_the_limit_with_device_verification_is_approved(in_app, store):
    assert send(store, _in_app(in_app, 20_001, True))["39"] == "00"


def test_in_app_payment_without_a_token_requestor_id_is_outside_the_domain(in_app, store):
    """TF v2.3 token requestor domain control: a remote payment must name its requestor."""
    response = send(store, _in_app(in_app, 100, True, token_requestor_id=None))
    assert response["39"] == "57"
    assert store.authorizations()[0]["reason"] == "domain_token_requestor"


def test_in_app_payment_from_another_token_requestor_is_outside_the_domain(in_app, store):
    response = send(store, _in_app(in_app, 100, True, token_requestor_id="50099999999"))
    assert response["39"] == "57"
    assert store.authorizations()[0]["reason"] == "domain_token_requestor"


def test_in_app_token_used_at_a_pos_is_outside_its_domain(in_app, store):
    assert send(store, in_app.request(100, entry_mode="071"))["39"] == "57"


# --- every scheme (docs/domain.md, Keys of the cloud-based cards) --------------------------------


@pytest.mark.parametrize(
    ("scheme", "aid", "se_cvn", "hce_cvn"),
    [
        ("quickpass", "A000000333010101", 0x01, 0x01),
        ("visa", "A0000000031010", 0x12, 0x12),
        ("mastercard", "A0000000041010", 0x10, 0x11),
    ],
)
def test_each_scheme_is_provisioned_with_its_application_and_the_token_keys(
    store, scheme, aid, se_cvn, hce_cvn
):
    from emvtap.cryptogram_versions import cryptogram_version

    se = bind(store, device="phone-se", scheme=scheme)
    hce = bind(store, span=SPAN_B, device="phone-hce", device_type="hce", seed=2, scheme=scheme)
    for result, cvn in ((se, se_cvn), (hce, hce_cvn)):
        profile = CardProfile.from_dict(result.profile)
        assert profile.application.aid.hex().upper() == aid
        assert profile.application.cvn == cvn
        assert profile.token is not None and profile.token.mpan == result.mpan
        assert store.token(result.mpan).cvn == cvn
    se_token = store.token(se.mpan)
    assert CardProfile.from_dict(se.profile).application.keys.ac == se_token.key_ac
    # HCE: the batch holds the session keys of the limited-use row for each ATC, the vault
    # keeps the same key for the host to verify with
    token = store.token(hce.mpan)
    first = hce.limited_use_keys["keys"][0]
    expected = cryptogram_version(hce_cvn).session_key(token.key_ac, b"\x00\x01", {})
    assert first["ac"] == expected.hex().upper()
    assert store.limited_use_key(hce.mpan, 1)[0] == expected


def test_an_unknown_scheme_is_refused_with_its_reason(store):
    with pytest.raises(ProvisioningError) as exc:
        bind(store, scheme="amex")
    assert exc.value.reason == "bad_scheme"


def test_a_token_of_another_scheme_has_its_own_token_bin(store):
    assert bind(store, device="a", scheme="visa").mpan.startswith("489537")
    assert bind(store, span=SPAN_B, device="b", scheme="mastercard").mpan.startswith("535425")
