"""Personalisation of more card products: a Visa qVSDC-style and a Mastercard-style (M/Chip,
GENERATE AC with CDA) application, a multi-application card listing them all in its PPSE, and
the HCE form of a device card (no master key, a batch of limited-use keys).

Like :mod:`emvtap.perso`, everything comes from the seed (test CA of each RID, EMV 4.4 Book 2
5.3 / 6.4 certificates, Book 2 A1.4 ICC master keys) and the records are what the card serves
byte for byte. Which scheme does what:

==========  ==========================  ==============================  ======================
scheme      AID, kernel (Book B)        path, ODA                       cryptogram (CVN)
==========  ==========================  ==============================  ======================
qPBOC       A000000333010101, 07        quick (GPO decides), fDDA       PBOC CVN 01
qVSDC       A0000000031010, 03          quick (GPO decides), fDDA (95)  Visa CVN 18 (EMV CSK)
M/Chip      A0000000041010, 02          full: GENERATE AC with CDA      Mastercard CVN 16
==========  ==========================  ==============================  ======================
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from emvtap.capk import TEST_CA_INDEX, test_ca_private_key
from emvtap.cryptogram_versions import LIMITED_USE_CVN, cryptogram_version
from emvtap.device_types import DeviceType
from emvtap.dol import parse_afl
from emvtap.keys import derive_icc_master_key
from emvtap.oda import (
    create_icc_certificate,
    create_issuer_certificate,
    static_data_to_be_authenticated,
)
from emvtap.perso import (
    CDOL1,
    CVM_LIST,
    DDOL,
    LOG_FORMAT,
    PPSE_NAME,
    QPBOC_PDOL,
    generate_profile,
    make_pan,
)
from emvtap.profile import (
    ApplicationProfile,
    CardKeys,
    CardProfile,
    CardRisk,
    Record,
    TokenInfo,
)
from emvtap.rsa import generate_rsa_key
from emvtap.tlv import Tlv

__all__ = [
    "MASTERCARD",
    "SCHEMES",
    "VISA",
    "SchemeSpec",
    "generate_mastercard_profile",
    "generate_multi_application_profile",
    "generate_scheme_application",
    "generate_visa_profile",
    "hce_wallet_profile",
    "ppse_fci",
    "test_luk_batch",
    "with_device_token",
]


@dataclass(frozen=True)
class SchemeSpec:
    """What differs between the schemes' applications (the rest is Book 3 common)."""

    name: str
    aid: bytes
    label: str
    kernel_id: int
    priority: int
    bin: str
    pdol: bytes
    aip: bytes
    quick_path: bool  # a 9F69 record for fDDA, TTQ in the PDOL
    cdol1: bytes
    cdol2: bytes
    cvn: int
    ctq: bytes
    extra: Mapping[str, Any] = field(default_factory=dict)
    track2_in_record: bool = False


#: Visa qVSDC (Book C-3): quick path with fDDA (Signed Data Format 95), CVN 18, ARPC method 2
#: (91 = ARPC ‖ CSU, 8 bytes, hence 91 08 in CDOL2).
VISA = SchemeSpec(
    name="qVSDC",
    aid=bytes.fromhex("A0000000031010"),
    label="VISA CREDIT",
    kernel_id=3,
    priority=2,
    bin="476173",
    pdol=QPBOC_PDOL,
    aip=bytes.fromhex("2000"),
    quick_path=True,
    cdol1=bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704"),
    cdol2=bytes.fromhex("91088A0295059F3704"),
    cvn=0x12,
    ctq=bytes.fromhex("2840"),
    extra={"sdad_format": "95"},
)

