"""The neutral terminal profile that fills a card's PDOL for GET PROCESSING OPTIONS when the
card is only read: amount zero, an online-capable reader that supports qVSDC/qPBOC, contact
chip, online PIN, signature and CDCVM, and asks for an online cryptogram (so that no card
approves anything offline). Country, currency and capabilities come from the terminal
configuration (docs/terminal-config.md)."""

from __future__ import annotations

import secrets
from datetime import datetime

from emvtap.bits import TTQ, set_bits
from terminal.config import TerminalConfig

__all__ = ["NEUTRAL_TTQ", "pdol_values"]

#: Contactless Book C-3, Annex A: qVSDC/qPBOC, contact chip, online PIN, signature supported;
#: online cryptogram required; consumer device CVM supported.
NEUTRAL_TTQ = set_bits(bytes(4), TTQ.QPBOC_SUPPORTED, TTQ.CONTACT_SUPPORTED,
                       TTQ.ONLINE_PIN_SUPPORTED, TTQ.SIGNATURE_SUPPORTED,
                       TTQ.ONLINE_CRYPTOGRAM_REQUIRED, TTQ.CDCVM_SUPPORTED)


def pdol_values(config: TerminalConfig, now: datetime) -> dict[int, bytes]:
    """Tag → value for every terminal data element a PDOL may ask for; others are zero."""
    return {
        0x9F66: NEUTRAL_TTQ,
        0x9F02: bytes(6),
        0x9F03: bytes(6),
        0x9F1A: config.terminal_country_code,
        0x5F2A: config.transaction_currency_code,
        0x5F36: bytes([config.transaction_currency_exponent]),
        0x95: bytes(5),
        0x9A: bytes.fromhex(now.strftime("%y%m%d")),
        0x9F21: bytes.fromhex(now.strftime("%H%M%S")),
        0x9C: b"\x00",
        0x9F37: secrets.token_bytes(4),
        0x9F35: config.terminal_type,
        0x9F33: config.terminal_capabilities,
        0x9F40: config.additional_terminal_capabilities,
        0x9F4E: config.merchant_name_location.encode("ascii", "replace"),
        0x9F15: config.merchant_category_code,
        0x9F1C: config.terminal_id.encode("ascii", "replace"),
        0x9F16: config.merchant_id.encode("ascii", "replace"),
        0x9F1E: config.ifd_serial_number.encode("ascii", "replace"),
        0x9F09: config.application_version,
        0x9F7A: b"\x00",  # VLP / e-cash terminal support indicator: not supported
        0xDF60: b"\x00",
    }
