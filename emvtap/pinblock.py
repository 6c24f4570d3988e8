"""ISO 9564-1 format 0 PIN blocks, enciphered under a zone PIN key (the online-PIN DE 52 that the
terminal builds and the issuer side opens).

- PIN field = ``0`` ‖ PIN length ‖ PIN digits ‖ ``F`` padding (16 nibbles);
- PAN field = ``0000`` ‖ the 12 rightmost PAN digits excluding the check digit (for a device
  card: the MPAN the terminal read).
"""

from __future__ import annotations

from emvtap.des import des3_decrypt, des3_encrypt, xor

__all__ = ["PinBlockError", "encipher_pin_block", "pin_from_block"]


class PinBlockError(ValueError):
    """A PIN block that does not decipher to a well-formed format 0 block."""


def _pan_field(pan: str) -> bytes:
    return bytes.fromhex("0000" + pan[:-1][-12:].rjust(12, "0"))


def encipher_pin_block(key: bytes, pin: str, pan: str) -> bytes:
    """The terminal's side: 3DES_key(PIN field ⊕ PAN field)."""
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("a PIN is 4 to 12 digits")
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    return des3_encrypt(key, xor(pin_field, _pan_field(pan)))


def pin_from_block(key: bytes, block: bytes, pan: str) -> str:
    """The issuer's side: the PIN in an enciphered format 0 block (PinBlockError if malformed)."""
    if len(block) != 8:
        raise PinBlockError("a PIN block is 8 bytes")
    clear = xor(des3_decrypt(key, block), _pan_field(pan)).hex().upper()
    length = int(clear[1], 16)
    if clear[0] != "0" or not 4 <= length <= 12:
        raise PinBlockError("not an ISO 9564 format 0 block")
    pin, pad = clear[2 : 2 + length], clear[2 + length :]
    if not pin.isdigit() or set(pad) - {"F"}:
        raise PinBlockError("PIN digits or padding malformed")
    return pin