#: Mastercard M/Chip (Book C-2 EMV mode): no PDOL, full path, AIP with DDA and CDA (byte 2 b8
#: "EMV mode supported"), CVN 16, GENERATE AC responses in Format 2.
MASTERCARD = SchemeSpec(
    name="M/Chip",
    aid=bytes.fromhex("A0000000041010"),
    label="MASTERCARD",
    kernel_id=2,
    priority=3,
    bin="545762",
    pdol=b"",
    aip=bytes.fromhex("3980"),
    quick_path=False,
    cdol1=CDOL1,
    cdol2=bytes.fromhex("910A8A0295059F37049F4C08"),
    cvn=0x10,
    ctq=bytes(2),  # no CTQ on M/Chip; the profile format wants two bytes
    track2_in_record=True,
)

SCHEMES: dict[str, SchemeSpec] = {"visa": VISA, "mastercard": MASTERCARD}

_RISK = CardRisk(offline_amount_limit=10000, consecutive_offline_limit=5)


def _t(tag: int, value: bytes) -> Tlv:
    return Tlv.primitive(tag, value)


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))


def scheme_card_keys(spec: SchemeSpec, seed: int, pan: str, psn: str) -> CardKeys:
    """ICC master keys (Book 2 A1.4) under the test issuer master keys of ``spec``'s issuer."""

    def imk(label: str) -> bytes:
        return hashlib.sha256(f"emvtap test IMK {spec.name} {label} {seed}".encode()).digest()[:16]

    return CardKeys(*(derive_icc_master_key(imk(k), pan, psn) for k in ("AC", "SMI", "SMC")))


def app_fci(aid: bytes, label: str, priority: int, pdol: bytes) -> bytes:
    """SELECT response (Book 1 12.2.4): 6F { 84 AID, A5 { 50, 87, [9F38], 5F2D, 9F12 } }."""
    props = [_t(0x50, label.encode()), _t(0x87, bytes([priority]))]
    if pdol:
        props.append(_t(0x9F38, pdol))
    props += [_t(0x5F2D, b"enzh"), _t(0x9F12, label.encode())]
    return Tlv.template(0x6F, [_t(0x84, aid), Tlv.template(0xA5, props)]).encode()


def ppse_fci(apps: Sequence[ApplicationProfile]) -> bytes:
    """SELECT PPSE response (Book B 3.3): one ``61`` entry per application with its AID,
    label, priority (87) and kernel identifier (9F2A)."""
    entries = [Tlv.template(0x61, [_t(0x4F, a.aid), _t(0x50, a.label.encode()),
                                   _t(0x87, bytes([a.priority])),
                                   _t(0x9F2A, bytes([a.kernel_id]))]) for a in apps]
    return Tlv.template(0x6F, [_t(0x84, PPSE_NAME), Tlv.template(
        0xA5, [Tlv.template(0xBF0C, entries)])]).encode()


