"""emvtap.cryptogram_versions as the switch applies it (switch.arqc): one row per cryptogram
version (PBOC CVN 01, Visa CVN 18, Mastercard CVN 16),
the IAD layouts the CVN is read from, each row against the public vectors where they exist
(docs/emv-notes.md, tests/data/vectors/public.json), and each scheme's real HCE card
profile approved by the switch's Authorizer (a tampered ARQC declined)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from data_files import public_vectors

from emvtap import tlv
from emvtap.cryptogram import arpc_method_1, arpc_method_2, generate_ac
from emvtap.cryptogram_versions import (
    CRYPTOGRAM_VERSIONS,
    IAD_LAYOUTS,
    IadError,
    detect_iad_layout,
)
from emvtap.iso8583 import decode_message, encode_message
from emvtap.keys import derive_icc_master_key, derive_mastercard_session_key
from emvtap.luhn import luhn_complete
from emvtap.perso import generate_profile
from emvtap.perso_schemes import generate_mastercard_profile, generate_visa_profile
from emvtap.profile import CardProfile, TokenInfo
from hce_card.application import PaymentApplication
from hce_card.card import HceCard
from switch.arqc import (
    IccDataError,
    icc_cryptogram_version,
    issuer_authentication_data,
    parse_icc_data,
    verify_arqc,
)
from switch.authorize import Authorizer
from switch.enroll import enroll_profile
from switch.store import Store
from switch.testing import make_profile
from terminal.config import TerminalConfig
from terminal.outcome import Outcome
from terminal.pay import perform_transaction
from terminal.transport import open_transport

TODAY = datetime(2025, 11, 26, 11, 30, tzinfo=UTC)

#: the Book 2 A1.2 list in the order of the vectors' "data": (tag, length)
LIST = ((0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1),
        (0x9F37, 4), (0x82, 2), (0x9F36, 2))


def vector(vid: str) -> dict[str, Any]:
    """One ARQC/ARPC vector of the public vectors (tests/data/)."""
    return next(v for v in public_vectors()["arqc_arpc"] if v["id"] == vid)


def list_values(data: bytes) -> dict[int, bytes]:
    """Split a vector's "data" into the list's tags; the rest (CVR) is returned under 0."""
    out, i = {}, 0
    for tag, n in LIST:
        out[tag] = data[i:i + n]
        i += n
    out[0] = data[i:]
    return out


def de55(values: dict[int, bytes]) -> bytes:
    return tlv.encode(tlv.Tlv.primitive(t, v) for t, v in values.items())


def mchip_iad(cvr: bytes, cvn: int = 0x10, dki: int = 1) -> bytes:
    """M/Chip: DKI ‖ CVN ‖ CVR (6) ‖ DAC/IDN (2) ‖ counters (8) - 18 bytes."""
    return bytes([dki, cvn]) + cvr + bytes(10)


def vector_icc(v: dict[str, Any], iad: bytes, arqc: str | None = None) -> dict[int, bytes]:
    values = list_values(bytes.fromhex(v["data"]))
    del values[0]
    return values | {0x9F10: iad, 0x9F26: bytes.fromhex(arqc or v["arqc"]), 0x9F27: b"\x80"}


def flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 0x01]) + b[1:]


# --- IAD layouts -------------------------------------------------------------------------------

MCHIP_CARD_IAD = mchip_iad(bytes.fromhex("A08003242000"))


@pytest.mark.parametrize(("iad", "fmt", "cvn"), [
    ("07000103A04002010A010000001000D1F61152", "vis", 0x01),  # public PBOC vector's 9F10
    ("07010103A0000001", "vis", 0x01),  # our PBOC card
    ("06011203A00000", "vis", 0x12),  # Visa CVN 18, format 0/1
    ("06010A03A00000", "vis", 0x0A),  # Visa CVN 10: read, but no row
    (MCHIP_CARD_IAD.hex(), "mchip", 0x10),  # M/Chip CVN 16
    (mchip_iad(bytes(6), cvn=0x14).hex(), "mchip", 0x14),  # M/Chip CVN 20: read, no row
])
def test_iad_layout_and_cvn_are_detected(iad: str, fmt: str, cvn: int) -> None:
    found = detect_iad_layout(bytes.fromhex(iad))
    assert found is not None and found.name == fmt
    assert bytes.fromhex(iad)[found.cvn_offset] == cvn


@pytest.mark.parametrize("iad", [
    "0102030405060708",  # neither: VIS length byte 01, and not 18 bytes
    "06011203A000",  # VIS length 06 but only 6 bytes
    "07010102A0000001",  # VIS without the CVR length 03
    mchip_iad(bytes(6), cvn=0x20).hex(),  # 18 bytes, CVN outside the M/Chip family
    (mchip_iad(bytes(6)) + b"\x00").hex(),  # M/Chip CVN but 19 bytes
])
def test_iad_in_no_known_layout_has_no_cvn(iad: str) -> None:
    assert detect_iad_layout(bytes.fromhex(iad)) is None


def test_mchip_cvn_is_byte_2_not_byte_3() -> None:
    """The gap this row closes: reading byte 3 of an M/Chip IAD gives the CVR's first byte."""
    values = {t: bytes(n) for t, n in LIST} | {
        0x9F10: MCHIP_CARD_IAD, 0x9F26: bytes(8), 0x9F27: b"\x80"}
    icc = parse_icc_data(de55(values))
    assert (icc.iad_format, icc.cvn) == ("mchip", 0x10)
    assert icc.cvr == bytes.fromhex("A08003242000")
    assert MCHIP_CARD_IAD[2] != 0x10


