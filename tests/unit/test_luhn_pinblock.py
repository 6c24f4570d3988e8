"""Luhn (ISO/IEC 7812-1 Annex B) and ISO 9564-1 format 0 PIN blocks, shared by the terminal
(DE 52) and the switch (PIN verification)."""

from __future__ import annotations

import pytest

from emvtap.des import des3_decrypt
from emvtap.luhn import luhn_check_digit, luhn_complete, luhn_valid
from emvtap.pinblock import PinBlockError, encipher_pin_block, pin_from_block

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def test_luhn_check_digit_of_the_iso_7812_example() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize("partial", ["625094123456789", "622848000000001", "4", "0000000000000"])
def test_a_completed_number_is_luhn_valid_and_one_digit_changed_is_not(partial: str) -> None:
    full = luhn_complete(partial)
    assert luhn_valid(full)
    wrong = full[:-1] + str((int(full[-1]) + 1) % 10)
    assert not luhn_valid(wrong)


def test_luhn_refuses_non_digits() -> None:
    assert not luhn_valid("62509412345678A0")


def test_format_0_block_is_pin_field_xor_pan_field_under_the_key() -> None:
    block = encipher_pin_block(KEY, "1234", "5432101234567891")
    # PIN field 041234FFFFFFFFFF xor PAN field 0000210123456789 (12 digits before the check digit)
    assert des3_decrypt(KEY, block).hex().upper() == "041215FEDCBA9876"


def test_the_issuer_recovers_the_pin_the_terminal_enciphered() -> None:
    block = encipher_pin_block(KEY, "987654", "6250941234567890")
    assert pin_from_block(KEY, block, "6250941234567890") == "987654"


def test_a_block_for_another_pan_or_key_does_not_give_the_pin() -> None:
    block = encipher_pin_block(KEY, "1234", "6250941234567890")
    for key, pan in ((KEY, "6250941234567808"), (bytes(16), "6250941234567890")):
        try:
            assert pin_from_block(key, block, pan) != "1234"
        except PinBlockError:
            pass


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", ""])
def test_pins_outside_4_to_12_digits_are_refused(pin: str) -> None:
    with pytest.raises(ValueError, match="4 to 12 digits"):
        encipher_pin_block(KEY, pin, "6250941234567890")


def test_a_block_of_the_wrong_length_is_a_pin_block_error() -> None:
    with pytest.raises(PinBlockError, match="8 bytes"):
        pin_from_block(KEY, bytes(7), "6250941234567890")