def generate_scheme_application(
    spec: SchemeSpec,
    seed: int,
    *,
    pan: str | None = None,
    psn: str = "01",
    expiry: str = "301231",
    effective: str = "251101",
    currency: str = "0156",
    priority: int | None = None,
) -> tuple[ApplicationProfile, str]:
    """One application of ``spec`` with its own PAN, keys and certificates; returns it and
    its PAN."""
    rng = random.Random(f"{spec.name} {seed}")
    pan = pan or make_pan(spec.bin, rng)
    keys = scheme_card_keys(spec, seed, pan, psn)
    seed_bytes = f"{spec.name} {seed}".encode()
    issuer_rsa = generate_rsa_key(1024, 3, b"emvtap perso issuer " + seed_bytes)
    icc_rsa = generate_rsa_key(768, 3, b"emvtap perso icc " + seed_bytes)
    rid = spec.aid[:5]
    ca_key = test_ca_private_key(rid)
    track2 = _bcd(f"{pan}D{expiry[:4]}201" + "".join(str(rng.randrange(10)) for _ in range(8)))
    afl = bytes.fromhex("08010101" "10010200" + ("18010100" if spec.quick_path else ""))
    record_1 = Tlv.template(0x70, [
        *([_t(0x57, track2)] if spec.track2_in_record else []),
        _t(0x5A, _bcd(pan)),
        _t(0x5F24, bytes.fromhex(expiry)),
        _t(0x5F25, bytes.fromhex(effective)),
        _t(0x5F28, bytes.fromhex(currency)),
        _t(0x5F34, bytes.fromhex(psn)),
        _t(0x9F07, bytes.fromhex("FF00")),
        _t(0x9F08, bytes.fromhex("0002")),
        _t(0x8E, CVM_LIST),
        _t(0x9F0D, bytes.fromhex("B860AC8800")),
        _t(0x9F0E, bytes.fromhex("0010000000")),
        _t(0x9F0F, bytes.fromhex("B868BC9800")),
        _t(0x8C, spec.cdol1),
        _t(0x8D, spec.cdol2),
        _t(0x9F49, DDOL),
        _t(0x5F30, bytes.fromhex("0201")),
        _t(0x9F42, bytes.fromhex(currency)),
        _t(0x9F4A, b"\x82"),
    ]).encode()
    static = static_data_to_be_authenticated(parse_afl(afl), {(1, 1): record_1}, spec.aip,
                                             b"\x82")
    issuer_cert, issuer_rem = create_issuer_certificate(
        ca_key, issuer_rsa.public, bytes.fromhex(pan[:6] + "FF"), bytes.fromhex("1230"),
        rng.getrandbits(24).to_bytes(3, "big"))
    icc_cert, icc_rem = create_icc_certificate(
        issuer_rsa, icc_rsa.public, _bcd(pan), bytes.fromhex(expiry[2:4] + expiry[:2]),
        rng.getrandbits(24).to_bytes(3, "big"), static)
    records = [
        Record(1, 1, record_1),
        Record(2, 1, Tlv.template(0x70, [
            _t(0x8F, bytes([TEST_CA_INDEX])), _t(0x90, issuer_cert), _t(0x9F32, b"\x03"),
            *([_t(0x92, issuer_rem)] if issuer_rem else [])]).encode()),
        Record(2, 2, Tlv.template(0x70, [
            _t(0x9F46, icc_cert), _t(0x9F47, b"\x03"),
            *([_t(0x9F48, icc_rem)] if icc_rem else [])]).encode()),
    ]
    if spec.quick_path:
        records.append(Record(3, 1, Tlv.template(0x70, [_t(0x9F69, bytes(7))]).encode(),
                              (0x9F69,)))
    prio = spec.priority if priority is None else priority
    app = ApplicationProfile(
        aid=spec.aid, label=spec.label, kernel_id=spec.kernel_id, priority=prio,
        fci=app_fci(spec.aid, spec.label, prio, spec.pdol), pdol=spec.pdol, aip=spec.aip,
        afl=afl, records=tuple(records), cdol1=spec.cdol1, cdol2=spec.cdol2, ddol=DDOL,
        cvn=spec.cvn, dki=1, ctq=spec.ctq, fdda_version=1, risk=_RISK,
        get_data={0x9F13: b"\x00\x00", 0x9F17: b"\x03", 0x9F4F: LOG_FORMAT}, keys=keys,
        icc_rsa=icc_rsa, capk_rid=rid, capk_index=TEST_CA_INDEX, track2=track2,
        extra={"scheme": spec.name, "risk": {"currency": currency}, **spec.extra},
    )
    return app, pan


def _single(spec: SchemeSpec, seed: int, **kw: Any) -> CardProfile:
    app, pan = generate_scheme_application(spec, seed, priority=1, **kw)
    return CardProfile(pan=pan, psn=kw.get("psn", "01"), expiry=kw.get("expiry", "301231"),
                       effective=kw.get("effective", "251101"), ppse_fci=ppse_fci([app]),
                       applications=(app,), seed=seed)