# an 18-byte PBOC IAD (9 bytes of discretionary data) whose DKI is 10: valid in both layouts
AMBIGUOUS = bytes.fromhex("07100103A000000109") + bytes(9)


def test_an_iad_valid_in_both_layouts_is_settled_by_the_tokens_cvn() -> None:
    assert all(f.matches(AMBIGUOUS) for f in IAD_LAYOUTS.values())
    assert detect_iad_layout(AMBIGUOUS, expected_cvn=0x01).name == "vis"
    assert detect_iad_layout(AMBIGUOUS, expected_cvn=0x10).name == "mchip"
    with pytest.raises(IadError, match="ambiguous"):
        detect_iad_layout(AMBIGUOUS)
    with pytest.raises(IadError, match="ambiguous"):
        detect_iad_layout(AMBIGUOUS, expected_cvn=0x12)


def test_an_ambiguous_iad_with_one_supported_reading_takes_it() -> None:
    iad = bytes.fromhex("07100A03A000000109") + bytes(9)  # VIS reading: CVN 0A, no row
    assert detect_iad_layout(iad).name == "mchip"


def test_a_cvn_in_another_rows_layout_is_unsupported() -> None:
    values = {t: bytes(n) for t, n in LIST} | {
        0x9F10: bytes.fromhex("06011003A00000"), 0x9F26: bytes(8), 0x9F27: b"\x80"}
    icc = parse_icc_data(de55(values))
    assert (icc.iad_format, icc.cvn) == ("vis", 0x10)
    assert icc_cryptogram_version(icc) is None
    assert not verify_arqc(icc, bytes(16))


def test_short_iad_is_a_format_error() -> None:
    values = {t: bytes(n) for t, n in LIST} | {
        0x9F10: bytes.fromhex("060112"), 0x9F26: bytes(8), 0x9F27: b"\x80"}
    with pytest.raises(IccDataError):
        parse_icc_data(de55(values))


