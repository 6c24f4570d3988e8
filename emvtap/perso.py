"""Personalisation: a complete, self-consistent UnionPay QuickPass (qPBOC) device-card profile.

What a personalisation bureau would produce for one device card (docs/domain.md): the token
(MPAN) standing for the physical card (SPAN), the PPSE entry with kernel ID 07, the payment
application's FCI with its PDOL, the records and AFL, the issuer and ICC certificates under a
test CA (EMV 4.4 Book 2, 5.3 and 6.4), and the card master keys derived from issuer master keys
(Book 2, A1.4). Everything comes from the seed: same seed, same bytes.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from emvtap.capk import TEST_CA_INDEX, test_ca_private_key
from emvtap.device_types import DeviceType
from emvtap.dol import parse_afl
from emvtap.keys import derive_icc_master_key
from emvtap.luhn import luhn_check_digit
from emvtap.oda import (
    create_icc_certificate,
    create_issuer_certificate,
    static_data_to_be_authenticated,
)
from emvtap.profile import (
    ApplicationProfile,
    CardKeys,
    CardProfile,
    CardRisk,
    Record,
    TokenInfo,
)
from emvtap.rsa import RsaKey, generate_rsa_key
from emvtap.tlv import Tlv

__all__ = [
    "PPSE_NAME",
    "QPBOC_PDOL",
    "UNIONPAY_DEBIT_AID",
    "IssuerKeys",
    "generate_profile",
    "issuer_keys",
    "luhn_check_digit",
    "make_pan",
]

UNIONPAY_RID = bytes.fromhex("A000000333")
UNIONPAY_DEBIT_AID = bytes.fromhex("A000000333010101")
PPSE_NAME = b"2PAY.SYS.DDF01"

#: C-7 / qPBOC PDOL: TTQ, amount, amount other, country, TVR, currency, date, type, UN.
QPBOC_PDOL = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
#: CDOL1/2 for the full PBOC path (Book 3, Annex C typical lists).
CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F3403")
CDOL2 = bytes.fromhex("910A8A0295059F37049F4C08")
DDOL = bytes.fromhex("9F3704")

#: AIP: DDA supported, cardholder verification, terminal risk management, issuer
#: authentication (Book 3, Annex C1) - fDDA is the contactless form of DDA.
AIP_QPBOC = bytes.fromhex("3C00")
#: AFL: SFI 1 record 1 (in ODA), SFI 2 records 1-2 (certificates), SFI 3 record 1 (9F69).
AFL_QPBOC = bytes.fromhex("080101011001020018010100")
#: CVM list (Book 3, 10.5): online PIN if the terminal supports it (else next), signature,
#: no CVM required - amounts X = Y = 0.
CVM_LIST = bytes.fromhex("00000000000000004203" "1E03" "1F03")
#: CTQ (C-3/C-7): byte 1 b6 go online if ODA fails, b4 go online if the application expired;
#: byte 2 b7 the card supports issuer update processing.
CTQ_DEFAULT = bytes.fromhex("2840")
#: Log format (9F4F) for GET DATA: date, time, amount, currency, merchant, type.
LOG_FORMAT = bytes.fromhex("9A039F21039F02065F2A029F4E149C01")

TOKEN_BIN = "625094"  # the test TSP's token BIN range
ISSUER_BIN = "622848"  # the test issuer's card BIN


def make_pan(bin_prefix: str, rng: random.Random, length: int = 16) -> str:
    body = bin_prefix + "".join(str(rng.randrange(10)) for _ in range(length - 1 - len(bin_prefix)))
    return body + luhn_check_digit(body)


def _bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def _t(tag: int, value: bytes) -> Tlv:
    return Tlv.primitive(tag, value)


@dataclass(frozen=True)
class IssuerKeys:
    """Issuer master keys for AC, secure-messaging integrity and confidentiality (test only);
    kept out of reprs."""

    imk_ac: bytes = field(repr=False)
    imk_smi: bytes = field(repr=False)
    imk_smc: bytes = field(repr=False)


def issuer_keys(seed: int) -> IssuerKeys:
    def k(label: str) -> bytes:
        return hashlib.sha256(f"emvtap test IMK {label} {seed}".encode()).digest()[:16]

    return IssuerKeys(k("AC"), k("SMI"), k("SMC"))


def _track2(pan: str, expiry_yymmdd: str, rng: random.Random) -> bytes:
    discretionary = "".join(str(rng.randrange(10)) for _ in range(8))
    return _bcd(f"{pan}D{expiry_yymmdd[:4]}201{discretionary}")


def _issuer_id(pan: str) -> bytes:
    """Book 2, 5.3 table 13: leftmost 3-8 PAN digits, F padded - we use the 6-digit BIN."""
    return bytes.fromhex(pan[:6] + "FF")


def _mmyy(yymmdd: str) -> bytes:
    return bytes.fromhex(yymmdd[2:4] + yymmdd[0:2])


def generate_profile(
    seed: int,
    *,
    pan: str | None = None,
    span: str | None = None,
    device_id: str | None = None,
    device_type: DeviceType | str = DeviceType.HANDSET_SE,
    token_requestor_id: str | None = None,
    expiry: str = "301231",
    effective: str = "251101",
    psn: str = "01",
) -> CardProfile:
    """A UnionPay QuickPass device card, deterministic in ``seed`` (and the given overrides)."""
    rng = random.Random(seed)
    mpan = pan or make_pan(TOKEN_BIN, rng)
    span_ = span or make_pan(ISSUER_BIN, rng)
    token = TokenInfo(
        mpan=mpan,
        span=span_,
        span_expiry="3112",
        token_expiry=expiry[:4],
        device_id=device_id or f"dev-{rng.getrandbits(48):012x}",
        device_type=DeviceType.parse(device_type),
        token_requestor_id=token_requestor_id or f"500{rng.randrange(10**8):08d}",
        par="U001" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(25)),
    )
    imk = issuer_keys(seed)
    keys = CardKeys(
        ac=derive_icc_master_key(imk.imk_ac, mpan, psn),
        smi=derive_icc_master_key(imk.imk_smi, mpan, psn),
        smc=derive_icc_master_key(imk.imk_smc, mpan, psn),
    )

    seed_bytes = seed.to_bytes(8, "big", signed=True)
    issuer_rsa: RsaKey = generate_rsa_key(1024, 3, b"emvtap perso issuer " + seed_bytes)
    icc_rsa: RsaKey = generate_rsa_key(768, 3, b"emvtap perso icc " + seed_bytes)
    ca_key = test_ca_private_key(UNIONPAY_RID)

    label = b"UnionPay Debit"
    ppse_fci = Tlv.template(0x6F, [
        _t(0x84, PPSE_NAME),
        Tlv.template(0xA5, [Tlv.template(0xBF0C, [Tlv.template(0x61, [
            _t(0x4F, UNIONPAY_DEBIT_AID),
            _t(0x50, label),
            _t(0x87, b"\x01"),
            _t(0x9F2A, b"\x07"),
        ])])]),
    ]).encode()
    app_fci = Tlv.template(0x6F, [
        _t(0x84, UNIONPAY_DEBIT_AID),
        Tlv.template(0xA5, [
            _t(0x50, label),
            _t(0x87, b"\x01"),
            _t(0x9F38, QPBOC_PDOL),
            _t(0x5F2D, b"zhen"),
            _t(0x9F11, b"\x01"),
            _t(0x9F12, label),
        ]),
    ]).encode()

    record_1_1 = Tlv.template(0x70, [
        _t(0x5A, _bcd(mpan)),
        _t(0x5F24, bytes.fromhex(expiry)),
        _t(0x5F25, bytes.fromhex(effective)),
        _t(0x5F28, bytes.fromhex("0156")),
        _t(0x5F34, bytes.fromhex(psn)),
        _t(0x9F07, bytes.fromhex("FF00")),
        _t(0x9F08, bytes.fromhex("0030")),
        _t(0x8E, CVM_LIST),
        _t(0x9F0D, bytes.fromhex("D86004A800")),
        _t(0x9F0E, bytes.fromhex("0010800000")),
        _t(0x9F0F, bytes.fromhex("D86804F800")),
        _t(0x8C, CDOL1),
        _t(0x8D, CDOL2),
        _t(0x9F49, DDOL),
        _t(0x5F30, bytes.fromhex("0201")),
        _t(0x9F4A, b"\x82"),
    ]).encode()
    records_for_oda = {(1, 1): record_1_1}
    static_data = static_data_to_be_authenticated(
        parse_afl(AFL_QPBOC), records_for_oda, AIP_QPBOC, b"\x82"
    )

    issuer_cert, issuer_remainder = create_issuer_certificate(
        ca_key, issuer_rsa.public, _issuer_id(mpan), bytes.fromhex("1230"),
        rng.getrandbits(24).to_bytes(3, "big"),
    )
    icc_cert, icc_remainder = create_icc_certificate(
        issuer_rsa, icc_rsa.public, _bcd(mpan), _mmyy(expiry),
        rng.getrandbits(24).to_bytes(3, "big"), static_data,
    )
    exponent = b"\x03"
    record_2_1 = Tlv.template(0x70, [
        _t(0x8F, bytes([TEST_CA_INDEX])),
        _t(0x90, issuer_cert),
        _t(0x9F32, exponent),
        *([_t(0x92, issuer_remainder)] if issuer_remainder else []),
    ]).encode()
    record_2_2 = Tlv.template(0x70, [
        _t(0x9F46, icc_cert),
        _t(0x9F47, exponent),
        *([_t(0x9F48, icc_remainder)] if icc_remainder else []),
    ]).encode()
    # 9F69 (fDDA version 01 ‖ card UN ‖ CTQ) changes each transaction: the card fills it in.
    record_3_1 = Tlv.template(0x70, [_t(0x9F69, bytes(7))]).encode()

    app = ApplicationProfile(
        aid=UNIONPAY_DEBIT_AID,
        label=label.decode(),
        kernel_id=7,
        priority=1,
        fci=app_fci,
        pdol=QPBOC_PDOL,
        aip=AIP_QPBOC,
        afl=AFL_QPBOC,
        records=(
            Record(1, 1, record_1_1),
            Record(2, 1, record_2_1),
            Record(2, 2, record_2_2),
            Record(3, 1, record_3_1, (0x9F69,)),
        ),
        cdol1=CDOL1,
        cdol2=CDOL2,
        ddol=DDOL,
        cvn=1,
        dki=1,
        ctq=CTQ_DEFAULT,
        fdda_version=1,
        risk=CardRisk(offline_amount_limit=10000, consecutive_offline_limit=5),
        get_data={0x9F13: b"\x00\x00", 0x9F17: b"\x03", 0x9F4F: LOG_FORMAT},
        keys=keys,
        icc_rsa=icc_rsa,
        capk_rid=UNIONPAY_RID,
        capk_index=TEST_CA_INDEX,
        track2=_track2(mpan, expiry, rng),
    )
    return CardProfile(
        pan=mpan,
        psn=psn,
        expiry=expiry,
        effective=effective,
        ppse_fci=ppse_fci,
        applications=(app,),
        token=token,
        seed=seed,
    )