def with_device_token(profile: CardProfile, seed: int, *,
                      device_type: DeviceType | str = DeviceType.HANDSET_SE,
                      device_id: str | None = None) -> CardProfile:
    """``profile`` as a device card (docs/domain.md, SPAN and MPAN): its PAN becomes the MPAN
    of a token standing for a SPAN of the same scheme's BIN, on one device; a profile that has
    a token keeps it."""
    if profile.token is not None:
        return profile
    rng = random.Random(f"token {seed}")
    app = profile.applications[0]
    spec = next((s for s in SCHEMES.values() if s.aid == app.aid), None)
    span = make_pan(spec.bin if spec else "622848", rng)
    token = TokenInfo(
        mpan=profile.pan, span=span, span_expiry="3112", token_expiry=profile.expiry[:4],
        device_id=device_id or f"dev-{rng.getrandbits(48):012x}",
        device_type=DeviceType.parse(device_type),
        token_requestor_id=f"500{rng.randrange(10**8):08d}",
        par="U001" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(25)))
    return replace(profile, token=token)


def generate_visa_profile(seed: int, **kw: Any) -> CardProfile:
    """A Visa qVSDC-style card (one application)."""
    return _single(VISA, seed, **kw)


def generate_mastercard_profile(seed: int, **kw: Any) -> CardProfile:
    """A Mastercard-style card (one application, full path with CDA)."""
    return _single(MASTERCARD, seed, **kw)


def generate_multi_application_profile(seed: int, *, ecash_balance: int | None = None,
                                       **kw: Any) -> CardProfile:
    """A device card with three applications: UnionPay QuickPass (priority 1, kernel 07),
    Visa (2, kernel 03) and Mastercard (3, kernel 02), each with its PAN and keys, all listed
    in the PPSE. ``ecash_balance`` adds a PBOC e-cash purse to the UnionPay application."""
    base = generate_profile(seed, **kw)
    union = base.applications[0]
    if ecash_balance is not None:
        union = replace(union, extra=union.extra | {"ecash": {
            "balance": ecash_balance, "balance_limit": 100000, "single_limit": 100000,
            "reset_threshold": 0}})
    visa, _ = generate_scheme_application(VISA, seed)
    mastercard, _ = generate_scheme_application(MASTERCARD, seed)
    apps = (union, visa, mastercard)
    return replace(base, applications=apps, ppse_fci=ppse_fci(apps))


def test_luk_batch(app: ApplicationProfile, first_atc: int, count: int, batch: int = 1,
                   expires: str = "") -> dict[str, Any]:
    """What the TSP (``switch/tsp.py``) sends an HCE wallet, computed here from the
    application's master keys for tests and demos: per ATC the keys of the limited-use row of
    the application's CVN (:meth:`CryptogramVersion.limited_use_keys`), in the
    ``emvtap-luk-batch/1`` document."""
    method = cryptogram_version(LIMITED_USE_CVN.get(app.cvn, app.cvn))
    keys = []
    for atc in range(first_atc, first_atc + count):
        keys.append({"atc": atc, "batch": batch, "expires": expires,
                     **method.limited_use_keys(app.keys.ac, app.keys.smi, app.keys.smc, atc)})
    return {"format": "emvtap-luk-batch/1", "batch": batch, "keys": keys}


test_luk_batch.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def hce_wallet_profile(profile: CardProfile, batch: Mapping[str, Any] | None = None,
                       no_password_limit: int | None = None) -> CardProfile:
    """The HCE form of a device card as the TSP personalises it (docs/domain.md): the key
    slots of the first application hold zeros, ``extra.key_mode`` is ``limited-use`` and
    ``extra.limited_use_keys`` carries the first batch (if given)."""
    app = profile.applications[0]
    extra: dict[str, Any] = dict(app.extra) | {"key_mode": "limited-use"}
    if batch is not None:
        extra["limited_use_keys"] = list(batch["keys"])
    if no_password_limit is not None:
        extra["no_password_limit"] = no_password_limit
    zero = CardKeys(bytes(16), bytes(16), bytes(16))
    # a CVN whose session key needs the terminal's number has a cloud row (emvtap's CVN table)
    wallet_app = replace(app, keys=zero, extra=extra, cvn=LIMITED_USE_CVN.get(app.cvn, app.cvn))
    return replace(profile, applications=(wallet_app, *profile.applications[1:]))