def test_every_row_names_a_layout_the_core_reads() -> None:
    for cvn, row in CRYPTOGRAM_VERSIONS.items():
        assert row.cvn == cvn
        assert row.iad_layout in IAD_LAYOUTS
        # the row's own IAD reads back, in its layout, as its CVN
        iad = row.iad(1, bytes.fromhex("03A00000") if row.iad_layout == "vis" else bytes(6))
        assert detect_iad_layout(iad, cvn) is IAD_LAYOUTS[row.iad_layout]
        assert iad[IAD_LAYOUTS[row.iad_layout].cvn_offset] == cvn


def test_an_ambiguous_iad_in_de55_is_a_format_error() -> None:
    values = {t: bytes(n) for t, n in LIST} | {
        0x9F10: AMBIGUOUS, 0x9F26: bytes(8), 0x9F27: b"\x80"}
    with pytest.raises(IccDataError, match="ambiguous"):
        parse_icc_data(de55(values))
    assert parse_icc_data(de55(values), expected_cvn=0x10).iad_format == "mchip"


# --- each row against the public vectors ----------------------------------------------------------


def test_pboc_cvn_01_row_against_the_public_pboc_vector() -> None:
    v = vector("pboc_unionpay_cvn01")
    mk = derive_icc_master_key(bytes.fromhex(v["imk_ac"]), v["pan"], v["psn"])
    icc = parse_icc_data(de55(vector_icc(v, bytes.fromhex(v["iad_9F10"]))))
    row = icc_cryptogram_version(icc)
    assert row is CRYPTOGRAM_VERSIONS[0x01]
    sk = row.session_key(mk, icc.atc, icc.values)
    assert sk.hex().upper() == v["sk_derived_here"]
    assert verify_arqc(icc, sk)
    arc = bytes.fromhex(v["arc"]).decode("ascii")
    assert issuer_authentication_data(icc, sk, arc) == bytes.fromhex(v["arpc"] + v["arc"])
    tampered = parse_icc_data(de55(vector_icc(v, bytes.fromhex(v["iad_9F10"]),
                                              flip(bytes.fromhex(v["arqc"])).hex())))
    assert not verify_arqc(tampered, sk)


def test_mastercard_cvn_16_row_against_the_public_jpos_vector() -> None:
    """jpos_mchip_80: the list ‖ CVR (6 bytes) under the M/Chip session key (R = ATC‖0000‖UN),
    method 2 padding; ARPC method 1 under the ICC MK. The CVR travels in an M/Chip IAD."""
    v = vector("jpos_mchip_80")
    mk = derive_icc_master_key(bytes.fromhex(v["imk_ac"]), v["pan"], v["psn"], v["mkd"])
    cvr = list_values(bytes.fromhex(v["data"]))[0]
    assert len(cvr) == 6
    icc = parse_icc_data(de55(vector_icc(v, mchip_iad(cvr))))
    assert (icc.iad_format, icc.cvn) == ("mchip", 0x10)
    row = icc_cryptogram_version(icc)
    assert row is CRYPTOGRAM_VERSIONS[0x10]
    assert row.mac_data(icc.values) == bytes.fromhex(v["data"])
    sk = row.session_key(mk, icc.atc, icc.values)
    assert sk == derive_mastercard_session_key(mk, bytes.fromhex(v["atc"]),
                                               bytes.fromhex(v["un"]))
    assert verify_arqc(icc, sk)
    assert row.arpc_key == "icc_mk" == v["arpc_key"]
    issuer_auth = row.issuer_authentication(mk, icc.arqc, bytes.fromhex(v["arc"]))
    assert issuer_auth == bytes.fromhex(v["arpc"] + v["arc"])
    # through the module's entry point the ARPC is keyed with the MK, not the session key
    assert issuer_authentication_data(icc, sk, "00", mk)[:8] == arpc_method_1(
        mk, icc.arqc, b"00")
    with pytest.raises(ValueError, match="master key"):
        issuer_authentication_data(icc, sk, "00")
    tampered = parse_icc_data(de55(vector_icc(v, mchip_iad(cvr),
                                              flip(bytes.fromhex(v["arqc"])).hex())))
    assert not verify_arqc(tampered, sk)
    other_un = parse_icc_data(de55(vector_icc(v, mchip_iad(cvr)) | {0x9F37: bytes(4)}))
    assert not verify_arqc(other_un, row.session_key(mk, other_un.atc, other_un.values))


