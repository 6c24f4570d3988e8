"""Personalisation APDUs for the Java Card applets (applets/README.md, "Personalisation").

The same card profile that personalises the HCE card is turned into what a personalisation
bureau would send to the secure element: SELECT of each applet instance, then STORE DATA
(GlobalPlatform Card Spec 2.3, 11.11) blocks carrying a stream of DGIs in EMV CPS framing
(DGI ‖ length, one byte up to FE else FF ‖ two bytes ‖ value); a DGI may span blocks. P1 is
``08`` (DGI format) and ``88`` on the last block, P2 the block number.

| DGI          | value                                                                   |
|--------------|-------------------------------------------------------------------------|
| 9102         | the whole SELECT response data (FCI, template 6F)                       |
| 9104         | AIP (2) ‖ AFL                                                           |
| B001         | TLVs: 9F38 PDOL, 8C CDOL1, 8D CDOL2, 9F49 DDOL (each if not empty)      |
| B002         | TLVs: 57 track 2, 5F34 PSN, 9F6C CTQ, DF10 DKI, DF11 CVN, DF12 fDDA ver.|
| B003         | TLVs: DF71 offline amount limit (n12), 9F14 lower consecutive offline   |
|              | limit, DF72 offline allowed (01/00), 9F51 application currency          |
| B004         | TLVs: GET DATA objects of the profile (not 9F36, 9F13: the card's own)  |
| B005         | initial ATC (2), when the profile's GET DATA gives 9F36                 |
| SFI ‖ record | one record, template 70 included, served byte-identical                 |
| 8000         | ICC master keys MK-AC ‖ MK-SMI ‖ MK-SMC (16 bytes each; in clear)       |
| 8201..8205   | ICC RSA CRT key: q⁻¹ mod p, dQ, dP, q, p (each N/2 bytes)               |

The PPSE applet takes DGI 9102 only. The Java side builds the same bytes
(``org.emvtap.bridge.PersoCommands``; ``java -jar emvtap-applets-bridge.jar --dump-perso``),
and a test compares the two.
"""

from __future__ import annotations

from collections.abc import Iterable

from emvtap.profile import ApplicationProfile, CardProfile
from emvtap.tlv import Tlv

__all__ = [
    "PPSE_AID",
    "STORE_DATA_BLOCK",
    "applet_install_parameters",
    "dgi",
    "dgi_stream",
    "payment_perso_apdus",
    "perso_apdus",
    "ppse_perso_apdus",
    "select",
    "store_data",
]

PPSE_AID = b"2PAY.SYS.DDF01"
#: The most command data one short STORE DATA carries.
STORE_DATA_BLOCK = 255
_DEFAULT_CURRENCY = "0156"


def select(aid: bytes) -> bytes:
    """SELECT by DF name, first occurrence (Book 1, 11.3.2)."""
    return bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00"


def dgi(number: int, value: bytes) -> bytes:
    """One DGI in EMV CPS framing."""
    one_byte = len(value) <= 0xFE
    length = bytes([len(value)]) if one_byte else b"\xff" + len(value).to_bytes(2, "big")
    return number.to_bytes(2, "big") + length + value


def _tlvs(items: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(Tlv.primitive(tag, value).encode() for tag, value in items)


def _crt_parts(app: ApplicationProfile) -> list[tuple[int, bytes]]:
    key = app.icc_rsa
    if key is None:
        return []
    half = key.modulus_len // 2
    parts = {
        0x8201: pow(key.q, -1, key.p),
        0x8202: key.d % (key.q - 1),
        0x8203: key.d % (key.p - 1),
        0x8204: key.q,
        0x8205: key.p,
    }
    out = []
    for number, value in parts.items():
        if value.bit_length() > 8 * half:
            raise ValueError("ICC RSA key: a CRT part is longer than half the modulus")
        out.append((number, value.to_bytes(half, "big")))
    return out


def dgi_stream(app: ApplicationProfile, psn: str) -> bytes:
    """All DGIs of one payment application, in the documented order."""
    dols = _tlvs((tag, value) for tag, value in (
        (0x9F38, app.pdol), (0x8C, app.cdol1), (0x8D, app.cdol2), (0x9F49, app.ddol)) if value)
    card_data = _tlvs([
        (0x57, app.track2),
        (0x5F34, bytes.fromhex(psn)),
        (0x9F6C, app.ctq),
        (0xDF10, bytes([app.dki])),
        (0xDF11, bytes([app.cvn])),
        (0xDF12, bytes([app.fdda_version])),
    ])
    currency = str(app.extra.get("risk", {}).get("currency", _DEFAULT_CURRENCY))
    risk = _tlvs([
        (0xDF71, bytes.fromhex(f"{app.risk.offline_amount_limit:012d}")),
        (0x9F14, bytes([app.risk.consecutive_offline_limit])),
        (0xDF72, b"\x01" if app.risk.allow_offline else b"\x00"),
        (0x9F51, bytes.fromhex(currency)),
    ])
    out = [dgi(0x9102, app.fci), dgi(0x9104, app.aip + app.afl), dgi(0xB001, dols),
           dgi(0xB002, card_data), dgi(0xB003, risk)]
    get_data = [(tag, value) for tag, value in app.get_data.items() if tag not in (0x9F36, 0x9F13)]
    if get_data:
        out.append(dgi(0xB004, _tlvs(get_data)))
    if 0x9F36 in app.get_data:
        out.append(dgi(0xB005, app.get_data[0x9F36]))
    out += [dgi((r.sfi << 8) | r.record, r.data) for r in app.records]
    out.append(dgi(0x8000, app.keys.ac + app.keys.smi + app.keys.smc))
    out += [dgi(number, value) for number, value in _crt_parts(app)]
    return b"".join(out)


def store_data(stream: bytes) -> list[bytes]:
    """Splits a DGI stream into STORE DATA commands (``80 E2 08|88 block Lc data``)."""
    blocks = [stream[i:i + STORE_DATA_BLOCK] for i in range(0, len(stream), STORE_DATA_BLOCK)]
    blocks = blocks or [b""]
    last = len(blocks) - 1
    return [bytes([0x80, 0xE2, 0x88 if n == last else 0x08, n & 0xFF, len(block)]) + block
            for n, block in enumerate(blocks)]


def ppse_perso_apdus(profile: CardProfile) -> list[bytes]:
    """SELECT PPSE, then the FCI in DGI 9102."""
    return [select(PPSE_AID), *store_data(dgi(0x9102, profile.ppse_fci))]


def payment_perso_apdus(app: ApplicationProfile, psn: str) -> list[bytes]:
    """SELECT the payment applet instance (its AID), then its DGIs."""
    return [select(app.aid), *store_data(dgi_stream(app, psn))]


def perso_apdus(profile: CardProfile) -> list[bytes]:
    """The whole personalisation: PPSE first, then each payment application."""
    out = ppse_perso_apdus(profile)
    for app in profile.applications:
        out += payment_perso_apdus(app, profile.psn)
    return out


def applet_install_parameters(app: ApplicationProfile) -> bytes:
    """Install parameters of the payment applet (``gp --params``): the ICC RSA modulus length
    in bytes, as ``C9 02 nn nn`` (1024-bit default without an ICC key)."""
    n = app.icc_rsa.modulus_len if app.icc_rsa is not None else 128
    return b"\xc9\x02" + n.to_bytes(2, "big")
