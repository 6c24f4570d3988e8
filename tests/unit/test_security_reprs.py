"""The repr of anything that holds keys or PANs shows no key and no clear PAN: a dataclass's
default repr prints every field, and reprs end up in logs, tracebacks and assertion messages.
PAN fields are shown masked (first six, last four); keys, track 2, PIN blocks and PINs not at
all."""

from __future__ import annotations

import random
from dataclasses import replace

from emvtap.cryptogram_versions import cryptogram_version
from emvtap.oda import IccPublicKey
from emvtap.perso import generate_profile, issuer_keys
from emvtap.perso_schemes import hce_wallet_profile
from emvtap.perso_schemes import test_luk_batch as luk_batch
from hce_card.session import Session
from hce_card.state import LimitedUseKey, LukBatch
from hce_card.wallet import MasterKeys
from lab.hil.cards import Card as HilCard
from lab.hil.model import CardForm, CardSpec, Expectations, TapStep
from switch.authorize import HostConfig, _Decision
from switch.codes import Reason
from switch.issuer import IssuerRequest
from switch.lifecycle import TokenChange
from switch.pin import TEST_ZPK
from switch.store import Account, Card, Store
from switch.testing import SimCard, make_profile
from switch.tsp import provision
from terminal.config import TerminalConfig
from terminal.context import TransactionContext
from terminal.outcome import TransactionResult

MPAN, SPAN = "6250941234567890", "6228480000000011"
KEY = bytes.fromhex("0123456789ABCDEF0F1E2D3C4B5A6978")
PIN_BLOCK = bytes.fromhex("9A8B7C6D5E4F3A2B")
PROFILE = generate_profile(3)


def leaks(obj: object, *secrets: bytes | str) -> list[str]:
    """The forms of ``secrets`` found in ``repr(obj)``: hex (both cases) or the bytes repr of
    a bytes secret, the text of a str one."""
    text = repr(obj)
    found = []
    for secret in secrets:
        if isinstance(secret, bytes):
            forms = (secret.hex(), secret.hex().upper(), repr(secret)[2:-1])
        else:
            forms = (secret,)
        found += [f for f in forms if f in text]
    return found


def test_card_keys_and_issuer_master_keys():
    keys = PROFILE.application.keys
    assert leaks(keys, keys.ac, keys.smi, keys.smc) == []
    imk = issuer_keys(3)
    assert leaks(imk, imk.imk_ac, imk.imk_smi, imk.imk_smc) == []


def test_a_card_profile_shows_no_key_no_track_2_and_a_masked_pan():
    app = PROFILE.application
    assert PROFILE.token is not None
    secrets = (app.keys.ac, app.keys.smi, app.keys.smc, app.track2, PROFILE.pan,
               PROFILE.token.span)
    assert leaks(PROFILE, *secrets) == []
    assert leaks(app, *secrets) == []
    assert leaks(PROFILE.token, PROFILE.pan, PROFILE.token.span) == []
    assert PROFILE.pan[:6] + "******" + PROFILE.pan[-4:] in repr(PROFILE)


def test_an_hce_profile_shows_no_limited_use_key():
    base = generate_profile(3, device_type="hce")
    batch = luk_batch(base.application, 1, 3)
    profile = hce_wallet_profile(base, batch)
    secrets = [bytes.fromhex(k[name]) for k in batch["keys"] for name in ("ac", "smi", "smc")]
    assert len(secrets) == 9
    assert leaks(profile, *secrets) == []


def test_key_batches_and_card_side_keys():
    batch = LukBatch((LimitedUseKey(1, KEY.hex().upper()),), mpan=MPAN, batch=1)
    assert leaks(batch, KEY, MPAN) == []
    keys = MasterKeys(PROFILE.application.keys, cryptogram_version(1))
    assert leaks(keys, PROFILE.application.keys.ac) == []
    assert leaks(Session(keys=keys), PROFILE.application.keys.ac) == []


def test_the_switchs_host_config_and_decisions():
    assert leaks(HostConfig(), TEST_ZPK) == []
    assert leaks(HostConfig(zpk=KEY), KEY) == []
    assert leaks(_Decision(Reason.APPROVED, session_key=KEY), KEY) == []
    request = IssuerRequest(SPAN, 100, "156", "071", "P", None, "2511", "2025-11-26",
                            pin_block=PIN_BLOCK, pin_pan=MPAN)
    assert leaks(request, SPAN, MPAN, PIN_BLOCK) == []


def test_the_switchs_store_rows():
    card = Card(SPAN, 1, "3112", "00", "active", 0, "6228480000000029", None)
    assert leaks(card, SPAN, "6228480000000029") == []
    account = Account(1, "", "debit", "156", 0, 0, None, "pbkdf2-sha256$2000$00ff$abcdef99", None)
    assert leaks(account, "abcdef99") == []
    assert leaks(TokenChange(MPAN, "active", "suspended", ("bank",)), MPAN) == []


def test_provisioning_results_and_simulated_cards(tmp_path):
    with Store(tmp_path / "s.db") as store:
        account = store.add_account(balance=100)
        store.add_card(SPAN, account, "3112")
        result = provision(store, span=SPAN, device_id="phone", device_type="hce",
                           token_requestor_id="50012345678", rng=random.Random(1))
    assert result.limited_use_keys is not None
    luks = [k["ac"] for k in result.limited_use_keys["keys"]]
    assert leaks(result, result.mpan, *luks) == []
    card = SimCard.from_profile(make_profile(31), session_keys={1: KEY})
    assert leaks(card, card.mpan, card.icc_mk_ac, KEY) == []


def test_terminal_config_context_and_result():
    config = replace(TerminalConfig.default(), pin_encryption_key=KEY,
                     exception_file=frozenset({MPAN}))
    assert leaks(config, KEY, MPAN) == []
    pan = bytes.fromhex(MPAN)
    track2 = bytes.fromhex(MPAN + "D30122010000012345")
    ctx = TransactionContext(None, config, 100)  # type: ignore[arg-type]
    ctx.card.update({0x5A: pan, 0x57: track2})
    ctx.records[(1, 1)] = b"\x70\x0a\x5a\x08" + pan
    ctx.sensitive.append(MPAN)
    ctx.online_pin_block = PIN_BLOCK
    assert leaks(ctx, pan, track2, MPAN, KEY, PIN_BLOCK) == []
    result = TransactionResult(card_data={0x5A: pan, 0x57: track2})
    assert leaks(result, pan, track2) == []


def test_hil_cards_and_steps():
    pin = "2468"
    spec = CardSpec("phone", CardForm.HCE, None, pin=pin)
    assert leaks(spec, f"pin='{pin}'") == []
    card = HilCard(spec, mpan=MPAN, span=SPAN)
    assert leaks(card, MPAN, SPAN, f"'{pin}'") == []
    step = TapStep("phone", 100, "1.00", Expectations(), pin=pin)
    assert leaks(step, f"'{pin}'") == []


def test_the_icc_public_key_from_odas_certificate():
    icc = PROFILE.application.icc_rsa
    assert icc is not None
    pan = bytes.fromhex(PROFILE.pan + "FFFF")
    key = IccPublicKey(icc.public, pan, b"\x12\x30", b"\x00\x00\x01")
    assert leaks(key, pan) == []