def test_visa_cvn_18_row_session_key_against_the_public_csk_vector() -> None:
    """No public vector MACs a whole VIS IAD; the row's session key (EMV CSK, R = ATC‖0…0) is
    checked against jpos_emv_csk_zero (its data under that key, method 1 padding)."""
    v = vector("jpos_emv_csk_zero")
    mk = derive_icc_master_key(bytes.fromhex(v["imk_ac"]), v["pan"], v["psn"], v["mkd"])
    icc = parse_icc_data(de55(vector_icc(v, bytes.fromhex("06011203A00000"))))
    sk = CRYPTOGRAM_VERSIONS[0x12].session_key(mk, icc.atc, icc.values)
    assert generate_ac(sk, bytes.fromhex(v["data"]), 1).hex().upper() == v["arqc"]
    assert arpc_method_2(sk, icc.arqc, bytes.fromhex(v["arpc2_csu"])).hex().upper() == v["arpc2"]


def test_mastercard_public_vector_is_approved_by_the_authorizer(tmp_path) -> None:
    """The whole host path on the public vector: a token whose ICC MK is the vector's."""
    v = vector("jpos_mchip_80")
    mk = derive_icc_master_key(bytes.fromhex(v["imk_ac"]), v["pan"], v["psn"], v["mkd"])
    mpan = luhn_complete(v["pan"][:15])
    profile = make_profile(mpan=mpan, span=luhn_complete("622848000000077"), psn=v["psn"],
                           device_id="vector-phone", cvn=0x10)
    profile["applications"][0]["keys"] = {"ac": mk.hex(), "smi": mk.hex(), "smc": mk.hex()}
    cvr = list_values(bytes.fromhex(v["data"]))[0]
    with Store(tmp_path / "switch.db") as store:
        enroll_profile(store, profile, currency="840")
        host = Authorizer(store, clock=lambda: TODAY)
        values = vector_icc(v, mchip_iad(cvr))
        request = {"t": "0100", "2": mpan, "3": "000000", "4": values[0x9F02].hex(),
                   "11": "000001", "22": "071", "37": "000000000001", "41": "TERM0001",
                   "42": "MERCHANT0000001", "49": "840", "55": de55(values)}
        response = decode_message(host.handle_raw(encode_message(request)))
        assert response["39"] == "00", store.authorizations()[0]["reason"]
        issuer_auth = tlv.find(tlv.decode(response["55"]), 0x91).value
        assert issuer_auth == arpc_method_1(mk, bytes.fromhex(v["arqc"]), b"00") + b"00"
        values[0x9F26] = flip(values[0x9F26])
        request |= {"11": "000002", "37": "000000000002", "55": de55(values)}
        response = decode_message(host.handle_raw(encode_message(request)))
        assert response["39"] == "05" and "55" not in response
        assert store.authorizations()[0]["reason"] == "cryptogram_invalid"


# --- the real HCE card profiles through the terminal and the Authorizer -------------------------


def device_card(profile: CardProfile, n: int) -> CardProfile:
    """A scheme profile as a device card: a token (MPAN = its PAN) standing for a SPAN."""
    if profile.token is not None:
        return profile
    return replace(profile, token=TokenInfo(
        mpan=profile.pan, span=luhn_complete(f"622848{n:09d}"), span_expiry="3112",
        token_expiry=profile.expiry[:4], device_id=f"phone-{n}", device_type="handset-se",
        token_requestor_id="50012345678", par=f"U001{n:025d}"))


SCHEMES = {
    "pboc": lambda: generate_profile(41),
    "visa": lambda: device_card(generate_visa_profile(42), 42),
    "mastercard": lambda: device_card(generate_mastercard_profile(43), 43),
}
CVNS = {"pboc": 0x01, "visa": 0x12, "mastercard": 0x10}


class InProcessHost:
    """The terminal's Authoriser bound to an Authorizer (no TCP), optionally tampering with the
    ARQC on the way; keeps each request and response."""

    def __init__(self, host: Authorizer, tamper: bool = False) -> None:
        self.host, self.tamper = host, tamper
        self.exchanges: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def __call__(self, fields: dict[str, Any]) -> dict[str, Any]:
        if self.tamper:
            objs = [tlv.Tlv.primitive(o.tag, flip(o.value) if o.tag == 0x9F26 else o.value)
                    for o in tlv.decode(fields["55"])]
            fields = dict(fields, **{"55": tlv.encode(objs)})
        raw = self.host.handle_raw(encode_message(fields))
        assert raw is not None
        response = decode_message(raw)
        self.exchanges.append((fields, response))
        return response


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "switch.db") as s:
        yield s


def tap(card: HceCard, authorise: InProcessHost, amount: int = 15000) -> Any:
    return perform_transaction(open_transport("loopback:", card=card), TerminalConfig.default(),
                               amount, authorise=authorise, now=TODAY, rng=random.Random(7))


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_real_card_arqc_is_approved_and_a_tampered_one_declined(store, scheme) -> None:
    profile = SCHEMES[scheme]()
    assert profile.application.cvn == CVNS[scheme]
    enroll_profile(store, profile.to_dict(), balance=100_000)
    host = Authorizer(store)
    card = HceCard(profile)

    tampered = InProcessHost(host, tamper=True)
    result = tap(card, tampered)
    assert result.final_outcome == Outcome.DECLINED
    (_, response), = tampered.exchanges
    assert response["39"] == "05" and "55" not in response
    assert store.authorizations()[0]["reason"] == "cryptogram_invalid"

    honest = InProcessHost(host)
    result = tap(card, honest)
    assert result.final_outcome == Outcome.APPROVED, result.reason
    (request, response), = honest.exchanges
    assert response["39"] == "00"
    record = store.authorizations()[0]
    assert record["reason"] == "approved"
    icc = parse_icc_data(request["55"])
    assert icc.cvn == CVNS[scheme]
    # the card generated with the very row the switch verified with (one table in the core)
    card_app: PaymentApplication = card.payment_applications[0]
    assert card_app.method is icc_cryptogram_version(icc) is CRYPTOGRAM_VERSIONS[icc.cvn]
    assert icc.iad_format == ("mchip" if scheme == "mastercard" else "vis")
    # the ARPC is the one the card's CVN row accepts (the same row of the core table)
    method = CRYPTOGRAM_VERSIONS[icc.cvn]
    keys = profile.application.keys
    key = keys.ac if method.arpc_with_master_key else method.session_key(
        keys.ac, icc.atc, dict(icc.values))
    issuer_auth = tlv.find(tlv.decode(response["55"]), 0x91).value
    verdict = method.check_arpc(key, icc.arqc, issuer_auth)
    assert verdict.valid and verdict.approved
    if scheme == "mastercard":  # full path: the card checked 91 in GENERATE AC 2
        assert result.online["arpc_verified"] is True
        assert "TC in GENERATE AC 2" in result.reason
        state = card.store.app(profile.application.aid)
        assert not state.issuer_authentication_failed


def test_limited_use_token_cannot_use_cvn_16(store) -> None:
    """CVN 16's session key needs the terminal's UN: no limited-use key can be it."""
    profile = SCHEMES["mastercard"]()
    enroll_profile(store, profile.to_dict())
    store.update_token(profile.pan, limited_use=True)
    honest = InProcessHost(Authorizer(store))
    result = tap(HceCard(profile), honest)
    assert result.final_outcome == Outcome.DECLINED
    assert store.authorizations()[0]["reason"] == "unsupported_cvn"
